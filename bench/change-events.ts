import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { putEventsEntrySize } from '../functions/adapters/change-event-publisher';
import { CHANGE_EVENT_BUS } from '../functions/shared/resources';
import { startEventBridge, type DeliveredEvent } from '../local/eventbridge-stand-in';

/**
 * The EventBridge stand-in for the benchmarks, which the handlers publish their change events on as
 * in AWS, and what EventBridge would bill for them: PutEvents is billed per entry, one for every
 * started 64 KB of the entry (the size `putEventsEntrySize` measures), whatever the number of calls.
 */

export const PUT_EVENTS_BILLING_CHUNK = 64 * 1024;

/** What the handlers published since the last `reset`. */
export interface PublishedChangeEvents {
  readonly entries: number;
  /** Entries as EventBridge bills them (64 KB chunks). */
  readonly billed: number;
  readonly calls: number;
  /** The largest entry, in bytes. */
  readonly largest: number;
  readonly byDetailType: Readonly<Record<string, number>>;
}

export interface BenchEventBridge {
  /** The environment a handler needs to publish on the stand-in's bus. */
  readonly environment: Readonly<Record<string, string>>;
  published(): PublishedChangeEvents;
  reset(): void;
  stop(): Promise<void>;
}

/** The size of the entry an event was published as (the publisher sets no `Time`). */
const entrySize = (event: DeliveredEvent): number =>
  putEventsEntrySize({ Source: event.source, DetailType: event['detail-type'], Detail: JSON.stringify(event.detail), Resources: [...event.resources] });

/** What the events a bus accepted in `calls` PutEvents calls are billed as. */
export function publishedOf(events: readonly DeliveredEvent[], calls: number): PublishedChangeEvents {
  const sizes = events.map(entrySize);
  const byDetailType: Record<string, number> = {};
  for (const event of events) byDetailType[event['detail-type']] = (byDetailType[event['detail-type']] ?? 0) + 1;
  return {
    entries: events.length,
    billed: sizes.reduce((sum, size) => sum + Math.max(1, Math.ceil(size / PUT_EVENTS_BILLING_CHUNK)), 0),
    calls,
    largest: Math.max(0, ...sizes),
    byDetailType,
  };
}

export async function startBenchEventBridge(): Promise<BenchEventBridge> {
  const folder = await mkdtemp(path.join(os.tmpdir(), 'bench-change-events-'));
  let events: DeliveredEvent[] = [];
  const bus = await startEventBridge({ busName: 'bench-change-events', eventsFile: path.join(folder, 'events.jsonl'), onEvent: (event) => events.push(event) });
  let callsBefore = 0;
  return {
    environment: { AWS_ENDPOINT_URL_EVENTBRIDGE: bus.endpoint, [CHANGE_EVENT_BUS.envVar]: bus.busName },
    published: () => publishedOf(events, bus.calls.length - callsBefore),
    reset() {
      events = [];
      callsBefore = bus.calls.length;
    },
    async stop() {
      await bus.stop();
      await rm(folder, { recursive: true, force: true });
    },
  };
}

/** `Records Changed ×288, Backfill Progress ×3`. */
export const describePublished = (published: PublishedChangeEvents): string =>
  Object.entries(published.byDetailType).map(([detailType, count]) => `${detailType} ×${count}`).join(', ') || 'none';
