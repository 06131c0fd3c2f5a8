import type * as z from 'zod/mini';
import type { DETAIL_SCHEMAS } from './change-event-schemas';

/**
 * Change events: what the pipeline tells other systems after it changed stored data, on an
 * EventBridge bus in AWS (`functions/adapters/change-event-publisher.ts`) and on the local
 * pipeline's console and `vital-pipeline events`. The detail schemas (`change-event-schemas.ts`,
 * apart so that a handler's cold start does not build them) are the contract: they are written out
 * as JSON Schema under docs/events/ (`npm run docs:events`; a test keeps the files equal to them)
 * and every event the tests produce is checked against those files.
 *
 * A detail says who and what (user, provider, resource, time range, counts, the delivery or the
 * backfill run) and never a sample value, a summary body or any other field of the data.
 *
 * Delivery is at least once: an event is published before the message that caused it is
 * acknowledged, and a message whose events were not all accepted is retried; its redelivery finds
 * its records stored already and publishes again, with those records counted as `unchanged`.
 */

/** `source` of every change event. */
export const CHANGE_EVENT_SOURCE = 'vital-webhook-pipeline';

export type ChangeDetailType = keyof typeof DETAIL_SCHEMAS;
export type ChangeDetail<T extends ChangeDetailType> = z.infer<(typeof DETAIL_SCHEMAS)[T]>;

/** One change event: its detail-type and its detail (the EventBridge `source` is always `CHANGE_EVENT_SOURCE`). */
export type ChangeEvent = { [T in ChangeDetailType]: { readonly detailType: T; readonly detail: ChangeDetail<T> } }[ChangeDetailType];

/**
 * Where change events go. `publish` resolves once every event is accepted and rejects otherwise, so
 * the caller leaves its message unacknowledged and it is retried (and published again).
 */
export interface ChangeEventPublisher {
  publish(events: readonly ChangeEvent[]): Promise<void>;
}

/** Who and what a Records Changed is about: its detail but for the counts and the range. */
export type RecordsAbout = Omit<ChangeDetail<'Records Changed'>, 'records' | 'time_range'>;

/** What one write did, in the store's counts (`WriteOutcome`): `created` is part of `written`. */
export interface RecordCounts {
  readonly written: number;
  readonly created: number;
  readonly unchanged: number;
}

/**
 * The Records Changed event of one write (a delivery's records, a backfill page's records of one
 * source, a workout stream), over the instants of the records it was given; none when it made
 * nothing current and found none of its own records stored (all stale, or nothing to store).
 */
export function recordsChanged(about: RecordsAbout, counts: RecordCounts, instants: Iterable<string>): ChangeEvent[] {
  if (counts.written + counts.unchanged === 0) return [];
  const range = timeRangeOf(instants);
  return [{
    detailType: 'Records Changed',
    detail: {
      ...about,
      ...(range ? { time_range: range } : {}),
      records: { created: counts.created, updated: counts.written - counts.created, unchanged: counts.unchanged },
    },
  }];
}

/** The smallest and largest of some instants (inclusive), or undefined for none. */
function timeRangeOf(instants: Iterable<string>): { from: string; to: string } | undefined {
  let from: string | undefined;
  let to: string | undefined;
  for (const value of instants) {
    if (from === undefined || value < from) from = value;
    if (to === undefined || value > to) to = value;
  }
  return from === undefined ? undefined : { from, to: to! };
}
