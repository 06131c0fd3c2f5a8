import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Context } from 'aws-lambda';
import { createBackfillHandler } from '../../functions/backfill';
import { QUEUES } from '../../functions/shared/resources';
import { newMessageId, orderKeyOfDelivery } from '../../functions/domain/message-order';
import { standInClients, type StandInClients } from '../../local/stand-ins';
import { retryBackfills } from '../../cli/commands/backfill-retry';
import { readBackfills } from '../../cli/record-queries';
import type { PipelineTarget } from '../../cli/target';
import { startHarness, type Harness } from './harness';

/**
 * `vital-pipeline backfill retry`: a failed run resumes from its checkpoint (windows done are not
 * fetched again) and completes; `inspect backfills` shows why and when a run failed. What each
 * run that is not retryable gets: `skipped` with the reason, its status untouched.
 */

const START = '2026-06-01T00:00:00+00:00';
const END = '2026-07-20T00:00:00+00:00';
let users = 0;
const freshUser = () => `retry-user-${(users += 1)}`;
const lambdaContext = { getRemainingTimeInMillis: () => 60_000, functionName: 'backfill', awsRequestId: 'test' } as unknown as Context;
const windowStarts = (h: Harness) => h.fake.counters.dataRequests.map((request) => new URL(request, 'http://x').searchParams.get('start_date'));

describe('backfill retry', () => {
  let h: Harness;
  let admin: StandInClients;
  /** The CLI's view of the harness: the target a command works on. */
  const target = (): PipelineTarget =>
    ({
      description: 'the test pipeline',
      dynamodb: admin.dynamodb,
      sqs: admin.sqs,
      tables: h.resources.tables,
      queues: { ...h.resources.queues, backfill: h.queue },
    }) as unknown as PipelineTarget;

  before(async () => {
    h = await startHarness();
    admin = standInClients({ dynamodb: h.endpoints.dynamodb, sqs: h.endpoints.sqsAndS3, s3: h.endpoints.sqsAndS3 });
  });
  after(async () => {
    admin.destroy();
    await h.stop();
  });
  beforeEach(() => h.beginCase());
  afterEach(() => h.endCase());

  it('resumes a run failed by a 404 from its checkpoint, after inspect showed why and when it failed', async () => {
    const key = { userId: freshUser(), provider: 'oura', resource: 'activity' };
    const runId = await h.historical(key, START, END);
    const firstWindowOnly = createBackfillHandler(h.dependencies({ maxPagesPerInvocation: 1 }));
    const first = await h.receiveJob();
    assert.deepEqual((await firstWindowOnly(first.event, lambdaContext)).batchItemFailures, []);
    await first.ack();
    h.fake.setFaults({ fixedStatus: 404 });
    const second = await h.receiveJob();
    assert.deepEqual((await firstWindowOnly(second.event, lambdaContext)).batchItemFailures, [], 'a permanent failure is acknowledged');
    await second.ack();
    h.fake.setFaults({});

    const [shown] = await readBackfills(admin.dynamodb, h.resources.tables.backfills, key.userId);
    assert.equal(shown?.row.status, 'failed');
    assert.match(shown?.row.failure_reason ?? '', /HTTP 404/);
    assert.ok(shown?.row.failed_at && !Number.isNaN(Date.parse(shown.row.failed_at)), 'when it failed');

    h.fake.resetCounters();
    const results = await retryBackfills(target(), { kind: 'user', userId: key.userId });
    assert.deepEqual(
      results.map(({ outcome, run_id, resumes_at_window, windows_total }) => ({ outcome, run_id, resumes_at_window, windows_total })),
      [{ outcome: 'retried', run_id: runId, resumes_at_window: 1, windows_total: 2 }],
    );
    assert.match(results[0]!.reason, /HTTP 404/);
    const queued = await h.statuses.get(key);
    assert.deepEqual({ state: queued?.state, retries: queued?.retries, lastError: queued?.lastError }, { state: 'queued', retries: 1, lastError: undefined });

    const resumed = await h.receiveJob();
    assert.deepEqual((await createBackfillHandler(h.dependencies())(resumed.event, lambdaContext)).batchItemFailures, []);
    await resumed.ack();
    const done = await h.statuses.get(key);
    assert.equal(done?.state, 'completed');
    assert.equal(windowStarts(h).length, 1, 'only the window left at the failure is fetched');
    const stored = await h.records.querySummaries(key.userId, key.resource, { from: '2026-05-01T00:00:00Z', to: '2026-08-01T00:00:00Z' });
    assert.deepEqual(new Set(stored.map((record) => record.object.id)), h.fake.identitiesFor(key.userId, key.provider, key.resource, START, END));

    const again = await retryBackfills(target(), { kind: 'run', ...key });
    assert.deepEqual(again.map(({ outcome, reason }) => ({ outcome, reason })), [{ outcome: 'skipped', reason: 'it is completed, not failed' }]);
  });

  it('retries a run failed because its message went to the DLQ, with every failed run of the deployment', async () => {
    const key = { userId: freshUser(), provider: 'oura', resource: 'sleep' };
    const runId = await h.historical(key, START, END);
    const last = await h.receiveJob(QUEUES.backfill.maxReceiveCount);
    h.fake.setFaults({ fixedStatus: 503 });
    try {
      assert.equal((await createBackfillHandler(h.dependencies())(last.event, lambdaContext)).batchItemFailures.length, 1, 'left to SQS, then the DLQ');
    } finally {
      h.fake.setFaults({});
    }
    await last.ack(); // As SQS would move it to the DLQ.
    assert.equal((await h.statuses.get(key))?.state, 'failed');

    const results = (await retryBackfills(target(), { kind: 'deployment' })).filter((result) => result.user_id === key.userId);
    assert.deepEqual(results.map(({ outcome, run_id }) => ({ outcome, run_id })), [{ outcome: 'retried', run_id: runId }]);
    const stop = await h.startBackfill();
    try {
      assert.equal((await h.waitForState(key, runId, ['completed', 'failed'])).state, 'completed');
    } finally {
      await stop();
    }
  });

  it('skips a run whose announced range cannot be read, saying why, and leaves it failed', async () => {
    const key = { userId: freshUser(), provider: 'oura', resource: 'sleep' };
    const svixId = newMessageId();
    await h.requests.requestHistorical({ ...key, startDate: 'not a date', endDate: END, svixId, order: orderKeyOfDelivery(svixId, Date.now()) });
    const results = await retryBackfills(target(), { kind: 'run', ...key });
    assert.equal(results[0]?.outcome, 'skipped');
    assert.match(results[0]!.reason, /range cannot be read/);
    assert.equal((await h.statuses.get(key))?.state, 'failed');
    await assert.rejects(retryBackfills(target(), { kind: 'run', ...key, resource: 'body' }), /no backfill for user/);
  });
});
