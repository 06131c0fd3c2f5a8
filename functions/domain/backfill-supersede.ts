import type { ResourceDefinition } from './catalogue';
import type { BackfillStatus } from './backfill-job';
import { InvalidBackfillRangeError, normaliseRange, planBackfill } from './backfill-plan';

/**
 * When a newer historical notice replaces an older run of the same (user, provider, resource), the
 * union of the announced ranges must still end up fetched. The newer run takes over what the older
 * one had left: its range is widened to the hull of its own range and the older run's remainder
 * (from the start of the window at the older run's checkpoint to its end). One run, one status item,
 * one checkpoint: nothing to coordinate. A gap between the two ranges is fetched too: a few more
 * requests, harmless to the idempotent store, and simpler than a run with two ranges.
 */

/** The range an older run still had to fetch, as instants; undefined when it had nothing left. */
export function remainingRange(listing: Pick<ResourceDefinition, 'dateParameters'>, older: BackfillStatus): { startMs: number; endMs: number } | undefined {
  if (older.state === 'completed' || listing.dateParameters === 'none') return undefined;
  let windows;
  try {
    ({ windows } = planBackfill(listing, older.startDate, older.endDate, older.windowDays));
  } catch (error) {
    // A run whose range cannot be read had nothing it could fetch.
    if (error instanceof InvalidBackfillRangeError) return undefined;
    throw error;
  }
  const next = windows[older.windowIndex];
  if (!next?.startDate || !next.endDate) return undefined;
  return normaliseRange(next.startDate, older.endDate);
}

/**
 * The range of a newer run that replaces `older`: the notice's own range, widened to cover what
 * `older` still had to fetch. ISO datetimes, earliest first; the notice's range as sent when there
 * is nothing to cover (`planBackfill` normalises it).
 */
export function rangeCoveringRemainder(
  listing: Pick<ResourceDefinition, 'dateParameters'>,
  notice: { readonly startDate: string; readonly endDate: string },
  older: BackfillStatus | undefined,
): { readonly startDate: string; readonly endDate: string } {
  const remainder = older ? remainingRange(listing, older) : undefined;
  if (!remainder) return notice;
  const own = normaliseRange(notice.startDate, notice.endDate);
  return {
    startDate: new Date(Math.min(own.startMs, remainder.startMs)).toISOString(),
    endDate: new Date(Math.max(own.endMs, remainder.endMs)).toISOString(),
  };
}
