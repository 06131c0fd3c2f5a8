import type { OrderKey } from './message-order';
import { MissingRecordIdError, sampleKey, summaryRecordIdentity, UnreadableTimeError } from './record-identity';

/**
 * Records of a Data Access API response that break the schema: a summary object without its `id`,
 * with an unreadable `updated_at` (or time field), a sample without a readable timestamp. Asking
 * again gets the same record, so retrying the page cannot help, and failing the run would block every
 * later window for one bad record. Such a record is held back instead: kept verbatim under
 * `held-back/` with where it came from and why, counted, and the rest of the page is stored. The
 * rule for "unreadable" is the store's own identity rule (`record-identity.ts`), applied before the
 * store is asked, so what the store would refuse is exactly what is held back.
 */

/** Where a held-back record sat: enough to find it again in the API, nothing of its values. */
export interface HeldBackLocation {
  readonly userId: string;
  readonly provider: string;
  readonly resource: string;
  readonly runId: string;
  /** The run's window (0-based) and page (the run's page count when it was fetched, 0-based). */
  readonly windowIndex: number;
  readonly page: number;
  /** The record's place in the page: `3` for a summary, `g0.s17` for group 0, sample 17. */
  readonly index: string;
}

export interface HeldBackRecord {
  readonly location: HeldBackLocation;
  /** Which rule the record breaks, e.g. `workouts object has no id`: field names, never values. */
  readonly reason: string;
  /** The record exactly as the API sent it. */
  readonly record: Readonly<Record<string, unknown>>;
}

/** Keeps held-back records (the raw-body bucket under `held-back/` in AWS). */
export interface HeldBackStore {
  /** Idempotent: the same location always names the same object. */
  put(heldBack: HeldBackRecord): Promise<void>;
}

/** Why a record breaks the schema, or undefined when it is readable; other errors are not the record's fault and propagate. */
function unreadable(check: () => unknown): string | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    if (error instanceof MissingRecordIdError || error instanceof UnreadableTimeError) return error.message;
    throw error;
  }
}

/** A page's records split into those to store and those to hold back (with their index and reason). */
export interface SortedRecords<T> {
  readonly readable: T[];
  readonly unreadable: { readonly index: string; readonly reason: string; readonly record: T }[];
}

/** Sorts the summary objects of a page by whether the store can identify them. */
export function sortSummaries(
  resource: string,
  objects: readonly Readonly<Record<string, unknown>>[],
  order: OrderKey,
): SortedRecords<Readonly<Record<string, unknown>>> {
  const sorted: SortedRecords<Readonly<Record<string, unknown>>> = { readable: [], unreadable: [] };
  objects.forEach((object, index) => {
    const reason = unreadable(() => summaryRecordIdentity(resource, object, order));
    if (reason === undefined) sorted.readable.push(object);
    else sorted.unreadable.push({ index: String(index), reason, record: object });
  });
  return sorted;
}

/** Sorts the samples of group `group` of a page by whether they have a readable instant. */
export function sortSamples(group: number, samples: readonly Readonly<Record<string, unknown>>[]): SortedRecords<Readonly<Record<string, unknown>>> {
  const sorted: SortedRecords<Readonly<Record<string, unknown>>> = { readable: [], unreadable: [] };
  samples.forEach((sample, index) => {
    const reason = unreadable(() => sampleKey(sample));
    if (reason === undefined) sorted.readable.push(sample);
    else sorted.unreadable.push({ index: `g${group}.s${index}`, reason, record: sample });
  });
  return sorted;
}
