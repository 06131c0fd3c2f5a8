import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { createWorkerHandler } from '../../functions/worker';
import { exampleEvent } from '../../functions/domain/example-events';
import { logger } from '../../functions/shared/observability';
import { BUCKET, TABLES } from '../../functions/shared/resources';
import { captureProcessOutput } from '../observability/capture-output';
import { delivery, lambdaContext, sqsRecord, startWorkerHarness, type WorkerHarness } from './harness';

/**
 * No delivery is remembered, so every effect must be idempotent by construction: a second and a
 * third copy of a message (a Svix retry, a "Recover" from the dashboard weeks later, a replay from
 * the DLQ, each a new SQS message) must leave every table and the bucket exactly as the first left
 * them, and the worker must say so: `result: "duplicate"` for a delivery whose records are all
 * stored at its version already, `"none"` for one that carries no records.
 */

const DAY_MS = 86_400_000;

describe('redelivery of every event kind (no delivery dedupe)', () => {
  let harness: WorkerHarness;
  before(async () => {
    harness = await startWorkerHarness();
  });
  after(() => harness.stop());

  /** Everything the worker can write for `userId`: items of every table, kept bodies (quarantined, unrecognised). */
  async function everythingOf(userId: string): Promise<unknown> {
    const tables: Record<string, unknown[]> = {};
    for (const table of Object.values(TABLES)) {
      const { Items = [] } = await harness.documents.send(new ScanCommand({ TableName: harness.env[table.envVar] }));
      tables[table.id] = Items.filter((item) => JSON.stringify(item).includes(userId)).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    }
    const kept: Record<string, unknown[]> = {};
    for (const prefix of [BUCKET.prefixes.quarantine, BUCKET.prefixes.unrecognised]) {
      const { Contents = [] } = await harness.s3.send(new ListObjectsV2Command({ Bucket: harness.bucket, Prefix: prefix }));
      kept[prefix] = Contents.map((object) => [object.Key, object.Size]).sort();
    }
    return { tables, kept };
  }

  /** Runs one record through a fresh handler and returns the worker's "Delivery processed" log line. */
  async function processLogged(record: ReturnType<typeof sqsRecord>, expectedTeamId?: string): Promise<Record<string, unknown>> {
    const output = captureProcessOutput();
    const previousLevel = logger.getLevelName();
    logger.setLogLevel('INFO');
    try {
      const response = await createWorkerHandler(harness.dependencies({ expectedTeamId }))({ Records: [record] }, lambdaContext());
      assert.deepEqual(response.batchItemFailures, []);
    } finally {
      logger.setLogLevel(previousLevel as Parameters<typeof logger.setLogLevel>[0]);
      output.restore();
    }
    const line = output.lines().map((text) => JSON.parse(text) as Record<string, unknown>).find((entry) => entry.message === 'Delivery processed');
    assert.ok(line, 'the worker logged the delivery');
    return line;
  }

  const kinds: { name: string; event: (userId: string) => object; firstResult: string; againResult: string; teamId?: string }[] = [
    { name: 'summary', event: (userId) => exampleEvent('daily.data.sleep.created', { userId }), firstResult: 'wrote', againResult: 'duplicate' },
    { name: 'timeseries', event: (userId) => exampleEvent('daily.data.heartrate.created', { userId, sampleCount: 700, sampleIntervalSeconds: 1 }), firstResult: 'wrote', againResult: 'duplicate' },
    { name: 'typed timeseries', event: (userId) => exampleEvent('daily.data.cholesterol.created', { userId }), firstResult: 'wrote', againResult: 'duplicate' },
    { name: 'workout stream notice', event: (userId) => exampleEvent('daily.data.workout_stream.created', { userId }), firstResult: 'wrote', againResult: 'duplicate' },
    { name: 'connection created', event: (userId) => exampleEvent('provider.connection.created', { userId, provider: 'oura' }), firstResult: 'wrote', againResult: 'duplicate' },
    { name: 'connection error', event: (userId) => exampleEvent('provider.connection.error', { userId, provider: 'oura' }), firstResult: 'wrote', againResult: 'duplicate' },
    { name: 'historical notice', event: (userId) => exampleEvent('historical.data.sleep.created', { userId, provider: 'garmin' }), firstResult: 'none', againResult: 'none' },
    { name: "another team's event", event: (userId) => exampleEvent('daily.data.sleep.created', { userId, teamId: 'someone-else' }), firstResult: 'none', againResult: 'none', teamId: 'our-team' },
    { name: 'device event', event: (userId) => exampleEvent('provider.device.created', { userId }), firstResult: 'none', againResult: 'none' },
    { name: 'unknown event', event: (userId) => ({ event_type: 'daily.data.brand_new.created', data: {}, user_id: userId, team_id: 't' }), firstResult: 'none', againResult: 'none' },
  ];

  for (const kind of kinds) {
    it(`${kind.name}: a retry, a recovery three weeks later and a DLQ replay change nothing and are logged as such`, async () => {
      const userId = `user-again-${kind.name.replace(/\W+/g, '-')}`;
      const body = kind.event(userId);
      const identity = delivery('2024-05-14T12:00:00Z');
      const first = await processLogged(sqsRecord(body, identity), kind.teamId);
      assert.equal(first.result, kind.firstResult);
      const afterFirst = await everythingOf(userId);
      const copies = [
        { ...identity, receivedAt: new Date(Date.parse(identity.receivedAt) + 60_000).toISOString() },
        { ...identity, receivedAt: new Date(Date.parse(identity.receivedAt) + 21 * DAY_MS).toISOString() },
        identity,
      ];
      for (const copy of copies) {
        const again = await processLogged(sqsRecord(body, copy, { receiveCount: 1 }), kind.teamId);
        assert.equal(again.result, kind.againResult, `${kind.name} copy received at ${copy.receivedAt}`);
        assert.equal(again.written, 0, 'nothing written again');
        assert.equal(again.stale, 0, 'the copy is not mistaken for an older version');
        assert.deepEqual(await everythingOf(userId), afterFirst, 'every table and the bucket as the first delivery left them');
      }
    });
  }

  it('names the delivery that wrote each summary and each sample, and keeps it across redeliveries', async () => {
    const userId = 'user-written-by';
    const summary = exampleEvent('daily.data.activity.created', { userId });
    const series = exampleEvent('daily.data.heartrate.created', { userId, sampleCount: 10 });
    const summaryDelivery = delivery('2024-05-14T12:00:00Z');
    const seriesDelivery = delivery('2024-05-14T12:01:00Z');
    for (let copy = 0; copy < 2; copy += 1) {
      await processLogged(sqsRecord(summary, { ...summaryDelivery, receivedAt: new Date(Date.parse(summaryDelivery.receivedAt) + copy * DAY_MS).toISOString() }));
      await processLogged(sqsRecord(series, seriesDelivery));
    }
    const stored = await harness.records.getSummary(userId, 'activity', summary.data.id as string);
    assert.equal(stored?.svixId, summaryDelivery.svixId);
    assert.equal(stored?.receivedAt, summaryDelivery.receivedAt, 'the first delivery wrote it; the later copy changed nothing');
    const { samples } = await harness.records.readTimeseries(userId, 'heartrate', { from: '2024-05-14T00:00:00Z', to: '2024-05-15T00:00:00Z' });
    assert.equal(samples.length, 10);
    for (const sample of samples) assert.deepEqual(sample.origin, seriesDelivery);
  });
});
