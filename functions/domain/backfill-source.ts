import type { ResourceDefinition } from './catalogue';
import type { BackfillWindow } from './backfill-plan';
import type { BackfillFailureClass } from './backfill-failure';
import { NamedError } from './named-error';

/**
 * What the backfill needs from the Vital Data Access API, and how that can fail. Each failure mode
 * has its own error class, and each class carries the `failureClass` that `classifyVitalAnswer`
 * (functions/domain/backfill-failure.ts) gives its answers: the client picks the error class from
 * that rule, the runner acts on the failure class.
 */

/** Base of every Data Access API failure. Messages carry status and reason, never a payload or the key. */
export abstract class VitalApiError extends NamedError {
  abstract readonly failureClass: BackfillFailureClass;
}

/** 429 or 503 still returned after the in-process retries: Vital is shedding load, try later. */
export class VitalApiRateLimitedError extends VitalApiError {
  readonly failureClass: BackfillFailureClass = 'transient';
}

/** Network failure, timeout, 408 or a 5xx other than 503: transient, left to SQS redelivery. */
export class VitalApiUnavailableError extends VitalApiError {
  readonly failureClass: BackfillFailureClass = 'transient';
}

/** A 4xx the API will answer again (unknown user, validation error, a refusal): asking again gives the same answer. */
export class VitalApiClientError extends VitalApiError {
  readonly failureClass: BackfillFailureClass = 'permanent';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/**
 * 401 (or a 403 that blames the credentials), still answered after the key was read afresh: the
 * stored key is a placeholder, or not a key of this team, region or environment. Only the operator
 * can fix it, so the job waits for the key instead of failing.
 */
export class VitalApiKeyRejectedError extends VitalApiClientError {
  override readonly failureClass: BackfillFailureClass = 'waiting_for_api_key';
}

/** The key's store holds no usable value yet (an empty secret): the job waits for the key. */
export class VitalApiKeyNotSetError extends VitalApiError {
  readonly failureClass: BackfillFailureClass = 'waiting_for_api_key';
}

/** A 2xx whose body is not JSON or not the documented shape: fail loudly rather than store garbage. */
export class VitalApiMalformedResponseError extends VitalApiError {
  readonly failureClass: BackfillFailureClass = 'permanent';
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
