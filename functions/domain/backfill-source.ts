import type { ResourceDefinition } from './catalogue';
import type { BackfillWindow } from './backfill-plan';

/**
 * What the backfill needs from the Vital Data Access API, and how that can fail. Each failure mode
 * has its own error class; `permanent` says whether trying again can help: a permanent failure fails
 * the job with its reason, a transient one leaves the checkpoint intact for SQS to redeliver.
 */

/** Base of every Data Access API failure. Messages carry status and reason, never a payload or the key. */
export abstract class VitalApiError extends Error {
  abstract readonly permanent: boolean;
}

/** 429 or 503 still returned after the in-process retries: Vital is shedding load, try later. */
export class VitalApiRateLimitedError extends VitalApiError {
  override readonly name = 'VitalApiRateLimitedError';
  readonly permanent = false;
}

/** Network failure, timeout or a 5xx other than 503: transient, left to SQS redelivery. */
export class VitalApiUnavailableError extends VitalApiError {
  override readonly name = 'VitalApiUnavailableError';
  readonly permanent = false;
}

/** A 4xx other than 429 (bad key, unknown user, validation error): asking again gives the same answer. */
export class VitalApiClientError extends VitalApiError {
  override readonly name = 'VitalApiClientError';
  readonly permanent = true;
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** A 2xx whose body is not JSON or not the documented shape: fail loudly rather than store garbage. */
export class VitalApiMalformedResponseError extends VitalApiError {
  override readonly name = 'VitalApiMalformedResponseError';
  readonly permanent = true;
}

/** The `source` of a timeseries group, verbatim; `provider` and `type` are read from it. */
export type TimeseriesSource = Readonly<Record<string, unknown>>;

export interface TimeseriesGroup {
  readonly source: TimeseriesSource;
  readonly samples: readonly Readonly<Record<string, unknown>>[];
}

export interface SummaryFetch {
  readonly objects: readonly Readonly<Record<string, unknown>>[];
  readonly fetchedAtMs: number;
}

export interface TimeseriesPage {
  readonly groups: readonly TimeseriesGroup[];
  /** Pass back to get the next page; null after the last. */
  readonly nextCursor: string | null;
  readonly fetchedAtMs: number;
}

export interface WorkoutStreamFetch {
  /** The response body exactly as received. */
  readonly body: string;
  readonly fetchedAtMs: number;
}

export interface VitalDataSource {
  /** Every summary object of `resource` in `window` (the endpoint does not page). */
  fetchSummaries(resource: ResourceDefinition, userId: string, provider: string, window: BackfillWindow): Promise<SummaryFetch>;
  /** One page of a grouped timeseries; `cursor` null for the first. */
  fetchTimeseriesPage(
    resource: ResourceDefinition,
    userId: string,
    provider: string,
    window: BackfillWindow,
    cursor: string | null,
  ): Promise<TimeseriesPage>;
  fetchWorkoutStream(workoutId: string): Promise<WorkoutStreamFetch>;
}
