import { after, afterEach, before, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { DynamoDbErasureRegister } from '../../functions/adapters/erasure-register';
import { createBackfillHandler } from '../../functions/backfill';
import { newMessageId, orderKeyOfDelivery } from '../../functions/domain/message-order';
import { metrics } from '../../functions/shared/observability';
import { API_KEY, startHarness, type Harness } from './harness';

/**
 * Erasure, as the backfill meets it (functions/domain/erasure.ts): a run queued before its user was
 * erased stores nothing more from its next page on, and says so in its status (`failed`, `erased`),
 * while a run queued after the erasure (a resync, a new notice) fetches and stores as usual; a
 * workout-stream job of a notice created before the erasure fetches nothing. The backfill reads the
 * erasures table as its role, under the stack's IAM.
 */

const START = '2026-01-01T00:00:00+00:00';
const END = '2026-03-25T00:00:00+00:00';
const context = { getRemainingTimeInMillis: () => 60_000, functionName: 'backfill', awsRequestId: 'test' } as unknown as Context;
let users = 0;
const freshUser = () => `erasure-user-${(users += 1)}`;

describe('the backfill of an erased user', () => {
  let h: Harness;
  let register: DynamoDbErasureRegister;
  before(async () => {
    h = await startHarness();
    register = new DynamoDbErasureRegister(h.documents, h.resources.tables.erasures);
  });
  after(() => h.stop());
  beforeEach(() => h.beginCase());
  afterEach(() => h.endCase());

  /** Records the user's erasure now (as `vital-pipeline erase` does first); resolves T in ms. */
  const eraseNow = async (userId: string): Promise<number> => {
    const erasedAt = new Date();
    await register.begin({ userId, erasedAt: erasedAt.toISOString(), erasedBy: 'the test' });
    return erasedAt.getTime();
  };
  const storedSleep = async (userId: string) => (await h.records.querySummaries(userId, 'sleep', { from: START, to: END })).length;
  const queuedJobs = async () => (await h.sqs.send(new ReceiveMessageCommand({ QueueUrl: h.queue.url, WaitTimeSeconds: 1 }))).Messages ?? [];
  const erasedJobsCounted = (addMetric: { mock: { calls: { arguments: unknown[] }[] } }) => addMetric.mock.calls.filter((call) => call.arguments[0] === 'ErasedUserJobs').length;

  it('stops a run queued before the erasure at its next page, storing nothing more, and runs one queued after it', async () => {
    const key = { userId: freshUser(), provider: 'oura', resource: 'sleep' };
    const runId = await h.historical(key, START, END);
    const onePage = createBackfillHandler(h.dependencies({ maxPagesPerInvocation: 1 }));
    const first = await h.receiveJob();
    assert.deepEqual((await onePage(first.event, context)).batchItemFailures, []);
    await first.ack();
    const storedBefore = await storedSleep(key.userId);
    assert.ok(storedBefore > 0, 'the first window was stored');

    const erasedAt = await eraseNow(key.userId);
    const addMetric = mock.method(metrics, 'addMetric');
    try {
      const next = await h.receiveJob();
      assert.deepEqual((await onePage(next.event, context)).batchItemFailures, [], 'acknowledged: nothing to retry');
      await next.ack();
      assert.equal(erasedJobsCounted(addMetric), 1);
    } finally {
      addMetric.mock.restore();
    }
    const stopped = await h.statuses.get(key);
    assert.deepEqual({ runId: stopped?.runId, state: stopped?.state, windowsDone: stopped?.windowsDone }, { runId, state: 'failed', windowsDone: 1 });
    assert.match(stopped?.lastError ?? '', /^erased: the user was erased at /);
    assert.equal(await storedSleep(key.userId), storedBefore, 'nothing more stored');
    assert.deepEqual(await queuedJobs(), [], 'no continuation sent');

    // A notice Vital created after the erasure (new history of a user still connected) runs as usual.
    const laterNotice = newMessageId(new Date(erasedAt + 2_000));
    await h.requests.requestHistorical({ ...key, startDate: START, endDate: END, svixId: laterNotice, order: orderKeyOfDelivery(laterNotice, erasedAt + 2_000) });
    await h.startBackfill();
    const completed = await h.waitForState(key, laterNotice, ['completed', 'failed'], 20_000);
    assert.equal(completed.state, 'completed', completed.lastError);
    assert.equal(await storedSleep(key.userId), h.fake.identitiesFor(key.userId, key.provider, 'sleep', START, END).size);
  });

  it('fetches nothing for a workout-stream job of a notice created before the erasure, and fetches one created after it', async () => {
    const userId = freshUser();
    const notice = (atMs: number) => {
      const svixId = newMessageId(new Date(atMs));
      return orderKeyOfDelivery(svixId, atMs);
    };
    // Two workouts the API holds (listed once, so it knows whose they are).
    const listing = await fetch(`${h.fake.url}/v2/summary/workouts/${userId}?provider=strava&start_date=${encodeURIComponent(START)}&end_date=${encodeURIComponent(END)}`, { headers: { 'x-vital-api-key': API_KEY } });
    const [older, newer] = ((await listing.json()) as { workouts: { id: string }[] }).workouts.map((workout) => workout.id);
    assert.ok(older && newer, 'the API holds workouts');
    const beforeErasure = notice(Date.now() - 60_000);
    const erasedAt = await eraseNow(userId);
    await h.requests.requestWorkoutStream({ userId, provider: 'strava', workoutId: older, order: beforeErasure });
    await h.requests.requestWorkoutStream({ userId, provider: 'strava', workoutId: newer, order: notice(erasedAt + 2_000) });
    const handler = createBackfillHandler(h.dependencies());
    const addMetric = mock.method(metrics, 'addMetric');
    try {
      for (let job = 0; job < 2; job += 1) {
        const received = await h.receiveJob();
        assert.deepEqual((await handler(received.event, context)).batchItemFailures, []);
        await received.ack();
      }
      assert.equal(erasedJobsCounted(addMetric), 1);
    } finally {
      addMetric.mock.restore();
    }
    assert.deepEqual(h.fake.counters.dataRequests.filter((request) => request.includes('/stream')), [`/v2/timeseries/workouts/${newer}/stream`]);
    assert.equal(await h.streams.orderOf(userId, 'strava', older), undefined);
    assert.ok(await h.streams.orderOf(userId, 'strava', newer));
  });
});
