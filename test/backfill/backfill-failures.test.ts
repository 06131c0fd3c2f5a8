import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Context, SQSEvent } from 'aws-lambda';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { createBackfillHandler } from '../../functions/backfill';
import { QUEUES } from '../../functions/shared/resources';
import { newMessageId, orderKeyOfDelivery } from '../../functions/domain/message-order';
import { startHarness, type Harness } from './harness';

const START = '2026-06-01T00:00:00+00:00';
const END = '2026-07-20T00:00:00+00:00';
let users = 0;
const freshUser = () => `failure-user-${(users += 1)}`;

const lambdaContext = { getRemainingTimeInMillis: () => 60_000, functionName: 'backfill', awsRequestId: 'test' } as unknown as Context;

describe('backfill failures that outlive the retries', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ fake: { workoutsWithoutStream: 0.5 } });
  });
  after(() => h.stop());
  beforeEach(() => h.beginCase());
  afterEach(() => h.endCase());

  /** Takes the job message off the queue as the event source mapping would hand it over. */
  async function jobEvent(receiveCount: number): Promise<SQSEvent> {
    const received = await h.sqs.send(new ReceiveMessageCommand({ QueueUrl: h.queue.url, WaitTimeSeconds: 2 }));
    const message = received.Messages?.[0];
    assert.ok(message, 'a job message is queued');
    return {
      Records: [{
        messageId: message.MessageId!, receiptHandle: message.ReceiptHandle!, body: message.Body!,
        attributes: { ApproximateReceiveCount: String(receiveCount), SentTimestamp: '0', SenderId: 'test', ApproximateFirstReceiveTimestamp: '0' },
        messageAttributes: {}, md5OfBody: '', eventSource: 'aws:sqs', eventSourceARN: h.queue.arn, awsRegion: 'us-east-1',
      }],
    };
  }

  it('marks the run failed with the last error on its last delivery, fetching nothing, and a replay from the DLQ resumes and completes it', async () => {
    const key = { userId: freshUser(), provider: 'oura', resource: 'activity' };
    const runId = await h.historical(key, START, END);
    const event = await jobEvent(1);
    const handler = createBackfillHandler(h.dependencies());
    h.fake.setFaults({ fixedStatus: 503 });
    try {
      // A transient failure is a batch item failure (not a function error): SQS delivers the message again.
      assert.deepEqual(await handler(event, lambdaContext), { batchItemFailures: [{ itemIdentifier: event.Records[0]!.messageId }] });
    } finally {
      h.fake.setFaults({});
    }
    h.fake.resetCounters();
    const last = { Records: event.Records.map((record) => ({ ...record, attributes: { ...record.attributes, ApproximateReceiveCount: String(QUEUES.backfill.maxReceiveCount) } })) };
    // The last delivery marks the run failed before anything else, and leaves the message to SQS, which moves it to the DLQ.
    assert.deepEqual(await handler(last, lambdaContext), { batchItemFailures: [{ itemIdentifier: event.Records[0]!.messageId }] });
    assert.equal(h.fake.counters.requests, 0, 'the last delivery fetches nothing');
    const failed = await h.statuses.get(key);
    assert.equal(failed?.state, 'failed');
    assert.equal(failed?.runId, runId);
    assert.match(failed?.lastError ?? '', /gave up after repeated failures/);
    assert.match(failed?.lastError ?? '', /503|unavailable/i);

    const replay = await handler({ Records: event.Records.map((record) => ({ ...record, attributes: { ...record.attributes, ApproximateReceiveCount: '1' } })) }, lambdaContext);
    assert.deepEqual(replay.batchItemFailures, []);
    const completed = await h.statuses.get(key);
    assert.equal(completed?.state, 'completed');
    assert.equal(completed?.recordsStored, h.fake.identitiesFor(key.userId, key.provider, 'activity', START, END).size);
  });

  it('a transient failure before the last delivery leaves the run running, its checkpoint intact', async () => {
    const key = { userId: freshUser(), provider: 'oura', resource: 'sleep' };
    await h.historical(key, START, END);
    const event = await jobEvent(1);
    h.fake.setFaults({ fixedStatus: 503 });
    try {
      assert.deepEqual(await createBackfillHandler(h.dependencies())(event, lambdaContext), { batchItemFailures: [{ itemIdentifier: event.Records[0]!.messageId }] });
    } finally {
      h.fake.setFaults({});
    }
    const status = await h.statuses.get(key);
    assert.equal(status?.state, 'running');
    assert.match(status?.lastError ?? '', /503|unavailable/i);
  });

  it('keeps the newer run when an older historical notice for the same key arrives after it, and sends no job for the older', async () => {
    const key = { userId: freshUser(), provider: 'oura', resource: 'sleep' };
    const older = newMessageId(new Date('2026-11-20T10:00:00Z'));
    const newer = newMessageId(new Date('2026-11-20T10:00:05Z'));
    const notice = (svixId: string, endDate: string) => ({ ...key, startDate: START, endDate, svixId, order: orderKeyOfDelivery(svixId, Date.now()) });
    await h.requests.requestHistorical(notice(newer, '2026-07-21T00:00:00+00:00'));
    await h.requests.requestHistorical(notice(older, END));
    const status = await h.statuses.get(key);
    assert.equal(status?.runId, newer, 'the newer notice\'s run stays registered');
    assert.equal(Date.parse(status?.endDate ?? ''), Date.parse('2026-07-21T00:00:00Z'));
    const queued = await h.sqs.send(new ReceiveMessageCommand({ QueueUrl: h.queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    assert.deepEqual((queued.Messages ?? []).map((message) => JSON.parse(message.Body!).runId), [newer], 'one job, for the newer run');

    const newest = newMessageId(new Date('2026-11-20T10:00:09Z'));
    await h.requests.requestHistorical(notice(newest, END));
    assert.equal((await h.statuses.get(key))?.runId, newest, 'a newer notice still replaces it');
  });

  it('skips workouts that have no stream (404) and stores every other stream', async () => {
    const key = { userId: freshUser(), provider: 'strava', resource: 'workouts' };
    const stop = await h.startBackfill();
    try {
      const runId = await h.historical(key, START, END);
      const status = await h.waitForState(key, runId, ['completed', 'failed']);
      assert.equal(status.state, 'completed', status.lastError);
    } finally {
      await stop();
    }
    const workouts = [...h.fake.identitiesFor(key.userId, key.provider, 'workouts', START, END)];
    const withStream = h.fake.counters.served.get(`${key.userId}/workout_stream`) ?? new Set<string>();
    assert.ok(withStream.size > 0 && withStream.size < workouts.length, `some but not all workouts have streams (${withStream.size}/${workouts.length})`);
    for (const workoutId of workouts) {
      const stored = await h.streams.orderOf(key.userId, key.provider, workoutId);
      assert.equal(Boolean(stored), withStream.has(workoutId), workoutId);
    }
  });
});
