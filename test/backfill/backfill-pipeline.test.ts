import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { BackfillJobKey, BackfillStatus } from '../../functions/domain/backfill-job';
import { orderKeyOfFetch } from '../../functions/domain/message-order';
import { streamIsCurrent } from '../../functions/domain/backfill-run';
import { startHarness, type Harness } from './harness';

const START = '2025-01-01T00:00:00+00:00';
const END = '2025-03-16T00:00:00+00:00'; // 74 days: three 30-day windows
const WIDE = { from: '2024-12-01T00:00:00Z', to: '2025-04-30T00:00:00Z' };

let h: Harness;
let userCount = 0;
const freshUser = () => `user-${(userCount += 1)}`;

before(async () => {
  h = await startHarness({ fake: { pageSize: 200, samplesPerDay: 24, emptyProviders: ['garmin'] } });
});
after(() => h.stop());

/** Waits until the case's queue holds nothing, visible or in flight: every job message taken was acknowledged. */
async function eventuallyEmpty(timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { Attributes } = await h.sqs.send(new GetQueueAttributesCommand({
      QueueUrl: h.queue.url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }));
    if (Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible) === 0) return;
    assert.ok(Date.now() < deadline, `the case's queue still holds messages: ${JSON.stringify(Attributes)}`);
    await sleep(50);
  }
}

/** What the table holds for a job, as identities comparable with the fake's. */
async function storedIdentities(key: BackfillJobKey): Promise<string[]> {
  if (key.resource === 'profile') {
    const profile = (await h.fake.identitiesFor(key.userId, key.provider, 'profile', START, END)).values().next().value!;
    return (await h.records.getSummary(key.userId, 'profile', profile)) ? [profile] : [];
  }
  if (['activity', 'sleep_cycle', 'meal', 'workouts', 'electrocardiogram', 'body'].includes(key.resource)) {
    return (await h.records.querySummaries(key.userId, key.resource, WIDE)).map((stored) => stored.object.id as string);
  }
  const { samples } = await h.records.readTimeseries(key.userId, key.resource, WIDE);
  return samples.map((stored) => `${stored.source.provider}|${stored.source.type}|${stored.sample.timestamp}|${stored.sample.type}`);
}

async function backfillAndCompare(key: BackfillJobKey): Promise<BackfillStatus> {
  const runId = await h.historical(key, END, START); // reversed on purpose: Vital does not promise order
  const status = await h.waitForState(key, runId, ['completed', 'failed']);
  assert.equal(status.state, 'completed', status.lastError);
  const expected = h.fake.identitiesFor(key.userId, key.provider, key.resource, START, END);
  assert.ok(expected.size > 0, 'the fake serves data for this resource');
  const stored = await storedIdentities(key);
  assert.equal(stored.length, new Set(stored).size, 'no record stored twice');
  assert.deepEqual(new Set(stored), expected);
  assert.deepEqual(h.fake.counters.served.get(`${key.userId}/${key.resource}`), expected);
  assert.equal(status.windowsDone, status.windowsTotal);
  assert.equal(status.lastError, undefined);
  return status;
}

describe('historical backfill on the stand-ins', () => {
  beforeEach(async () => {
    await h.beginCase();
    await h.startBackfill();
  });
  afterEach(() => h.endCase());

  it('backfills a summary resource window by window', async () => {
    const status = await backfillAndCompare({ userId: freshUser(), provider: 'oura', resource: 'activity' });
    assert.equal(status.windowsTotal, 3);
    assert.equal(status.pagesDone, 3);
  });

  it('backfills a date-only summary with YYYY-MM-DD ranges (the fake answers 422 otherwise)', async () => {
    const status = await backfillAndCompare({ userId: freshUser(), provider: 'withings', resource: 'sleep_cycle' });
    assert.equal(status.startDate, '2025-01-01');
    assert.equal(status.endDate, '2025-03-16');
  });

  it('backfills meal from its "meals" key and profile as one object without a range', async () => {
    await backfillAndCompare({ userId: freshUser(), provider: 'oura', resource: 'meal' });
    const profile = await backfillAndCompare({ userId: freshUser(), provider: 'oura', resource: 'profile' });
    assert.equal(profile.windowsTotal, 1);
  });

  it('backfills a timeseries through every next_cursor page, on the catalogue path (fat → body_fat)', async () => {
    const heartrate = await backfillAndCompare({ userId: freshUser(), provider: 'oura', resource: 'heartrate' });
    assert.ok(heartrate.pagesDone > heartrate.windowsTotal, `paged: ${heartrate.pagesDone} pages over ${heartrate.windowsTotal} windows`);
    await backfillAndCompare({ userId: freshUser(), provider: 'withings', resource: 'fat' });
  });

  it('backfills workouts and the stream of each one into S3', async () => {
    const key = { userId: freshUser(), provider: 'strava', resource: 'workouts' };
    await backfillAndCompare(key);
    const workouts = h.fake.identitiesFor(key.userId, key.provider, 'workouts', START, END);
    assert.deepEqual(h.fake.counters.served.get(`${key.userId}/workout_stream`), workouts);
    for (const workoutId of workouts) assert.ok(await h.streams.orderOf(key.userId, key.provider, workoutId), `stream of ${workoutId} stored`);
  });

  it('fetches the stream of an incremental workout_stream notice once, not again for a duplicate notice', async () => {
    const key = { userId: freshUser(), provider: 'strava', resource: 'workouts' };
    await backfillAndCompare(key);
    const [workoutId] = h.fake.identitiesFor(key.userId, key.provider, 'workouts', START, END);
    const before = h.fake.counters.served.get(`${key.userId}/workout_stream`)!.size;
    await sleep(5);
    // The notice is newer than the backfill's fetch of the stream, so it is fetched again, once.
    const notice = { userId: key.userId, provider: key.provider, workoutId: workoutId!, order: orderKeyOfFetch(Date.now()) };
    const streamRequests = () => h.fake.counters.dataRequests.filter((request) => request === `/v2/timeseries/workouts/${workoutId}/stream`).length;
    const requestsBefore = streamRequests();
    await h.requests.requestWorkoutStream(notice);
    // The second copy comes once the first copy's stream is stored: seeing the request is not
    // enough, since a copy taken between the fetch and the store rightly fetches again.
    const deadline = Date.now() + 20_000;
    while (!streamIsCurrent(await h.streams.orderOf(key.userId, key.provider, workoutId!), notice.order) && Date.now() < deadline) await sleep(20);
    await h.requests.requestWorkoutStream(notice);
    // The second copy is taken and acknowledged without a request.
    await eventuallyEmpty();
    assert.equal(streamRequests() - requestsBefore, 1, 'one stream request for two copies of the notice');
    assert.equal(h.fake.counters.served.get(`${key.userId}/workout_stream`)!.size, before);
  });

  it("completes Garmin's data-less historical event with zero records and no error", async () => {
    const key = { userId: freshUser(), provider: 'garmin', resource: 'sleep' };
    const runId = await h.historical(key, START, END);
    const status = await h.waitForState(key, runId, ['completed', 'failed']);
    assert.equal(status.state, 'completed');
    assert.equal(status.recordsStored, 0);
    assert.equal(status.lastError, undefined);
  });

  it('runs a second historical event for the same key again without duplicating records; the status tells each step', async () => {
    const key = { userId: freshUser(), provider: 'oura', resource: 'activity' };
    await backfillAndCompare(key);
    const firstCount = (await storedIdentities(key)).length;
    const runId = await h.historical(key, START, END);
    const snapshots: BackfillStatus[] = [];
    const deadline = Date.now() + 60_000;
    for (;;) {
      assert.ok(Date.now() < deadline, `the second run did not finish: ${JSON.stringify(snapshots.at(-1))}`);
      const status = (await h.statuses.get(key))!;
      snapshots.push(status);
      if (status.runId === runId && (status.state === 'completed' || status.state === 'failed')) break;
      await sleep(5);
    }
    const ofRun = snapshots.filter((status) => status.runId === runId);
    assert.equal(ofRun[0]!.state === 'queued' || ofRun[0]!.state === 'running', true);
    const order = ['queued', 'running', 'completed'];
    for (let i = 1; i < ofRun.length; i += 1) {
      assert.ok(order.indexOf(ofRun[i]!.state) >= order.indexOf(ofRun[i - 1]!.state), 'states only move forward');
      assert.ok(ofRun[i]!.windowsDone >= ofRun[i - 1]!.windowsDone, 'windows done never go back');
      assert.ok(ofRun[i]!.windowsDone <= ofRun[i]!.windowsTotal);
    }
    const last = ofRun.at(-1)!;
    assert.equal(last.state, 'completed');
    assert.equal(last.windowsDone, 3);
    assert.ok(last.finishedAt && last.startedAt && last.queuedAt <= last.startedAt && last.startedAt <= last.finishedAt);
    assert.equal((await storedIdentities(key)).length, firstCount);
  });

  it('fails the job with the reason on a 4xx other than 429, and on a body that does not parse', async () => {
    const notFound = { userId: freshUser(), provider: 'oura', resource: 'body' };
    h.fake.setFaults({ fixedStatus: 404 });
    try {
      const runId = await h.historical(notFound, START, END);
      const status = await h.waitForState(notFound, runId, ['completed', 'failed']);
      assert.equal(status.state, 'failed');
      assert.match(status.lastError!, /VitalApiClientError: GET \/v2\/summary\/body\/.+: HTTP 404/);
    } finally {
      h.fake.setFaults({});
    }
    const garbage = { userId: freshUser(), provider: 'oura', resource: 'steps' };
    h.fake.setFaults({ malformedFraction: 1 });
    try {
      const runId = await h.historical(garbage, START, END);
      const status = await h.waitForState(garbage, runId, ['completed', 'failed']);
      assert.equal(status.state, 'failed');
      assert.match(status.lastError!, /VitalApiMalformedResponseError: .*not JSON/);
      assert.equal(status.windowsDone, 0);
    } finally {
      h.fake.setFaults({});
    }
    // Failed jobs are finished, not left for redelivery or the DLQ.
    await eventuallyEmpty();
    const { Messages } = await h.sqs.send(new ReceiveMessageCommand({ QueueUrl: h.queue.deadLetterUrl }));
    assert.equal(Messages, undefined);
  });

  it('completes every record without duplicates while 20% of requests get 429/503', async () => {
    h.fake.setFaults({ transientFraction: 0.2, retryAfter: '0' });
    try {
      const before503 = (h.fake.counters.byStatus.get(429) ?? 0) + (h.fake.counters.byStatus.get(503) ?? 0);
      await backfillAndCompare({ userId: freshUser(), provider: 'oura', resource: 'heartrate' });
      await backfillAndCompare({ userId: freshUser(), provider: 'oura', resource: 'activity' });
      const after503 = (h.fake.counters.byStatus.get(429) ?? 0) + (h.fake.counters.byStatus.get(503) ?? 0);
      assert.ok(after503 - before503 > 0, 'faults were injected');
    } finally {
      h.fake.setFaults({});
    }
  });
});

describe('concurrency cap', () => {
  beforeEach(() => h.beginCase());
  afterEach(() => h.endCase());

  it('never has more requests in flight at Vital than the mapping runs invocations', async () => {
    // Each answer takes longer than a page's store, so two invocations' requests surely overlap in
    // time (with 20 ms they overlapped only by chance, and once in a CI run did not).
    h.fake.setFaults({ delayMs: 150 });
    const stop = await h.startBackfill({ concurrency: 2 });
    try {
      const jobs = ['activity', 'sleep', 'body', 'steps', 'hrv'].map((resource) => ({ userId: freshUser(), provider: 'oura', resource }));
      const runs = await Promise.all(jobs.map((key) => h.historical(key, START, END)));
      await Promise.all(jobs.map((key, i) => h.waitForState(key, runs[i]!, ['completed'])));
      assert.ok(h.fake.counters.maxConcurrent <= 2, `max concurrent ${h.fake.counters.maxConcurrent}`);
      assert.equal(h.fake.counters.maxConcurrent, 2, 'both invocations ran at once');
    } finally {
      h.fake.setFaults({});
      await stop();
    }
  });
});
