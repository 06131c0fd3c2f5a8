import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { Output } from '../local/console-output';
import { startLocalPipeline } from '../local/pipeline';
import { LOCAL_AWS } from '../local/stand-ins';
import { newSigningSecret, svixHeaders } from '../test/support/signing';
import { summaryEventBodies } from './fixtures';
import { formatNumber, type Row } from './report';
import { median, medianDurations } from './timing';

/**
 * The local pipeline end to end: signed webhooks POSTed to its HTTP API, verified, queued in fauxqs,
 * polled by the local event source mapping and stored by the worker in DynamoDB Local, timed until
 * the worker reports the last one processed. Baseline: plain PutItem of records of the same size
 * into the same emulator, with the same number of requests in flight.
 */

const EVENTS_PER_RUN = 150;
const IN_FLIGHT = 8;
const SAMPLING = { warmupRuns: 1, runs: 3 } as const;
const PROCESSING_TIMEOUT_MS = 60_000;

/** Runs `work` over `items` with at most `limit` at once. */
async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: limit }, lane));
}

/** Counts the worker's outcomes from the pipeline's output lines, which it prints nowhere. */
function countingOutput() {
  const counts = { processed: 0, failed: 0 };
  const output: Output = {
    line: (line) => {
      if (line.source !== 'worker') return;
      // One line per message handled: INFO says what a processed delivery did (in words that vary
      // with what it stored), WARN that it failed (local/pipeline.ts).
      if (line.level === 'WARN' || line.level === 'ERROR') counts.failed += 1;
      else counts.processed += 1;
    },
    plain: () => {},
  };
  return { counts, output };
}

/** Events per second from POST to stored, against PutItem per second on the same emulator. */
export async function run(): Promise<Row[]> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'vital-bench-e2e-'));
  const secret = newSigningSecret();
  const { counts, output } = countingOutput();
  const pipeline = await startLocalPipeline({ port: 0, dataDir, webhookSecret: secret, timeScale: 1 }, output);
  const dynamodb = new DynamoDBClient({ endpoint: pipeline.state.endpoints.dynamodb, ...LOCAL_AWS });
  try {
    const rounds = SAMPLING.warmupRuns + SAMPLING.runs;
    const bodies = Array.from({ length: rounds }, (_, round) => summaryEventBodies(EVENTS_PER_RUN, (round + 1) * 100_000));
    const pipelineRounds = bodies.map((round) => round.map((body) => ({ body, headers: svixHeaders(secret, body) })));
    const putRounds = bodies.map((round) =>
      round.map((body) => ({ pk: { S: `bench#${randomUUID()}` }, sk: { S: randomUUID() }, body: { S: body } })),
    );

    const answeredAfterMs: number[] = [];
    const postAndWait = async () => {
      const deliveries = pipelineRounds.shift()!;
      const target = counts.processed + deliveries.length;
      const started = performance.now();
      await inParallel(deliveries, IN_FLIGHT, async ({ body, headers }) => {
        const response = await fetch(pipeline.webhookUrl, { method: 'POST', headers, body });
        await response.arrayBuffer();
        if (response.status !== 202) throw new Error(`the local pipeline answered ${response.status}`);
      });
      answeredAfterMs.push(performance.now() - started);
      const deadline = Date.now() + PROCESSING_TIMEOUT_MS;
      while (counts.processed < target) {
        if (counts.failed > 0) throw new Error(`the worker failed ${counts.failed} deliveries`);
        if (Date.now() > deadline) throw new Error(`only ${counts.processed} of ${target} deliveries processed in time`);
        await sleep(5);
      }
    };
    const putAll = async () => {
      const items = putRounds.shift()!;
      await inParallel(items, IN_FLIGHT, async (item) => {
        await dynamodb.send(new PutItemCommand({ TableName: pipeline.state.tables.summaries, Item: item }));
      });
    };

    const durations = await medianDurations({ pipeline: postAndWait, putItem: putAll }, SAMPLING);
    const perSecond = (ms: number) => (EVENTS_PER_RUN * 1000) / ms;
    return [
      {
        figure: 'local pipeline end to end, POST to stored',
        measured: { value: perSecond(durations.pipeline), unit: 'events/s' },
        baseline: { value: perSecond(durations.putItem), unit: 'events/s', label: 'raw PutItem, same emulator' },
        target: { on: 'ratio', bound: 'atLeast', limit: 0.5 },
        limitedBy:
          `${EVENTS_PER_RUN} summary events a run, ${IN_FLIGHT} POSTs in flight, median of ${SAMPLING.runs} runs ` +
          `(${formatNumber(durations.pipeline / 1000)} s, of which the POSTs were all answered after ${formatNumber(median(answeredAfterMs) / 1000)} s); per event the pipeline does a verify, an SQS send, a receive and delete, ` +
          `and the worker's one conditional record put, all on the same 2 cores as the emulators`,
      },
    ];
  } finally {
    dynamodb.destroy();
    await pipeline.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
