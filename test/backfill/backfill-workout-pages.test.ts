import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Context } from 'aws-lambda';
import { createBackfillHandler } from '../../functions/backfill';
import { QUEUES } from '../../functions/shared/resources';
import { startHarness, type Harness } from './harness';

/**
 * A workouts page is the listing plus one stream request per workout. It is bounded: the time left is
 * checked before each stream, and a page cut short is done again later without fetching any stream it
 * stored. A job whose message reaches the DLQ leaves its run failed with the reason, never `running`.
 */

const START = '2026-02-01T00:00:00+00:00';
const END = '2026-02-21T00:00:00+00:00';
let users = 0;
const freshUser = () => `workout-pages-user-${(users += 1)}`;

/** A Lambda context with time for `checks` looks at the clock, then none: deterministic, whatever the machine's speed. */
function contextWithTimeFor(checks: number): Context {
  let looked = 0;
  return {
    functionName: 'backfill',
    awsRequestId: 'test',
    getRemainingTimeInMillis: () => ((looked += 1) <= checks ? 60_000 : 0),
  } as unknown as Context;
}

describe('workout pages', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.stop());
  beforeEach(() => h.beginCase());
  afterEach(() => h.endCase());

  const streamRequests = () => h.fake.counters.dataRequests.filter((request) => request.includes('/stream'));
  const listingRequests = () => h.fake.counters.dataRequests.filter((request) => request.startsWith('/v2/summary/workouts/'));

  it('stops a workouts page between two streams when out of time, and resumes it without fetching a stored stream again', async () => {
    const key = { userId: freshUser(), provider: 'strava', resource: 'workouts' };
    const runId = await h.historical(key, START, END);
    const workouts = h.fake.identitiesFor(key.userId, key.provider, 'workouts', START, END);
    assert.ok(workouts.size > 10, `enough workouts in one window (${workouts.size})`);
    const handler = createBackfillHandler(h.dependencies());

    const first = await h.receiveJob();
    assert.deepEqual((await handler(first.event, contextWithTimeFor(6))).batchItemFailures, []);
    await first.ack();
    const cut = await h.statuses.get(key);
    assert.deepEqual({ state: cut?.state, windowIndex: cut?.windowIndex, pagesDone: cut?.pagesDone }, { state: 'running', windowIndex: 0, pagesDone: 0 });
    const fetchedFirst = streamRequests().length;
    assert.ok(fetchedFirst > 0 && fetchedFirst < workouts.size, `the page was cut short (${fetchedFirst} of ${workouts.size} streams)`);

    const continued = await h.receiveJob();
    assert.deepEqual((await handler(continued.event, contextWithTimeFor(1_000))).batchItemFailures, []);
    await continued.ack();
    const done = await h.waitForState(key, runId, ['completed', 'failed'], 5_000);
    assert.equal(done.state, 'completed', done.lastError);
    assert.equal(done.recordsStored, workouts.size);
    assert.equal(listingRequests().length, 2, 'the listing is fetched again to resume the page');
    const requested = streamRequests();
    assert.equal(new Set(requested).size, requested.length, 'no stream requested twice');
    assert.equal(requested.length, workouts.size, 'every stream fetched once');
    for (const workoutId of workouts) assert.ok(await h.streams.orderOf(key.userId, key.provider, workoutId), workoutId);
  });

  it('on the last delivery before the DLQ marks the run failed with the reason (and fetches nothing), so it never stays running', async () => {
    const key = { userId: freshUser(), provider: 'strava', resource: 'workouts' };
    const runId = await h.historical(key, START, END);
    const handler = createBackfillHandler(h.dependencies());
    // Earlier deliveries ran out of time mid-page: they started the run and noted nothing.
    const earlier = await h.receiveJob();
    assert.deepEqual((await handler(earlier.event, contextWithTimeFor(3))).batchItemFailures, []);
    await earlier.ack();
    assert.equal((await h.statuses.get(key))?.state, 'running');
    h.fake.resetCounters();

    const last = await h.receiveJob(QUEUES.backfill.maxReceiveCount);
    const response = await handler(last.event, contextWithTimeFor(1_000));
    assert.deepEqual(response.batchItemFailures, [{ itemIdentifier: last.event.Records[0]!.messageId }], 'left to SQS, which moves it to the DLQ');
    await last.ack(); // As SQS would, into the DLQ.
    assert.equal(h.fake.counters.requests, 0, 'nothing fetched on the last delivery');
    const failed = await h.statuses.get(key);
    assert.equal(failed?.state, 'failed');
    assert.equal(failed?.runId, runId);
    assert.match(failed?.lastError ?? '', /gave up after repeated failures \(5 deliveries without finishing.*backfill retry.*last error: none recorded/);
    assert.ok(failed?.finishedAt, 'when it failed');
  });
});
