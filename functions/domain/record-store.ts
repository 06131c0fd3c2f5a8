import type { OrderKey } from './message-order';

/**
 * The contract through which both incremental events (worker) and backfilled API data (backfill)
 * reach storage. Implementations apply the version rules: a summary object is replaced only by a
 * strictly newer `updated_at`; a timeseries sample only by a sample from a message with a newer
 * (or equal) order key. Every write is idempotent, so any redelivery is harmless.
 */

/** Where a timeseries batch comes from: two of the four parts of a sample's identity. */
export interface SampleSource {
  readonly provider: string;
  /** `source.type`, `"unknown"` when Vital leaves it out. */
  readonly type: string;
}

export interface StoreSummaryInput {
  readonly userId: string;
  readonly resource: string;
  /** The Vital object exactly as received (event `$.data` or one element of an API response). */
  readonly object: Readonly<Record<string, unknown>>;
  readonly order: OrderKey;
}

export interface StoreTimeseriesInput {
  readonly userId: string;
  readonly resource: string;
  readonly source: SampleSource;
  /** The samples exactly as received. */
  readonly samples: readonly Readonly<Record<string, unknown>>[];
  readonly order: OrderKey;
}

/** What a write did: how many records it made current, and how many it kept out as stale. */
export interface WriteOutcome {
  readonly written: number;
  readonly stale: number;
}

export interface RecordStore {
  storeSummary(input: StoreSummaryInput): Promise<WriteOutcome>;
  storeTimeseries(input: StoreTimeseriesInput): Promise<WriteOutcome>;
}
