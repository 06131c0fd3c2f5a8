import type { ResourceDefinition } from './catalogue';
import type { BackfillStatus } from './backfill-job';
import type { OrderKey } from './message-order';
import { InvalidBackfillRangeError, normaliseRange, planRun, rangesOfRun, toDateOnly, type BackfillRange } from './backfill-plan';

/**
 * The one rule for what a historical notice does to the run stored for its (user, provider,
 * resource): the union of the announced ranges must end up fetched, whatever order notices arrive in,
 * without fetching again what a run has done, and a notice whose range cannot be read never touches
 * a run. Every path that registers a notice asks `decideNotice`, on the status it read, and writes
 * conditionally on that status (so a notice registered in between makes it read and decide again).
 *
 * - No run stored, or one whose own range cannot be read (nothing to keep): a new run for the notice.
 * - A newer notice (by message order, `runOrder`) replaces the run: its run fetches the notice's
 *   range and what the older run had left (from the start of the window at its checkpoint), their
 *   union, as disjoint ranges where they do not meet (no gap is fetched, no window done again).
 * - A late, older notice leaves the newer run in place: the parts of its range outside the ranges
 *   that run fetches are added after them (`extend`), so its windows and checkpoint stay. A run that
 *   had finished (completed, or failed) is put back to `queued` at the first window added. Nothing
 *   outside: nothing to do. Every fetch of the newer run happens after its notice, so after the
 *   older one too: what it fetches is as new as the older notice asks.
 * - A notice whose range cannot be read is recorded failed (counted in `BackfillFailures`): in the
 *   run's place when none is stored, else on an item of its own, the stored run left as it was. A
 *   readable notice takes the place of such a record (whatever their order), which moves to an item
 *   of its own.
 */

/** A notice as `decideNotice` needs it. */
export interface NoticeRange {
  readonly svixId: string;
  readonly order: OrderKey;
  readonly startDate: string;
  readonly endDate: string;
}

/** What a run fetches: one range, or several (`ranges`, in order) with their hull; and its number of windows. */
export interface PlannedRanges {
  readonly startDate: string;
  readonly endDate: string;
  readonly ranges?: readonly BackfillRange[];
  readonly windowsTotal: number;
}

export type NoticeDecision =
  /** The stored run is this notice's own (a redelivery). */
  | { readonly kind: 'duplicate' }
  /**
   * A run of its own for the notice, in place of the stored run (none, unreadable, or from an older
   * notice). `keepRejected`: the stored one is a notice whose range cannot be read, to be kept on an
   * item of its own (as `unreadable` with `ownItem` does), so its failure stays listed.
   */
  | { readonly kind: 'new_run'; readonly plan: PlannedRanges; readonly keepRejected: boolean }
  /** The stored run, from a newer notice, fetches every part of this notice's range already. */
  | { readonly kind: 'covered' }
  /** The stored run, from a newer notice, also fetches the parts of this notice's range outside its own: `plan` is its new ranges. */
  | { readonly kind: 'extend'; readonly plan: PlannedRanges & { readonly ranges: readonly BackfillRange[] }; readonly reopen: boolean }
  /** The notice's range cannot be read: record it failed, in the run's place (`ownItem` false, none stored) or on an item of its own. */
  | { readonly kind: 'unreadable'; readonly reason: string; readonly ownItem: boolean };

type Listing = Pick<ResourceDefinition, 'dateParameters'>;

/**
 * A closed interval in the units a resource is fetched by: milliseconds for datetime ranges, whole
 * UTC days (end inclusive) for date-only ones. Datetime windows share their boundary instant, so
 * a piece left over shares one with the range it meets (harmless to the idempotent store); day
 * pieces meet without sharing a day.
 */
type Interval = readonly [lo: number, hi: number];

const DAY_MS = 86_400_000;

/** How far apart two intervals may be and still be one range: a day's neighbour is the next day. */
const stepOf = (listing: Listing): number => (listing.dateParameters === 'date' ? 1 : 0);

function intervalOf(listing: Listing, range: BackfillRange): Interval {
  const { startMs, endMs } = normaliseRange(range.startDate, range.endDate);
  return listing.dateParameters === 'date' ? [Math.floor(startMs / DAY_MS), Math.floor(endMs / DAY_MS)] : [startMs, endMs];
}

/** The one range from the earliest start to the latest end of `intervals`. */
const hullOf = (listing: Listing, intervals: readonly Interval[]): BackfillRange =>
  rangeOf(listing, [Math.min(...intervals.map(([lo]) => lo)), Math.max(...intervals.map(([, hi]) => hi))]);

function rangeOf(listing: Listing, [lo, hi]: Interval): BackfillRange {
  return listing.dateParameters === 'date'
    ? { startDate: toDateOnly(lo * DAY_MS), endDate: toDateOnly(hi * DAY_MS) }
    : { startDate: new Date(lo).toISOString(), endDate: new Date(hi).toISOString() };
}

/** Sorted, with intervals that overlap or meet made one. */
function union(listing: Listing, intervals: readonly Interval[]): Interval[] {
  const step = stepOf(listing);
  const merged: [number, number][] = [];
  for (const [lo, hi] of [...intervals].sort((a, b) => a[0] - b[0])) {
    const last = merged.at(-1);
    if (last && lo <= last[1] + step) last[1] = Math.max(last[1], hi);
    else merged.push([lo, hi]);
  }
  return merged;
}

/** The parts of `from` outside every interval of `taken`, sorted. */
function outside(listing: Listing, from: Interval, taken: readonly Interval[]): Interval[] {
  const step = stepOf(listing);
  const pieces: Interval[] = [];
  let [lo, hi] = from;
  for (const [takenLo, takenHi] of union(listing, taken)) {
    if (takenHi < lo || takenLo > hi) continue;
    if (lo < takenLo) pieces.push([lo, takenLo - step]);
    if (takenHi >= hi) return pieces;
    lo = takenHi + step;
  }
  pieces.push([lo, hi]);
  return pieces;
}

/** The windows of a run's plan, or undefined when its range cannot be read (it has nothing to fetch). */
function readableWindows(listing: Listing, run: BackfillStatus) {
  try {
    return planRun(listing, run);
  } catch (error) {
    if (error instanceof InvalidBackfillRangeError) return undefined;
    throw error;
  }
}

/**
 * What a run still had to fetch: its windows from the one at its checkpoint (fetched again from its
 * first page) to its last, as disjoint intervals; none once it completed.
 */
export function remainingRanges(listing: Listing, run: BackfillStatus): BackfillRange[] {
  if (run.state === 'completed' || listing.dateParameters === 'none') return [];
  const windows = readableWindows(listing, run) ?? [];
  const left = windows.slice(run.windowIndex).flatMap((window) => (window.startDate && window.endDate ? [intervalOf(listing, window as BackfillRange)] : []));
  return union(listing, left).map((interval) => rangeOf(listing, interval));
}

/** A run's ranges as its status records them: one range plain, several with their hull. */
function planned(listing: Listing, intervals: readonly Interval[], windowDays: number): PlannedRanges {
  const ranges = intervals.map((interval) => rangeOf(listing, interval));
  const hull = hullOf(listing, intervals);
  const plan = ranges.length > 1 ? { ...hull, ranges } : hull;
  return { ...plan, windowsTotal: planRun(listing, { ...plan, windowDays }).length };
}

/** Whether a notice comes after the stored run's: runs stored before run orders existed are older than any. */
const isNewerNotice = (notice: Pick<NoticeRange, 'order'>, stored: Pick<BackfillStatus, 'runOrder'>): boolean => (stored.runOrder ?? '') < notice.order;

/**
 * What `notice` does to `stored` (the status read for its key, undefined when none): see the rule
 * above. `windowDays` is the window size of a new run; a run added to keeps its own.
 */
export function decideNotice(listing: Listing, notice: NoticeRange, stored: BackfillStatus | undefined, windowDays: number): NoticeDecision {
  if (stored?.runId === notice.svixId) return { kind: 'duplicate' };
  let own: Interval;
  try {
    own = intervalOf(listing, notice);
  } catch (error) {
    if (!(error instanceof InvalidBackfillRangeError)) throw error;
    return { kind: 'unreadable', reason: error.message, ownItem: stored !== undefined };
  }
  const storedWindows = stored ? readableWindows(listing, stored) : undefined;
  if (!stored || !storedWindows || isNewerNotice(notice, stored)) {
    // A profile has no range: the newer notice's run is one request, whatever the older one left.
    const left = stored && storedWindows ? remainingRanges(listing, stored).map((range) => intervalOf(listing, range)) : [];
    return { kind: 'new_run', plan: planned(listing, union(listing, [own, ...left]), windowDays), keepRejected: stored !== undefined && !storedWindows };
  }
  if (listing.dateParameters === 'none') return { kind: 'covered' };
  const runs = rangesOfRun(stored);
  const added = outside(listing, own, runs.map((range) => intervalOf(listing, range)));
  if (added.length === 0) return { kind: 'covered' };
  const ranges = [...runs, ...added.map((interval) => rangeOf(listing, interval))];
  const all = ranges.map((range) => intervalOf(listing, range));
  const hull = hullOf(listing, all);
  return {
    kind: 'extend',
    plan: { ...hull, ranges, windowsTotal: planRun(listing, { ...hull, ranges, windowDays: stored.windowDays }).length },
    reopen: stored.state === 'completed' || stored.state === 'failed',
  };
}
