import type { OrderKey } from './message-order';

/**
 * The contract through which both incremental events (worker) and backfilled API data (backfill)
 * reach storage. Implementations apply the version rules: a summary object is replaced only by a
 * strictly newer `updated_at`; a timeseries sample only by a sample from a message with a newer
 * (or equal) order key. Every write is idempotent by construction, with no record of deliveries:
 * applying the same input twice (a redelivery, a Svix recovery weeks later, a DLQ replay) finds
 * every record at that version already, writes nothing and says so (`unchanged`).
 */

/**
 * The version of the stored layout, stamped on every item the stores write (`layout`), so that a
 * later change of layout can tell old items from new ones and migrate them.
 */
export const STORAGE_LAYOUT_VERSION = 2;

/** The webhook delivery that brought a record; absent for data fetched from the Data Access API. */
export interface DeliveryOrigin {
  readonly svixId: string;
  /** ISO 8601 time at which the verifier accepted the delivery. */
  readonly receivedAt: string;
}

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
  readonly origin?: DeliveryOrigin;
}

export interface StoreTimeseriesInput {
  readonly userId: string;
  readonly resource: string;
  readonly source: SampleSource;
  /** The samples exactly as received. */
  readonly samples: readonly Readonly<Record<string, unknown>>[];
  readonly order: OrderKey;
  readonly origin?: DeliveryOrigin;
}

/**
 * What a write did, per record: made current (`written`, of which `created` were new), kept out
 * because a newer version is stored (`stale`), or found stored at this very version already
 * (`unchanged`: a redelivery).
 */
export interface WriteOutcome {
  readonly written: number;
  /** Of `written`, the records that were not stored at all before (the others replaced an older version). */
  readonly created: number;
  readonly stale: number;
  readonly unchanged: number;
}

export interface RecordStore {
  storeSummary(input: StoreSummaryInput): Promise<WriteOutcome>;
  storeTimeseries(input: StoreTimeseriesInput): Promise<WriteOutcome>;
}
