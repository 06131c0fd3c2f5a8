import { after, afterEach, before, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { createBackfillHandler } from '../../functions/backfill';
import { resourceNamed } from '../../functions/domain/catalogue';
import type { BackfillJobKey, BackfillStatus } from '../../functions/domain/backfill-job';
import { planRun } from '../../functions/domain/backfill-plan';
import { decideNotice, remainingRanges, type NoticeDecision } from '../../functions/domain/backfill-supersede';
import type { VitalDataSource } from '../../functions/domain/backfill-source';
import { newMessageId, orderKeyOfDelivery } from '../../functions/domain/message-order';
import { metrics } from '../../functions/shared/observability';
import { readBackfills } from '../../cli/record-queries';
import { standInClients, type StandInClients } from '../../local/stand-ins';
import { startHarness, type Harness } from './harness';

/**
 * What a historical notice does to the run stored for its key (`decideNotice`): the union of the
 * announced ranges ends up fetched whatever order notices arrive in, no window a run has done is
 * fetched again, and a notice whose range cannot be read never touches a run.
 */

const lambdaContext = { getRemainingTimeInMillis: () => 60_000, functionName: 'backfill', awsRequestId: 'test' } as unknown as Context;

const sleepResource = resourceNamed('sleep')!;
const sleepCycle = resourceNamed('sleep_cycle')!;
const profile = resourceNamed('profile')!;

/** Notice orders by the second, as Svix's KSUIDs give them. */
const orderAt = (second: number) => orderKeyOfDelivery(newMessageId(new Date(Date.UTC(2026, 4, 1, 0, 0, second))), 0);
const notice = (second: number, startDate: string, endDate: string) => {
  const svixId = newMessageId(new Date(Date.UTC(2026, 4, 1, 0, 0, second)));
  return { svixId, order: orderKeyOfDelivery(svixId, 0), startDate, endDate };
};

const stored = (overrides: Partial<BackfillStatus>): BackfillStatus => ({
  userId: 'u', provider: 'oura', resource: 'sleep', runId: 'stored-run', runOrder: orderAt(30), state: 'running',
  startDate: '2026-01-01T00:00:00.000Z', endDate: '2026-03-31T00:00:00.000Z', windowDays: 30, windowsTotal: 3,
  windowIndex: 1, cursor: null, windowsDone: 1, pagesDone: 1, recordsStored: 0, stepSeq: 1, queuedAt: '', updatedAt: '',
  ...overrides,
});

const planOf = (decision: NoticeDecision) => {
  assert.ok(decision.kind === 'new_run' || decision.kind === 'extend', `a run to write, not ${decision.kind}`);
  return decision.plan;
};

describe('decideNotice: a newer notice replaces the run and takes over what it had left', () => {
  const newer = notice(40, '2026-03-15T00:00:00+00:00', '2026-04-30T00:00:00+00:00');

  it('covers from the start of the window at the older run\'s checkpoint, one range where they meet', () => {
    const decision = decideNotice(sleepResource, newer, stored({}), 30);
    assert.equal(decision.kind, 'new_run');
    assert.deepEqual(planOf(decision), { startDate: '2026-01-31T00:00:00.000Z', endDate: '2026-04-30T00:00:00.000Z', windowsTotal: 3 });
  });
  it('covers the whole range of an older run that never started, failed or waits, and nothing of a completed one', () => {
    assert.equal(planOf(decideNotice(sleepResource, newer, stored({ state: 'queued', windowIndex: 0 }), 30)).startDate, '2026-01-01T00:00:00.000Z');
    assert.equal(planOf(decideNotice(sleepResource, newer, stored({ state: 'failed' }), 30)).startDate, '2026-01-31T00:00:00.000Z');
    assert.equal(planOf(decideNotice(sleepResource, newer, stored({ state: 'waiting_for_api_key' }), 30)).startDate, '2026-01-31T00:00:00.000Z');
    assert.deepEqual(planOf(decideNotice(sleepResource, newer, stored({ state: 'completed', windowIndex: 3 }), 30)), {
      startDate: '2026-03-15T00:00:00.000Z', endDate: '2026-04-30T00:00:00.000Z', windowsTotal: 2,
    });
  });
  it('keeps the notice\'s range when it covers the remainder already; a run stored before run orders is older', () => {
    const wide = notice(40, '2025-12-01T00:00:00Z', '2026-05-01T00:00:00Z');
    assert.deepEqual(planOf(decideNotice(sleepResource, wide, stored({}), 30)), { startDate: '2025-12-01T00:00:00.000Z', endDate: '2026-05-01T00:00:00.000Z', windowsTotal: 6 });
    assert.equal(decideNotice(sleepResource, notice(1, '2026-03-15', '2026-04-30'), stored({ runOrder: undefined }), 30).kind, 'new_run');
  });
  it('fetches a remainder that does not meet its range as a range of its own: no gap, no window done again', () => {
    const later = notice(40, '2026-06-01T00:00:00Z', '2026-06-20T00:00:00Z');
    assert.deepEqual(planOf(decideNotice(sleepResource, later, stored({}), 30)), {
      startDate: '2026-01-31T00:00:00.000Z',
      endDate: '2026-06-20T00:00:00.000Z',
      ranges: [
        { startDate: '2026-01-31T00:00:00.000Z', endDate: '2026-03-31T00:00:00.000Z' },
        { startDate: '2026-06-01T00:00:00.000Z', endDate: '2026-06-20T00:00:00.000Z' },
      ],
      windowsTotal: 3,
    });
  });
  it('the remainder of a run with several ranges is what is left of each, from its checkpoint', () => {
    const run = stored({
      startDate: '2025-10-01T00:00:00.000Z', endDate: '2026-03-31T00:00:00.000Z', windowsTotal: 4, windowIndex: 2,
      ranges: [{ startDate: '2026-01-01T00:00:00.000Z', endDate: '2026-03-01T00:00:00.000Z' }, { startDate: '2025-10-01T00:00:00.000Z', endDate: '2025-11-15T00:00:00.000Z' }],
    });
    assert.deepEqual(remainingRanges(sleepResource, run), [{ startDate: '2025-10-01T00:00:00.000Z', endDate: '2025-11-15T00:00:00.000Z' }]);
  });
  it('a profile has no range: a newer notice is one request', () => {
    assert.deepEqual(planOf(decideNotice(profile, newer, stored({ resource: 'profile', windowsTotal: 1, windowIndex: 0 }), 30)).windowsTotal, 1);
  });
});

describe('decideNotice: a late, older notice adds what lies outside the newer run to it', () => {
  const running = stored({ startDate: '2026-03-15T00:00:00.000Z', endDate: '2026-04-30T00:00:00.000Z', windowsTotal: 2, windowIndex: 1 });

  it('adds the parts outside after the run\'s own range: its windows and checkpoint stay', () => {
    const older = notice(10, '2026-04-20T00:00:00+00:00', '2026-01-01T00:00:00+00:00'); // reversed, as Vital may send it
    const decision = decideNotice(sleepResource, older, running, 7);
    assert.equal(decision.kind, 'extend');
    assert.equal(decision.reopen, false);
    assert.deepEqual(decision.plan.ranges, [
      { startDate: '2026-03-15T00:00:00.000Z', endDate: '2026-04-30T00:00:00.000Z' },
      { startDate: '2026-01-01T00:00:00.000Z', endDate: '2026-03-15T00:00:00.000Z' },
    ]);
    assert.equal(decision.plan.startDate, '2026-01-01T00:00:00.000Z');
    assert.equal(decision.plan.endDate, '2026-04-30T00:00:00.000Z');
    // The run's own window size, not the one asked for new runs; its windows come first, unchanged.
    const before = planRun(sleepResource, running);
    const after = planRun(sleepResource, { ...decision.plan, windowDays: running.windowDays });
    assert.deepEqual(after.slice(0, before.length), before);
    assert.equal(decision.plan.windowsTotal, after.length);
    assert.equal(after.length, 5);
  });
  it('adds both sides when the older range reaches out on both', () => {
    const decision = decideNotice(sleepResource, notice(10, '2026-03-01T00:00:00Z', '2026-05-10T00:00:00Z'), running, 30);
    assert.equal(decision.kind, 'extend');
    assert.deepEqual(decision.plan.ranges.slice(1), [
      { startDate: '2026-03-01T00:00:00.000Z', endDate: '2026-03-15T00:00:00.000Z' },
      { startDate: '2026-04-30T00:00:00.000Z', endDate: '2026-05-10T00:00:00.000Z' },
    ]);
  });
  it('does nothing when the run fetches all of it; a redelivery of the run\'s own notice is a duplicate', () => {
    assert.equal(decideNotice(sleepResource, notice(10, '2026-03-20T00:00:00Z', '2026-04-30T00:00:00Z'), running, 30).kind, 'covered');
    assert.equal(decideNotice(sleepResource, { ...notice(10, '2026-01-01', '2026-02-01'), svixId: running.runId }, running, 30).kind, 'duplicate');
    assert.equal(decideNotice(profile, notice(10, '2026-01-01', '2026-02-01'), stored({ resource: 'profile', windowsTotal: 1 }), 30).kind, 'covered');
  });
  it('reopens a run that completed or failed, at the first window added', () => {
    const older = notice(10, '2026-01-01T00:00:00Z', '2026-03-20T00:00:00Z');
    for (const state of ['completed', 'failed'] as const) {
      const decision = decideNotice(sleepResource, older, { ...running, state, windowIndex: state === 'completed' ? 2 : 1 }, 30);
      assert.equal(decision.kind, 'extend');
      assert.equal(decision.reopen, true, state);
    }
    for (const state of ['queued', 'running', 'waiting_for_api_key'] as const) {
      const decision = decideNotice(sleepResource, older, { ...running, state }, 30);
      assert.ok(decision.kind === 'extend' && !decision.reopen, state);
    }
  });
  it('counts whole days for date-only resources: the parts added share no day with the run', () => {
    const cycles = stored({ resource: 'sleep_cycle', startDate: '2026-03-10', endDate: '2026-03-20', windowsTotal: 1, windowIndex: 0 });
    const decision = decideNotice(sleepCycle, notice(10, '2026-03-01T08:00:00Z', '2026-03-25T23:00:00Z'), cycles, 30);
    assert.equal(decision.kind, 'extend');
    assert.deepEqual(decision.plan.ranges.slice(1), [
      { startDate: '2026-03-01', endDate: '2026-03-09' },
      { startDate: '2026-03-21', endDate: '2026-03-25' },
    ]);
    assert.equal(decideNotice(sleepCycle, notice(10, '2026-03-10T08:00:00Z', '2026-03-20T23:00:00Z'), cycles, 30).kind, 'covered');
  });
});

describe('decideNotice: a notice whose range cannot be read never touches a run', () => {
  it('is recorded in the run\'s place only when none is stored, else on an item of its own, whatever its order', () => {
    const unreadable = notice(40, 'not a date', '2026-04-30T00:00:00Z');
    assert.deepEqual(decideNotice(sleepResource, unreadable, undefined, 30), { kind: 'unreadable', reason: 'start_date is not a date', ownItem: false });
    for (const state of ['queued', 'running', 'waiting_for_api_key', 'failed', 'completed'] as const) {
      assert.deepEqual(decideNotice(sleepResource, unreadable, stored({ state }), 30), { kind: 'unreadable', reason: 'start_date is not a date', ownItem: true }, state);
    }
    assert.equal(decideNotice(sleepResource, { ...notice(5, '2026-01-01', '2026-01-31'), endDate: '2026-13-45' }, stored({}), 30).kind, 'unreadable');
  });
  it('a readable notice, older or newer, takes the place of a recorded unreadable one, which is kept on its own', () => {
    const rejected = stored({ state: 'failed', startDate: 'not a date', endDate: '2026-04-30T00:00:00Z', windowsTotal: 0, windowIndex: 0, lastError: 'start_date is not a date' });
    for (const second of [10, 50]) {
      const decision = decideNotice(sleepResource, notice(second, '2026-01-01T00:00:00Z', '2026-02-15T00:00:00Z'), rejected, 30);
      assert.deepEqual(decision, { kind: 'new_run', plan: { startDate: '2026-01-01T00:00:00.000Z', endDate: '2026-02-15T00:00:00.000Z', windowsTotal: 2 }, keepRejected: true });
    }
    assert.equal((decideNotice(sleepResource, notice(50, '2026-01-01', '2026-02-15'), stored({}), 30) as { keepRejected: boolean }).keepRejected, false);
  });
});

describe('notices in any order on the stand-ins: the union of the announced ranges is stored', () => {
  let h: Harness;
  /** The operator's clients, as `inspect backfills` reads the table. */
  let admin: StandInClients;
  before(async () => {
    h = await startHarness();
    admin = standInClients({ dynamodb: h.endpoints.dynamodb, sqs: h.endpoints.sqsAndS3, s3: h.endpoints.sqsAndS3 });
  });
  after(async () => {
    admin.destroy();
    await h.stop();
  });
  beforeEach(() => h.beginCase());
  afterEach(async () => {
    mock.restoreAll();
    await h.endCase();
  });

  /** A notice sent `secondsBefore` the last one the harness sent: a late, older notice. */
  const lateNotice = async (key: BackfillJobKey, startDate: string, endDate: string, secondsBefore = 3600) => {
    const at = Date.now() - secondsBefore * 1000;
    const svixId = newMessageId(new Date(at));
    await h.requests.requestHistorical({ ...key, startDate, endDate, svixId, order: orderKeyOfDelivery(svixId, at) });
    return svixId;
  };

  /**
   * Works the queued job by hand, one page (the job sends itself on) or all of them; the message
   * taken is acknowledged. (By hand, not with a mapping stopped in between: a long poll the
   * stand-in still holds after the mapping stopped would take the next message out of sight.)
   */
  const byHand = async (maxPagesPerInvocation?: number) => {
    const job = await h.receiveJob();
    const handler = createBackfillHandler(h.dependencies(maxPagesPerInvocation ? { maxPagesPerInvocation } : {}));
    assert.deepEqual((await handler(job.event, lambdaContext)).batchItemFailures, []);
    await job.ack();
  };
  const onePage = () => byHand(1);

  const runToEnd = async (key: BackfillJobKey, runId: string): Promise<BackfillStatus> => {
    const stop = await h.startBackfill();
    try {
      return await h.waitForState(key, runId, ['completed', 'failed']);
    } finally {
      await stop();
    }
  };

  /** Every job message taken was acknowledged: nothing visible or in flight is left on the case's queue. */
  const queueDrained = async (timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { Attributes } = await h.sqs.send(new GetQueueAttributesCommand({ QueueUrl: h.queue.url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
      if (Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible) === 0) return;
      assert.ok(Date.now() < deadline, `the case's queue still holds messages: ${JSON.stringify(Attributes)}`);
      await sleep(50);
    }
  };

  /** The stored records equal the fake API's over the union of `ranges`: nothing missing, nothing else. */
  const assertStoredUnion = async (key: BackfillJobKey, ranges: readonly (readonly [string, string])[]) => {
    const stored = await h.records.querySummaries(key.userId, key.resource, { from: '2025-06-01T00:00:00Z', to: '2026-12-31T00:00:00Z' });
    const expected = new Set(ranges.flatMap(([start, end]) => [...h.fake.identitiesFor(key.userId, key.provider, key.resource, start, end)]));
    assert.ok(expected.size > 0, 'the fake serves data over the ranges');
    const storedIds = stored.map((record) => record.object.id as string);
    assert.equal(storedIds.length, new Set(storedIds).size, 'each record once');
    assert.deepEqual([...expected].filter((id) => !storedIds.includes(id)), [], 'every record of every announced range stored');
    assert.deepEqual(storedIds.filter((id) => !expected.has(id)), [], 'nothing outside the announced ranges');
  };

  /** The windows asked of the fake for a user, by start and end: each asked once means no window done twice. */
  const windowsAsked = (userId: string) =>
    h.fake.counters.dataRequests
      .filter((request) => request.includes(`/${userId}?`))
      .map((request) => {
        const query = new URL(request, 'http://fake').searchParams;
        return `${query.get('start_date')}..${query.get('end_date')}`;
      });

  const assertNoWindowTwice = (userId: string) => {
    const asked = windowsAsked(userId);
    assert.deepEqual(asked.filter((window, index) => asked.indexOf(window) !== index), [], 'no window fetched twice');
  };

  it('fetches what the older run had left as well as its own range', async () => {
    const key = { userId: 'supersede-user-1', provider: 'oura', resource: 'sleep' };
    const olderStart = '2026-01-01T00:00:00+00:00';
    const olderEnd = '2026-03-31T00:00:00+00:00';
    await h.historical(key, olderStart, olderEnd);
    // The older run stores its first window, then is replaced before it goes on.
    await onePage();
    assert.equal((await h.statuses.get(key))?.windowIndex, 1);

    const newerStart = '2026-03-15T00:00:00+00:00';
    const newerEnd = '2026-04-30T00:00:00+00:00';
    const newer = await h.historical(key, newerStart, newerEnd);
    const registered = await h.statuses.get(key);
    assert.equal(registered?.runId, newer);
    assert.equal(registered?.startDate, '2026-01-31T00:00:00.000Z', 'widened to the older run\'s remainder');

    assert.equal((await runToEnd(key, newer)).state, 'completed');
    await assertStoredUnion(key, [[olderStart, olderEnd], [newerStart, newerEnd]]);
    await queueDrained();
  });

  it('a late, older notice reaching outside a running newer run: the run also fetches the part outside, nothing twice', async () => {
    const key = { userId: 'supersede-user-2', provider: 'oura', resource: 'sleep' };
    const newerStart = '2026-03-15T00:00:00+00:00';
    const newerEnd = '2026-05-20T00:00:00+00:00';
    const newer = await h.historical(key, newerStart, newerEnd);
    await onePage();
    const running = await h.statuses.get(key);
    assert.equal(running?.windowIndex, 1);

    const olderStart = '2026-01-01T00:00:00+00:00';
    const olderEnd = '2026-04-01T00:00:00+00:00';
    await lateNotice(key, olderStart, olderEnd);
    const extended = await h.statuses.get(key);
    assert.equal(extended?.runId, newer, 'the newer run stays the run');
    assert.equal(extended?.windowIndex, 1, 'at its checkpoint');
    assert.equal(extended?.stepSeq, running?.stepSeq);
    assert.deepEqual(extended?.ranges, [
      { startDate: '2026-03-15T00:00:00.000Z', endDate: '2026-05-20T00:00:00.000Z' },
      { startDate: '2026-01-01T00:00:00.000Z', endDate: '2026-03-15T00:00:00.000Z' },
    ]);
    assert.equal(extended?.startDate, '2026-01-01T00:00:00.000Z', 'the range listed is the hull');
    const [row] = await readBackfills(admin.dynamodb, h.resources.tables.backfills, key.userId);
    assert.equal(row?.row.ranges?.length, 2, 'inspect backfills lists the ranges');

    const done = await runToEnd(key, newer);
    assert.equal(done.state, 'completed', done.lastError);
    assert.equal(done.windowsDone, done.windowsTotal);
    await assertStoredUnion(key, [[olderStart, olderEnd], [newerStart, newerEnd]]);
    assertNoWindowTwice(key.userId);
    await queueDrained();
  });

  it('a late, older notice after the newer run completed: the run is reopened for the part outside, nothing fetched again', async () => {
    const key = { userId: 'supersede-user-3', provider: 'oura', resource: 'sleep' };
    const newerStart = '2026-03-01T00:00:00+00:00';
    const newerEnd = '2026-04-15T00:00:00+00:00';
    const newer = await h.historical(key, newerStart, newerEnd);
    await byHand();
    assert.equal((await h.statuses.get(key))?.state, 'completed');
    const askedBefore = windowsAsked(key.userId).length;

    // Reaching out on both sides.
    const olderStart = '2026-02-01T00:00:00+00:00';
    const olderEnd = '2026-05-10T00:00:00+00:00';
    await lateNotice(key, olderStart, olderEnd);
    const reopened = await h.statuses.get(key);
    assert.equal(reopened?.runId, newer);
    assert.equal(reopened?.state, 'queued');
    assert.equal(reopened?.windowIndex, 2, 'at the first window added');
    assert.equal(reopened?.finishedAt, undefined);

    const done = await runToEnd(key, newer);
    assert.equal(done.state, 'completed', done.lastError);
    assert.equal(done.windowsDone, done.windowsTotal);
    await assertStoredUnion(key, [[olderStart, olderEnd], [newerStart, newerEnd]]);
    assertNoWindowTwice(key.userId);
    assert.ok(windowsAsked(key.userId).slice(askedBefore).every((window) => !window.startsWith('2026-03-01')), 'the completed windows were not asked again');

    // A redelivery of either notice changes nothing.
    const asked = windowsAsked(key.userId).length;
    await lateNotice(key, olderStart, olderEnd, 7200);
    assert.equal((await h.statuses.get(key))?.state, 'completed');
    assert.equal(windowsAsked(key.userId).length, asked);
    await queueDrained();
  });

  it('a late, older notice while the runner fetches the last window: the run goes on into the windows added', async () => {
    const key = { userId: 'supersede-user-6', provider: 'oura', resource: 'sleep' };
    const newerStart = '2026-03-01T00:00:00+00:00';
    const newerEnd = '2026-04-15T00:00:00+00:00';
    const newer = await h.historical(key, newerStart, newerEnd);
    const olderStart = '2026-01-15T00:00:00+00:00';
    const olderEnd = '2026-03-10T00:00:00+00:00';
    // The notice arrives after the invocation planned the run's two windows, before it records the last one done.
    const api = h.dependencies().source;
    let late: Promise<string> | undefined;
    const source: VitalDataSource = {
      fetchSummaries: async (resource, userId, provider, window) => {
        if (window.startDate === '2026-03-31T00:00:00.000Z') late ??= lateNotice(key, olderStart, olderEnd);
        await late;
        return api.fetchSummaries(resource, userId, provider, window);
      },
      fetchTimeseriesPage: (...args) => api.fetchTimeseriesPage(...args),
      fetchWorkoutStream: (workoutId) => api.fetchWorkoutStream(workoutId),
    };
    const job = await h.receiveJob();
    assert.deepEqual((await createBackfillHandler(h.dependencies({ source }))(job.event, lambdaContext)).batchItemFailures, []);
    await job.ack();
    assert.ok(late, 'the late notice came mid-run');

    const done = await h.statuses.get(key);
    assert.equal(done?.runId, newer);
    assert.equal(done?.state, 'completed', done?.lastError);
    assert.equal(done?.windowsDone, 4);
    assert.equal(done?.windowsTotal, 4);
    await assertStoredUnion(key, [[olderStart, olderEnd], [newerStart, newerEnd]]);
    assertNoWindowTwice(key.userId);
    await queueDrained();
  });

  it('a newer notice whose range cannot be read leaves the running run as it was, and is recorded failed on its own', async () => {
    const key = { userId: 'supersede-user-4', provider: 'oura', resource: 'sleep' };
    const start = '2026-01-01T00:00:00+00:00';
    const end = '2026-03-31T00:00:00+00:00';
    const valid = await h.historical(key, start, end);
    await onePage();
    const before = await h.statuses.get(key);

    const addMetric = mock.method(metrics, 'addMetric');
    const unreadable = await h.historical(key, '2026-02-30T99:00:00Z', end);
    assert.deepEqual(await h.statuses.get(key), before, 'the running run is untouched');
    assert.deepEqual(addMetric.mock.calls.map((call) => call.arguments[0]), ['BackfillFailures'], 'counted as a failed backfill');
    // A redelivery counts nothing again.
    await h.requests.requestHistorical({ ...key, startDate: '2026-02-30T99:00:00Z', endDate: end, svixId: unreadable, order: orderKeyOfDelivery(unreadable, 0) });
    assert.equal(addMetric.mock.callCount(), 1);
    mock.restoreAll();

    const rows = await readBackfills(admin.dynamodb, h.resources.tables.backfills, key.userId);
    assert.deepEqual(rows.map(({ row }) => row.status).sort(), ['failed', 'running'], 'inspect backfills lists the run and the rejected notice');
    const rejected = rows.find(({ row }) => row.status === 'failed')!.row;
    assert.match(rejected.failure_reason!, /start_date is not a date: notice .* ignored, run .* left as it was/);

    const done = await runToEnd(key, valid);
    assert.equal(done.state, 'completed', done.lastError);
    await assertStoredUnion(key, [[start, end]]);
    assertNoWindowTwice(key.userId);
    await queueDrained();
  });

  it('a late, older readable notice takes the place of a newer unreadable one, which stays listed', async () => {
    const key = { userId: 'supersede-user-5', provider: 'oura', resource: 'sleep' };
    await h.historical(key, 'garbage', '2026-03-31T00:00:00+00:00');
    assert.equal((await h.statuses.get(key))?.state, 'failed');
    const start = '2026-02-01T00:00:00+00:00';
    const end = '2026-03-20T00:00:00+00:00';
    const older = await lateNotice(key, start, end);
    assert.equal((await h.statuses.get(key))?.runId, older);

    const done = await runToEnd(key, older);
    assert.equal(done.state, 'completed', done.lastError);
    await assertStoredUnion(key, [[start, end]]);
    const rows = await readBackfills(admin.dynamodb, h.resources.tables.backfills, key.userId);
    assert.deepEqual(rows.map(({ row }) => row.status).sort(), ['completed', 'failed']);
    await queueDrained();
  });
});
