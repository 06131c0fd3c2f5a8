import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context, SQSEvent } from 'aws-lambda';
import { createBackfillHandler } from '../../functions/backfill';
import { TIMESERIES_PAGES_IN_FLIGHT } from '../../functions/domain/backfill-run';
import type { RecordStore } from '../../functions/domain/record-store';
import { startHarness, type Harness } from './harness';

/**
 * A timeseries run fetches its next page while the current one is stored (`PagesAhead`), and keeps
 * every guarantee of one page after another: requests one at a time and within the client's rate,
 * which the fake API enforces; stores in page order; a checkpoint only after the page it covers is
 * stored; at most `timeseriesPagesInFlight` pages begun past the checkpoint; a page begun and not
 * checkpointed when the invocation ends is dropped and fetched again from the checkpoint, never lost.
 */

const R = 20;
const PAGE_SIZE = 100;
const START = '2024-05-01T00:00:00+00:00';
const END = '2024-05-02T00:00:00+00:00';
/** One day of heart rate at one sample a minute: 1441 samples, 15 pages. */
const PAGES = 15;
const lambdaContext = { functionName: 'backfill', awsRequestId: 'test', getRemainingTimeInMillis: () => 60_000 } as unknown as Context;

let h: Harness;
let users = 0;
const freshKey = () => ({ userId: `pages-ahead-user-${(users += 1)}`, provider: 'oura', resource: 'heartrate' });

before(async () => {
  h = await startHarness({ fake: { maxRequestsPerSecond: R, pageSize: PAGE_SIZE, samplesPerDay: 1440 }, maxRequestsPerSecond: R });
});
after(() => h.stop());

/** Polls `condition` until it holds, failing after `timeoutMs`. */
async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await condition()); await sleep(10)) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
  }
}

/**
 * The backfill's record store, except that the store of the run's first page waits for `release`
 * and then goes on (`store`) or fails as DynamoDB would (`fail`). The other pages store at once.
 */
function holdingFirstPage(records: RecordStore, then: 'store' | 'fail') {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held = false;
  const store: RecordStore = {
    storeSummary: (input) => records.storeSummary(input),
    storeTimeseries: async (input) => {
      if (input.samples.some((sample) => sample.timestamp === START)) {
        held = true;
        await released;
        if (then === 'fail') throw new Error('ProvisionedThroughputExceededException (test): the first page could not be stored');
      }
      return records.storeTimeseries(input);
    },
  };
  return { store, release, isHeld: () => held };
}

/** The `next_cursor` of every timeseries page the fake answered, in order (`first` for a window's first page). */
const cursorsAsked = () =>
  h.fake.counters.dataRequests.map((request) => new URL(request, 'http://fake').searchParams.get('next_cursor') ?? 'first');

/** The identities of the samples stored for a key over the range, as the fake names them. */
async function storedIdentities(key: { userId: string; resource: string }): Promise<Set<string>> {
  const { samples } = await h.records.readTimeseries(key.userId, key.resource, { from: START, to: END });
  return new Set(samples.map(({ source, sample }) => `${source.provider}|${source.type}|${sample.timestamp}|${sample.type}`));
}

/** The job message as SQS hands it over again after a failed delivery. */
function redelivered(event: SQSEvent): SQSEvent {
  const [record] = event.Records;
  return { Records: [{ ...record!, attributes: { ...record!.attributes, ApproximateReceiveCount: '2' } }] };
}

describe('timeseries pages fetched ahead', () => {
  beforeEach(() => h.beginCase());
  afterEach(() => h.endCase());

  it('fetches the next pages while a page is stored, no more than timeseriesPagesInFlight, and checkpoints only once that page is stored', async () => {
    const key = freshKey();
    const runId = await h.historical(key, START, END);
    const first = holdingFirstPage(h.dependencies().records, 'store');
    const handler = createBackfillHandler(h.dependencies({ records: first.store }));
    const job = await h.receiveJob();
    const invocation = handler(job.event, lambdaContext);
    assert.ok(TIMESERIES_PAGES_IN_FLIGHT >= 2, 'by default the next page is fetched while one is stored');

    // While the first page is held, the next is fetched (up to the limit of pages begun), and waits.
    await until('the pages ahead fetched', () => first.isHeld() && h.fake.counters.dataResponses >= TIMESERIES_PAGES_IN_FLIGHT);
    await sleep(300);
    assert.equal(h.fake.counters.dataResponses, TIMESERIES_PAGES_IN_FLIGHT, 'no page begun beyond the limit');
    const held = await h.statuses.get(key);
    assert.deepEqual({ pagesDone: held?.pagesDone, cursor: held?.cursor }, { pagesDone: 0, cursor: null }, 'no checkpoint past a page not stored');

    first.release();
    assert.deepEqual((await invocation).batchItemFailures, []);
    await job.ack();
    const done = await h.waitForState(key, runId, ['completed', 'failed'], 5_000);
    const expected = h.fake.identitiesFor(key.userId, key.provider, key.resource, START, END);
    assert.equal(done.state, 'completed', done.lastError);
    assert.deepEqual({ pagesDone: done.pagesDone, recordsStored: done.recordsStored }, { pagesDone: PAGES, recordsStored: expected.size });
    assert.deepEqual(await storedIdentities(key), expected);
    assert.equal(h.fake.counters.dataResponses, PAGES, 'each page fetched once');
    assert.equal(h.fake.counters.maxConcurrent, 1, 'one request at a time');
  });

  it('drops the pages begun past the checkpoint when the invocation ends on an error: the redelivery fetches them again and stores every page', async () => {
    const key = freshKey();
    const runId = await h.historical(key, START, END);
    const first = holdingFirstPage(h.dependencies().records, 'fail');
    const job = await h.receiveJob();
    const failing = createBackfillHandler(h.dependencies({ records: first.store }));
    const invocation = failing(job.event, lambdaContext);
    await until('the pages ahead fetched', () => first.isHeld() && h.fake.counters.dataResponses >= TIMESERIES_PAGES_IN_FLIGHT);
    const fetchedAhead = cursorsAsked();
    first.release();
    assert.deepEqual((await invocation).batchItemFailures, [{ itemIdentifier: job.event.Records[0]!.messageId }], 'left to SQS to redeliver');
    assert.equal(h.fake.counters.dataResponses, TIMESERIES_PAGES_IN_FLIGHT, 'nothing fetched after the failure');
    const failed = await h.statuses.get(key);
    assert.deepEqual(
      { state: failed?.state, pagesDone: failed?.pagesDone, cursor: failed?.cursor, recordsStored: failed?.recordsStored },
      { state: 'running', pagesDone: 0, cursor: null, recordsStored: 0 },
      'the checkpoint stays before the page that failed',
    );
    assert.match(failed?.lastError ?? '', /the first page could not be stored/);
    assert.equal((await storedIdentities(key)).size, 0, 'the page fetched ahead was dropped, not stored');

    // SQS hands the message over again; this time the store works.
    const askedBefore = h.fake.counters.dataRequests.length;
    assert.deepEqual((await createBackfillHandler(h.dependencies())(redelivered(job.event), lambdaContext)).batchItemFailures, []);
    await job.ack();
    const done = await h.waitForState(key, runId, ['completed', 'failed'], 5_000);
    const expected = h.fake.identitiesFor(key.userId, key.provider, key.resource, START, END);
    assert.equal(done.state, 'completed', done.lastError);
    assert.deepEqual({ pagesDone: done.pagesDone, recordsStored: done.recordsStored }, { pagesDone: PAGES, recordsStored: expected.size });
    const askedAgain = cursorsAsked().slice(askedBefore);
    assert.deepEqual(askedAgain.slice(0, fetchedAhead.length), fetchedAhead, 'the dropped pages fetched again, from the checkpoint');
    assert.equal(new Set(askedAgain).size, PAGES, 'then every page once');
    assert.deepEqual(await storedIdentities(key), expected, 'no page lost');
  });

  it('stores and checkpoints every page it begins before handing the job back', async () => {
    const key = freshKey();
    await h.historical(key, START, END);
    const job = await h.receiveJob();
    const handler = createBackfillHandler(h.dependencies({ maxPagesPerInvocation: 3 }));
    assert.deepEqual((await handler(job.event, lambdaContext)).batchItemFailures, []);
    await job.ack();
    const status = await h.statuses.get(key);
    assert.equal(h.fake.counters.dataResponses, 3, 'no page begun beyond the budget');
    assert.deepEqual({ state: status?.state, pagesDone: status?.pagesDone, recordsStored: status?.recordsStored }, { state: 'running', pagesDone: 3, recordsStored: 3 * PAGE_SIZE });
    const continued = await h.receiveJob();
    assert.equal(continued.event.Records[0]!.body, job.event.Records[0]!.body, 'the job sent again to go on');
    await continued.ack();
  });

  it('keeps to the rate the client is given, which the fake API enforces, one request at a time, every page stored', async () => {
    const key = freshKey();
    const end = '2024-05-03T00:00:00+00:00';
    const stop = await h.startBackfill();
    try {
      const runId = await h.historical(key, START, end);
      const done = await h.waitForState(key, runId, ['completed', 'failed'], 60_000);
      assert.equal(done.state, 'completed', done.lastError);
    } finally {
      await stop();
    }
    const { requestTimes, byStatus, maxConcurrent } = h.fake.counters;
    // As the fake counts: the requests in the second up to each one, that one included.
    const busiestSecond = Math.max(...requestTimes.map((at) => requestTimes.filter((other) => other > at - 1000 && other <= at).length));
    assert.equal(byStatus.get(429) ?? 0, 0, 'no request over the limit');
    assert.ok(busiestSecond <= R, `at most ${R} requests in any second, saw ${busiestSecond}`);
    assert.equal(maxConcurrent, 1, 'one request at a time');
    const expected = h.fake.identitiesFor(key.userId, key.provider, key.resource, START, end);
    const { samples } = await h.records.readTimeseries(key.userId, key.resource, { from: START, to: end });
    assert.deepEqual(new Set(samples.map(({ source, sample }) => `${source.provider}|${source.type}|${sample.timestamp}|${sample.type}`)), expected);
  });
});
