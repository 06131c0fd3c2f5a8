import { instantKey, instantMs } from './record-identity';
import type { ResourceDefinition } from './catalogue';
import { NamedError } from './named-error';

/**
 * Pure planning of a historical backfill: normalise the range Vital announced and cut it into
 * windows the Data Access API is asked for one at a time. Vital documents no maximum range, so long
 * ranges (up to 365 days) are fetched in windows: each window is one resumable unit of work.
 */

/** Days per window unless the deployment says otherwise. */
export const DEFAULT_WINDOW_DAYS = 30;

const DAY_MS = 86_400_000;

/** A range Vital announced that cannot be read as dates. */
export class InvalidBackfillRangeError extends NamedError {}

/** The query range of one request: datetimes, `YYYY-MM-DD` dates (end inclusive), or none at all. */
export interface BackfillWindow {
  readonly startDate?: string;
  readonly endDate?: string;
}

/** One range a run fetches: normalised, earliest first (dates for date-only resources). */
export interface BackfillRange {
  readonly startDate: string;
  readonly endDate: string;
}

/**
 * What a run fetches, as its status records it: `startDate`/`endDate`, or, when it fetches more than
 * one range, `ranges` in the order they are fetched (`startDate`/`endDate` are then their hull).
 */
export interface RunRanges extends BackfillRange {
  readonly ranges?: readonly BackfillRange[];
  readonly windowDays: number;
}

/** A normalised range and its windows. */
export interface BackfillPlan {
  /** The announced range, earliest first, as ISO strings (dates for date-only resources). */
  readonly startDate: string;
  readonly endDate: string;
  readonly windows: readonly BackfillWindow[];
}

/**
 * An end of an announced range, by the one time parser every path uses (`instantKey`: strict ISO
 * 8601; a bare date is midnight UTC, a naive datetime is read as UTC, as Vital's own examples need).
 */
function parseInstant(value: string, label: string): number {
  const key = typeof value === 'string' ? instantKey(value) : undefined;
  // The value is left out: messages reach logs and the status item, and it is part of the notice.
  if (key === undefined) throw new InvalidBackfillRangeError(`${label} is not a date`);
  return instantMs(key);
}

/** The calendar date (UTC) of an instant, as `YYYY-MM-DD`. */
export function toDateOnly(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Orders the two ends of an announced range: nothing guarantees `start_date <= end_date`. */
export function normaliseRange(startDate: string, endDate: string): { readonly startMs: number; readonly endMs: number } {
  const a = parseInstant(startDate, 'start_date');
  const b = parseInstant(endDate, 'end_date');
  return a <= b ? { startMs: a, endMs: b } : { startMs: b, endMs: a };
}

/**
 * Plans the windows of a backfill of `resource` over the announced range.
 * - `datetime` resources: consecutive windows of `windowDays`, each `[start, end]` in ISO datetimes;
 *   neighbouring windows share their boundary instant, which the idempotent store makes harmless.
 * - `date` resources: whole UTC days, `end_date` inclusive, so windows do not overlap.
 * - `none` (profile): one window without a range.
 */
export function planBackfill(
  resource: Pick<ResourceDefinition, 'dateParameters'>,
  startDate: string,
  endDate: string,
  windowDays: number = DEFAULT_WINDOW_DAYS,
): BackfillPlan {
  if (!Number.isInteger(windowDays) || windowDays < 1) throw new RangeError(`windowDays must be a positive integer, got ${windowDays}`);
  const { startMs, endMs } = normaliseRange(startDate, endDate);
  const windows: BackfillWindow[] = [];
  switch (resource.dateParameters) {
    case 'none':
      windows.push({});
      return { startDate: new Date(startMs).toISOString(), endDate: new Date(endMs).toISOString(), windows };
    case 'date': {
      const firstDay = Math.floor(startMs / DAY_MS);
      const lastDay = Math.floor(endMs / DAY_MS);
      for (let day = firstDay; day <= lastDay; day += windowDays) {
        windows.push({ startDate: toDateOnly(day * DAY_MS), endDate: toDateOnly(Math.min(day + windowDays - 1, lastDay) * DAY_MS) });
      }
      return { startDate: toDateOnly(startMs), endDate: toDateOnly(endMs), windows };
    }
    case 'datetime': {
      const span = windowDays * DAY_MS;
      for (let from = startMs; ; from += span) {
        const to = Math.min(from + span, endMs);
        windows.push({ startDate: new Date(from).toISOString(), endDate: new Date(to).toISOString() });
        if (to >= endMs) break;
      }
      return { startDate: new Date(startMs).toISOString(), endDate: new Date(endMs).toISOString(), windows };
    }
  }
}

/** The ranges a run fetches, in order: `ranges` when it has several, else its one range. */
export function rangesOfRun(run: RunRanges): readonly BackfillRange[] {
  return run.ranges && run.ranges.length > 0 ? run.ranges : [{ startDate: run.startDate, endDate: run.endDate }];
}

/**
 * The windows of a run: those of each of its ranges, one range after the other. Every path that
 * works on a run's windows (the runner, a retry, a notice taking over or adding to a run) plans it
 * here, so a checkpoint's window index means the same window to all of them. Ranges added to a run
 * come after the ones it has (`functions/domain/backfill-supersede.ts`): its windows and its
 * checkpoint stay where they were.
 */
export function planRun(resource: Pick<ResourceDefinition, 'dateParameters'>, run: RunRanges): readonly BackfillWindow[] {
  return rangesOfRun(run).flatMap((range) => planBackfill(resource, range.startDate, range.endDate, run.windowDays).windows);
}
