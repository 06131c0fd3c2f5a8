import { S3ClaimCheckStore } from '../../functions/adapters/claim-check-store';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { keptBodyKey } from '../../functions/adapters/kept-body-store';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { createWorkerHandler } from '../../functions/worker';
import { RESOURCES } from '../../functions/domain/catalogue';
import { exampleEvent } from '../../functions/domain/example-events';
import type { RecordStore, WriteOutcome } from '../../functions/domain/record-store';
import { sampleKey } from '../../functions/domain/record-identity';
import { BUCKET, TABLES } from '../../functions/shared/resources';
import { delivery, lambdaContext, sqsRecord, startWorkerHarness, type WorkerHarness } from './harness';
import { orderKeyOfDelivery } from '../../functions/domain/message-order';
import { parseJobMessage } from '../../functions/domain/backfill-job';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';

const range = { from: '2024-05-01T00:00:00Z', to: '2024-06-01T00:00:00Z' };

describe('worker on DynamoDB Local and fauxqs S3', () => {
  let harness: WorkerHarness;
  before(async () => {
    harness = await startWorkerHarness();
  });
  after(async () => harness.stop());

  const run = (records: ReturnType<typeof sqsRecord>[], overrides = {}) =>
    createWorkerHandler(harness.dependencies(overrides))({ Records: records }, lambdaContext());

  it('stores every summary resource and reads it back by id and by time', async () => {
    for (const resource of [...RESOURCES.values()].filter((definition) => definition.kind === 'summary')) {
      const userId = `user-summary-${resource.name}`;
      const event = exampleEvent(`daily.data.${resource.name}.created`, { userId });
      const response = await run([sqsRecord(event, delivery('2024-05-14T12:00:00Z'))]);
      assert.deepEqual(response.batchItemFailures, [], resource.name);
      const stored = await harness.records.getSummary(userId, resource.name, event.data.id as string);
      assert.deepEqual(stored?.object, event.data, `${resource.name} stored verbatim`);
      if (resource.timeFields.length > 0) {
        const byTime = await harness.records.querySummaries(userId, resource.name, range);
        assert.equal(byTime.length, 1, `${resource.name} found by time`);
      }
    }
  });

  it('stores every timeseries resource and reads its samples back', async () => {
    for (const resource of [...RESOURCES.values()].filter((definition) => definition.kind === 'timeseries')) {
      const userId = `user-series-${resource.name}`;
      const event = exampleEvent(`daily.data.${resource.name}.created`, { userId, sampleCount: 3 });
      const response = await run([sqsRecord(event, delivery('2024-05-14T12:00:00Z'))]);
      assert.deepEqual(response.batchItemFailures, [], resource.name);
      const { samples } = await harness.records.readTimeseries(userId, resource.name, range);
      const sent = (event.data.data as unknown[]).length;
      assert.equal(samples.length, sent, `${resource.name}: every sample, typed ones apart`);
      assert.deepEqual(samples.map((stored) => stored.sample).sort(byJson), [...(event.data.data as Record<string, unknown>[])].sort(byJson));
      assert.deepEqual(samples[0]!.source, { provider: 'oura', type: 'ring' });
    }
  });

  it('processes every copy of a delivery again (nothing remembers deliveries), into one record', async () => {
    const counting = countingStore(harness.dependencies().ports.records);
    const event = exampleEvent('daily.data.sleep.created', { userId: 'user-dup' });
    const identity = delivery('2024-05-14T12:00:00Z');
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const response = await run([sqsRecord(event, identity)], { ports: { ...harness.dependencies().ports, records: counting } });
      assert.deepEqual(response.batchItemFailures, []);
    }
    assert.deepEqual(counting.outcomes, [
      { written: 1, created: 1, stale: 0, unchanged: 0 },
      { written: 0, created: 0, stale: 0, unchanged: 1 },
      { written: 0, created: 0, stale: 0, unchanged: 1 },
    ]);
    const rows = await harness.documents.send(new ScanCommand({ TableName: harness.env[TABLES.summaries.envVar] }));
    assert.equal(rows.Items!.filter((item) => item.pk === 'user-dup#sleep').length, 1);
  });

  it('keeps the updated version when it arrives before the created one', async () => {
    const userId = 'user-order';
    const created = exampleEvent('daily.data.sleep.created', { userId });
    const updated = exampleEvent('daily.data.sleep.updated', { userId });
    assert.equal(created.data.id, updated.data.id);
    await run([sqsRecord(updated, delivery('2024-05-14T12:05:00Z'))]);
    await run([sqsRecord(created, delivery('2024-05-14T12:00:00Z'))]);
    const stored = await harness.records.getSummary(userId, 'sleep', created.data.id as string);
    assert.deepEqual(stored?.object, updated.data);
  });

  it('ignores an older updated_at that arrives after a newer one, even in a newer message', async () => {
    const userId = 'user-stale';
    const newer = exampleEvent('daily.data.activity.updated', { userId, updatedAt: '2024-05-14T20:00:00Z' });
    const older = exampleEvent('daily.data.activity.updated', { userId, updatedAt: '2024-05-14T18:00:00Z', seed: 1 });
    await run([sqsRecord(newer, delivery('2024-05-14T20:01:00Z'))]);
    await run([sqsRecord(older, delivery('2024-05-14T21:00:00Z'))]);
    const stored = await harness.records.getSummary(userId, 'activity', newer.data.id as string);
    assert.equal(stored?.object.updated_at, newer.data.updated_at);
  });

  it('keeps newer sample values when an older batch is redelivered later', async () => {
    const userId = 'user-series-order';
    const older = exampleEvent('daily.data.heartrate.created', { userId, sampleCount: 30 });
    const newer = exampleEvent('daily.data.heartrate.updated', { userId, sampleCount: 30 });
    await run([sqsRecord(newer, delivery('2024-05-14T12:10:00Z'))]);
    await run([sqsRecord(older, delivery('2024-05-14T12:00:00Z'))]);
    const { samples } = await harness.records.readTimeseries(userId, 'heartrate', range);
    assert.deepEqual(samples.map((stored) => stored.sample), newer.data.data);
  });

  it('lets the newest message win when workers race on one record and one bucket', async () => {
    const userId = 'user-race';
    const versions = Array.from({ length: 8 }, (_, index) => index);
    const summaries = versions.map((index) =>
      exampleEvent('daily.data.sleep.updated', { userId, updatedAt: `2024-05-14T1${index}:00:00Z` }),
    );
    const batches = versions.map((index) => exampleEvent('daily.data.heartrate.updated', { userId, sampleCount: 20, seed: index + 10 }));
    await Promise.all(
      versions.flatMap((index) => [
        run([sqsRecord(summaries[index]!, delivery(`2024-05-14T1${index}:00:30Z`))]),
        run([sqsRecord(batches[index]!, delivery(`2024-05-14T1${index}:00:30Z`))]),
      ]),
    );
    const stored = await harness.records.getSummary(userId, 'sleep', summaries[0]!.data.id as string);
    assert.equal(stored?.object.updated_at, summaries[7]!.data.updated_at);
    const { samples } = await harness.records.readTimeseries(userId, 'heartrate', range);
    assert.deepEqual(samples.map((entry) => entry.sample), batches[7]!.data.data);
  });

  it('reports only the record whose write fails, and its retry succeeds', async () => {
    const userId = 'user-partial';
    const events = [1, 2, 3].map((seed) => exampleEvent('daily.data.workouts.created', { userId, seed }));
    const failing = events[1]!.data.id;
    const flaky: RecordStore = {
      storeSummary: async (input) => {
        if (input.object.id === failing) throw new Error('injected write failure');
        return harness.dependencies().ports.records.storeSummary(input);
      },
      storeTimeseries: (input) => harness.dependencies().ports.records.storeTimeseries(input),
    };
    const records = events.map((event, index) => sqsRecord(event, delivery(`2024-05-14T12:0${index}:00Z`)));
    const first = await run(records, { ports: { ...harness.dependencies().ports, records: flaky } });
    assert.deepEqual(first.batchItemFailures, [{ itemIdentifier: records[1]!.messageId }]);
    assert.equal(await harness.records.getSummary(userId, 'workouts', failing as string), undefined);
    const retry = await run([records[1]!]);
    assert.deepEqual(retry.batchItemFailures, []);
    assert.ok(await harness.records.getSummary(userId, 'workouts', failing as string), 'the retry stored it: the failure did not look done');
  });

  it('fails a malformed body on every receive, so it ends in the DLQ after maxReceiveCount', async () => {
    const body = exampleEvent('daily.data.sleep.created', { userId: 'user-malformed' }) as { data: Record<string, unknown> };
    delete body.data.id;
    const record = sqsRecord(body, delivery('2024-05-14T12:00:00Z'));
    for (let receive = 1; receive <= 5; receive += 1) {
      const response = await run([record]);
      assert.deepEqual(response.batchItemFailures, [{ itemIdentifier: record.messageId }], `receive ${receive}`);
    }
    const notJson = sqsRecord('{"event_type": "daily.data.sleep.created", ', delivery('2024-05-14T12:00:00Z'), { eventType: 'daily.data.sleep.created' });
    assert.equal((await run([notJson])).batchItemFailures.length, 1);
  });

  it('acknowledges unknown and out-of-scope event types without storing anything', async () => {
    const unknown = { event_type: 'daily.data.brand_new_thing.created', data: { anything: 1 }, user_id: 'user-unknown', team_id: 't' };
    const labtest = { event_type: 'labtest.order.created', data: {}, user_id: 'user-unknown', team_id: 't' };
    const device = exampleEvent('provider.device.created', { userId: 'user-unknown' });
    const response = await run([
      sqsRecord(unknown, delivery('2024-05-14T12:00:00Z')),
      sqsRecord(labtest, delivery('2024-05-14T12:00:01Z')),
      sqsRecord(device, delivery('2024-05-14T12:00:02Z')),
    ]);
    assert.deepEqual(response.batchItemFailures, []);
    for (const table of [TABLES.summaries, TABLES.timeseries, TABLES.connections]) {
      const rows = await harness.documents.send(new ScanCommand({ TableName: harness.env[table.envVar] }));
      assert.ok(!rows.Items!.some((item) => JSON.stringify(item).includes('user-unknown')), table.id);
    }
  });

  it('keeps the body of an unknown event type under unrecognised/, with its delivery facts, once per message', async () => {
    // Spacing and key order as sent: the kept body is the signed bytes, not a re-serialisation.
    const body = '{"team_id": "t", "event_type": "daily.data.brand_new_kept.created",  "user_id": "user-kept", "data": {"x": 1.0}}';
    const identity = delivery('2024-05-14T12:00:00Z');
    const record = sqsRecord(body, identity);
    assert.deepEqual((await run([record])).batchItemFailures, []);
    const key = keptBodyKey(BUCKET.prefixes.unrecognised, identity);
    assert.equal(key, `unrecognised/2024-05-14/${encodeURIComponent(identity.svixId)}.json`);
    const kept = await harness.s3.send(new GetObjectCommand({ Bucket: harness.bucket, Key: key }));
    assert.equal(await kept.Body!.transformToString('utf8'), body, 'the body, byte for byte');
    assert.deepEqual(kept.Metadata, {
      reason: 'unrecognised_event_type',
      'svix-id': identity.svixId,
      'svix-timestamp': record.messageAttributes['svix-timestamp']!.stringValue,
      'event-type': 'daily.data.brand_new_kept.created',
      'received-at': identity.receivedAt,
      // Whose it is, so that an erasure finds it without reading it (functions/domain/envelope-owner.ts).
      'user-id': 'user-kept',
    });
    // A Svix retry, a recovery a day later: the same object again, not a second one.
    await run([sqsRecord(body, identity)]);
    await run([sqsRecord(body, { ...identity, receivedAt: new Date(Date.parse(identity.receivedAt) + 86_400_000).toISOString() })]);
    const listed = await harness.s3.send(new ListObjectsV2Command({ Bucket: harness.bucket, Prefix: BUCKET.prefixes.unrecognised }));
    assert.deepEqual(listed.Contents!.filter((object) => object.Key!.includes(encodeURIComponent(identity.svixId))).map((object) => object.Key), [key]);
    assert.equal(await (await harness.s3.send(new GetObjectCommand({ Bucket: harness.bucket, Key: key }))).Body!.transformToString('utf8'), body);
    // Out-of-scope and device events are deliberately ignored, not unrecognised: nothing is kept for them.
    await run([sqsRecord({ event_type: 'labtest.order.created', data: {}, user_id: 'user-kept', team_id: 't' }, delivery('2024-05-14T12:00:00Z'))]);
    const after = await harness.s3.send(new ListObjectsV2Command({ Bucket: harness.bucket, Prefix: BUCKET.prefixes.unrecognised }));
    assert.equal(after.KeyCount, listed.KeyCount);
  });

  it('quarantines another team\'s event in the bucket instead of storing it', async () => {
    const event = exampleEvent('daily.data.sleep.created', { userId: 'user-foreign', teamId: 'someone-else' });
    const identity = delivery('2024-05-14T12:00:00Z');
    const response = await run([sqsRecord(event, identity)], { expectedTeamId: 'our-team' });
    assert.deepEqual(response.batchItemFailures, []);
    assert.equal(await harness.records.getSummary('user-foreign', 'sleep', event.data.id as string), undefined);
    const listed = await harness.s3.send(new ListObjectsV2Command({ Bucket: harness.bucket, Prefix: BUCKET.prefixes.quarantine }));
    assert.ok(listed.Contents?.some((object) => object.Key!.includes(encodeURIComponent(identity.svixId))));
    const ours = exampleEvent('daily.data.sleep.created', { userId: 'user-ours', teamId: 'our-team' });
    await run([sqsRecord(ours, delivery('2024-05-14T12:00:00Z'))], { expectedTeamId: 'our-team' });
    assert.ok(await harness.records.getSummary('user-ours', 'sleep', ours.data.id as string));
  });

  it('reads a claim-checked body back from the bucket', async () => {
    const event = exampleEvent('daily.data.heartrate.created', { userId: 'user-claim', sampleCount: 50 });
    const identity = delivery('2024-05-14T12:00:00Z');
    // The verifier writes claim checks; the worker's role may only read them.
    const claimCheck = await new S3ClaimCheckStore(harness.s3, harness.bucket).put(`raw-bodies/2024-05-14/${identity.svixId}.json`, JSON.stringify(event));
    const response = await run([sqsRecord(event, identity, { claimCheck })]);
    assert.deepEqual(response.batchItemFailures, []);
    assert.equal((await harness.records.readTimeseries('user-claim', 'heartrate', range)).samples.length, 50);
  });

  it('routes historical and workout-stream notices to the backfill requests', async () => {
    const userId = 'user-notices';
    const historical = exampleEvent('historical.data.sleep.created', { userId, provider: 'garmin' });
    delete (historical.data as Record<string, unknown>).is_final;
    const stream = exampleEvent('daily.data.workout_stream.created', { userId });
    const historicalDelivery = delivery('2024-05-14T12:00:00Z');
    await run([sqsRecord(historical, historicalDelivery), sqsRecord(stream, delivery('2024-05-14T12:00:01Z'))]);
    const status = await harness.backfillStatuses.get({ userId, provider: 'garmin', resource: 'sleep' });
    assert.equal(status?.state, 'queued');
    assert.equal(status?.runId, historicalDelivery.svixId);
    assert.equal(status?.runOrder, orderKeyOfDelivery(historicalDelivery.svixId, Date.parse(historicalDelivery.receivedAt)));
    assert.equal(Date.parse(status!.startDate), Date.parse(historical.data.start_date as string));
    assert.equal(Date.parse(status!.endDate), Date.parse(historical.data.end_date as string));
    const queued = await harness.sqs.send(new ReceiveMessageCommand({ QueueUrl: harness.backfillQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const jobs = (queued.Messages ?? []).map((message) => parseJobMessage(message.Body!)).filter((job) => job.userId === userId);
    assert.deepEqual(jobs.filter((job) => job.type === 'historical'), [
      { type: 'historical', userId, provider: 'garmin', resource: 'sleep', runId: historicalDelivery.svixId },
    ]);
    const streams = jobs.filter((job) => job.type === 'workout_stream');
    assert.equal(streams.length, 1);
    assert.equal(streams[0]!.type === 'workout_stream' && streams[0]!.workoutId, stream.data.workout_id);
    assert.ok(await harness.records.getSummary(userId, 'workout_stream', stream.data.workout_id as string), 'the notice is recorded');
  });

  it('keeps connection state current per (user, provider), ignoring an older event that arrives late', async () => {
    const userId = 'user-connection';
    const created = exampleEvent('provider.connection.created', { userId, provider: 'oura' });
    const error = exampleEvent('provider.connection.error', { userId, provider: 'oura' });
    await run([sqsRecord(error, delivery('2024-05-14T13:00:00Z'))]);
    await run([sqsRecord(created, delivery('2024-05-14T12:00:00Z'))]);
    const afterStale = await harness.connections.get(userId, 'oura');
    assert.equal(afterStale?.status, 'error');
    assert.equal(afterStale?.lastErrorType, 'token_refresh_failed');
    await run([sqsRecord(created, delivery('2024-05-14T14:00:00Z'))]);
    const reconnected = await harness.connections.get(userId, 'oura');
    assert.equal(reconnected?.status, 'connected');
    assert.deepEqual(reconnected!.resourceAvailability, created.data.resource_availability);
  });
});

const byJson = (a: Record<string, unknown>, b: Record<string, unknown>): number => sampleKey(a).localeCompare(sampleKey(b));

/** A store that keeps the outcome of every write it passes on. */
function countingStore(inner: RecordStore): RecordStore & { outcomes: WriteOutcome[] } {
  const outcomes: WriteOutcome[] = [];
  const kept = async (outcome: Promise<WriteOutcome>) => {
    outcomes.push(await outcome);
    return outcomes.at(-1)!;
  };
  return {
    outcomes,
    storeSummary: (input) => kept(inner.storeSummary(input)),
    storeTimeseries: (input) => kept(inner.storeTimeseries(input)),
  };
}
