import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { setTimeout as sleep } from 'node:timers/promises';
import { readBackfills, readRecords, type BackfillRow } from '../record-queries';
import type { PipelineTarget } from '../target';
import { UsageError } from '../terminal';
import type { ExampleOptions } from '../../functions/domain/example-events';
import { sendEvents, type SendResult } from './send';

/**
 * `simulate connect`: the story of a user connecting a provider, played against the local pipeline
 * and its simulated Vital API (`npm start` without `VITAL_API_KEY`). Everything goes the way it
 * goes in AWS: signed webhooks to the endpoint, the worker, historical notices, backfills fetching
 * pages from the (simulated) Data Access API, then the daily events that follow a connection.
 */

/** What the simulated connection offers: the summaries and two dense timeseries. */
export const SIMULATED_RESOURCES = ['sleep', 'activity', 'workouts', 'body', 'heartrate', 'steps'] as const;

const DAY_MS = 86_400_000;
const FINISHED: ReadonlySet<BackfillRow['status']> = new Set(['completed', 'failed']);

export interface SimulateConnectOptions {
  readonly userId: string;
  readonly provider: string;
  /** Days of history the historical notices announce. */
  readonly days: number;
  /** How long to wait for the backfills. @default 5 minutes */
  readonly timeoutMs?: number;
  /** The clock, for the daily events and the range's end. @default now */
  readonly now?: Date;
  readonly onSent: (result: SendResult) => void;
  /** Called on every look at the backfills while they run. */
  readonly onBackfills: (rows: readonly BackfillRow[]) => void;
}

/** The simulated Vital API cannot be used: the pipeline is not local, or fetches from a configured API. */
export class SimulationUnavailableError extends Error {}

/** The backfills did not finish within the timeout. */
export class SimulationTimeoutError extends Error {}

export interface SimulationResult {
  readonly userId: string;
  readonly provider: string;
  readonly backfills: readonly BackfillRow[];
  /** Records stored per resource for the user and provider, after the daily events. */
  readonly stored: Readonly<Record<string, number>>;
}

/** Refuses a target whose backfill does not fetch from the simulated Vital API. */
function requireSimulatedVital(target: PipelineTarget): void {
  if (target.origin.kind !== 'local') {
    throw new UsageError('simulate plays against the local pipeline and its simulated Vital API: give it without --stack');
  }
  const { vitalApi } = target.origin.state;
  if (vitalApi.source !== 'simulated') {
    throw new SimulationUnavailableError(
      `The local pipeline fetches history from ${vitalApi.url}, not from the simulated Vital API: restart npm start without VITAL_API_KEY and VITAL_API_BASE_URL`,
    );
  }
}

export async function simulateConnect(target: PipelineTarget, options: SimulateConnectOptions): Promise<SimulationResult> {
  requireSimulatedVital(target);
  const now = options.now ?? new Date();
  const send = (types: readonly string[], example: ExampleOptions) =>
    sendEvents(target, { types, duplicate: 0, example: { userId: options.userId, provider: options.provider, ...example } }, options.onSent);

  // 1. The user connects: Vital tells which resources the provider makes available.
  await send(['provider.connection.created'], { availableResources: SIMULATED_RESOURCES });
  // 2. Vital's backfill of each resource finishes: one data-less notice each, announcing the range.
  await send(
    SIMULATED_RESOURCES.map((resource) => `historical.data.${resource}.created`),
    { at: now, historicalDays: options.days },
  );
  const backfills = await finishedBackfills(target, options);
  // 3. From now on the provider syncs: today's data arrives as daily events.
  const today = new Date(Math.max(Math.floor(now.getTime() / DAY_MS) * DAY_MS, now.getTime() - 2 * 3_600_000));
  await send(
    SIMULATED_RESOURCES.map((resource) => `daily.data.${resource}.created`),
    { at: today, seed: now.getTime() % 1_000_000 },
  );
  await eventsQueueDrained(target, options.timeoutMs ?? 300_000);

  const from = new Date(now.getTime() - (options.days + 1) * DAY_MS).toISOString();
  const stored: Record<string, number> = {};
  for (const resource of SIMULATED_RESOURCES) {
    const rows = await readRecords(target.dynamodb, target.tables, { userId: options.userId, resource, provider: options.provider, from, to: now.toISOString() });
    stored[resource] = rows.length;
  }
  return { userId: options.userId, provider: options.provider, backfills, stored };
}

/** Waits until the worker has taken every event off the events queue (none waiting, none in flight). */
async function eventsQueueDrained(target: PipelineTarget, timeoutMs: number): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const { Attributes = {} } = await target.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: target.queues.events.url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
      }),
    );
    if (Object.values(Attributes).every((count) => Number(count) === 0)) return;
    if (Date.now() >= giveUpAt) throw new SimulationTimeoutError('The daily events were not all processed in time; see the npm start console');
    await sleep(250);
  }
}

/** Waits until every backfill run of the user and provider has finished, one per announced resource at least. */
async function finishedBackfills(target: PipelineTarget, options: SimulateConnectOptions): Promise<BackfillRow[]> {
  const giveUpAt = Date.now() + (options.timeoutMs ?? 300_000);
  for (;;) {
    const rows = (await readBackfills(target.dynamodb, target.tables.backfills, options.userId))
      .map(({ row }) => row)
      .filter((row) => row.provider === options.provider);
    options.onBackfills(rows);
    const announced = new Set(rows.map((row) => row.resource));
    if (SIMULATED_RESOURCES.every((resource) => announced.has(resource)) && rows.every((row) => FINISHED.has(row.status))) return rows;
    if (Date.now() >= giveUpAt) {
      const waiting = rows.filter((row) => !FINISHED.has(row.status)).map((row) => `${row.resource} ${row.status}`);
      throw new SimulationTimeoutError(`The backfills did not finish in time (${waiting.join(', ') || 'no run started yet'}); see vital-pipeline inspect backfills --user ${options.userId}`);
    }
    await sleep(500);
  }
}
