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

/** The smallest and largest of some instants (inclusive), or undefined for none. */
export function timeRangeOf(instants: Iterable<string>): { from: string; to: string } | undefined {
  let from: string | undefined;
  let to: string | undefined;
  for (const value of instants) {
    if (from === undefined || value < from) from = value;
    if (to === undefined || value > to) to = value;
  }
  return from === undefined ? undefined : { from, to: to! };
}
