import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackfillJobKey } from '../../functions/domain/backfill-job';
import type { ChangeDetail } from '../../functions/domain/change-events';
import { createBackfillHandler } from '../../functions/backfill';
import type { Context } from 'aws-lambda';
import { startHarness, type Harness } from './harness';

/**
 * The backfill's change events, through the real adapter onto the EventBridge stand-in, checked
 * against docs/events/: a Records Changed per stored page (and source), progress per checkpoint,
 * and one finish per run; a page whose events are refused is stored and published again.
 */

const START = '2025-01-01T00:00:00+00:00';
const END = '2025-02-15T00:00:00+00:00'; // two 30-day windows

const lambdaContext = { getRemainingTimeInMillis: () => 60_000, functionName: 'backfill', awsRequestId: 'test' } as unknown as Context;

let h: Harness;
let users = 0;
const freshUser = () => `events-user-${(users += 1)}`;

before(async () => {
  h = await startHarness({ fake: { pageSize: 200, samplesPerDay: 24 } });
});
after(() => h.stop());

const recordsChanged = (runId: string) =>
  h.changes.events('Records Changed').map((event) => event.detail as ChangeDetail<'Records Changed'>).filter((detail) => detail.backfill_run === runId);
const progressOf = (runId: string) =>
  h.changes.events('Backfill Progress').map((event) => event.detail as ChangeDetail<'Backfill Progress'>).filter((detail) => detail.backfill_run === runId);
const finishesOf = (runId: string) =>
  h.changes.events('Backfill Finished').map((event) => event.detail as ChangeDetail<'Backfill Finished'>).filter((detail) => detail.backfill_run === runId);
/** The run's finish events, once there is one: they are published after the status says the run ended. */
async function finished(runId: string): Promise<ChangeDetail<'Backfill Finished'>[]> {
  const deadline = Date.now() + 10_000;
  while (finishesOf(runId).length === 0) {
    assert.ok(Date.now() < deadline, `no Backfill Finished for ${runId}`);
    await sleep(20);
  }
  return finishesOf(runId);
}
const total = (details: ChangeDetail<'Records Changed'>[], count: 'created' | 'updated' | 'unchanged') =>
  details.reduce((sum, detail) => sum + detail.records[count], 0);

describe('change events of the backfill', () => {
  beforeEach(async () => {
    await h.beginCase();
    await h.startBackfill();
  });
  afterEach(() => {
    h.changes.bus.failEntries(undefined);
    return h.endCase();
  });

  it('publishes each page stored, the progress of each checkpoint and the completion, for timeseries and summaries', async () => {
    for (const resource of ['heartrate', 'activity']) {
      const key: BackfillJobKey = { userId: freshUser(), provider: 'oura', resource };
      const runId = await h.historical(key, START, END);
      const status = await h.waitForState(key, runId, ['completed', 'failed']);
      assert.equal(status.state, 'completed', status.lastError);
      const finishes = await finished(runId);
      const pages = recordsChanged(runId);
      assert.ok(pages.length >= 2, `${resource}: a Records Changed per page`);
      // A record on the border of two windows comes in both: created by the first, updated (a newer fetch) by the second.
      assert.equal(total(pages, 'created'), h.fake.identitiesFor(key.userId, key.provider, resource, START, END).size, `${resource}: each record created once`);
      // At least once: a job SQS hands over twice (a slow invocation outliving its visibility timeout) announces its page twice.
      assert.ok(total(pages, 'created') + total(pages, 'updated') >= status.recordsStored, `${resource}: every record stored announced`);
      for (const page of pages) {
        assert.equal(page.user_id, key.userId);
        assert.equal(page.provider, 'oura');
        assert.equal(page.resource, resource);
        assert.equal(page.kind, resource === 'heartrate' ? 'timeseries' : 'summary');
        assert.ok(page.time_range && page.time_range.from <= page.time_range.to && page.time_range.from >= '2024-12-31', JSON.stringify(page.time_range));
      }
      const progress = progressOf(runId);
      const checkpoints = [...new Set(progress.map((step) => step.pages_done))].sort((a, b) => a - b);
      assert.deepEqual(checkpoints, checkpoints.map((_, index) => index + 1), 'a progress event for each checkpoint');
      assert.deepEqual(progress.at(-1), {
        user_id: key.userId, provider: 'oura', resource, backfill_run: runId,
        windows_done: status.windowsTotal, windows_total: status.windowsTotal, pages_done: status.pagesDone, records_stored: status.recordsStored,
      });
      for (const finish of finishes) {
        assert.deepEqual(finish, {
          user_id: key.userId, provider: 'oura', resource, backfill_run: runId, state: 'completed',
          start_date: status.startDate, end_date: status.endDate, records_stored: status.recordsStored,
        });
      }
    }
  });

  it('announces the records a page holds back and each workout stream it stores', async () => {
    const key: BackfillJobKey = { userId: freshUser(), provider: 'strava', resource: 'workouts' };
    h.fake.setFaults({ brokenRecords: 0.3 });
    const runId = await h.historical(key, START, END);
    const status = await h.waitForState(key, runId, ['completed', 'failed']);
    assert.equal(status.state, 'completed', status.lastError);
    assert.ok((status.heldBack ?? 0) > 0, 'the fake broke some workouts');
    const heldBack = h.changes.events('Events Held Back').map((event) => event.detail as ChangeDetail<'Events Held Back'>).filter((detail) => detail.backfill_run === runId);
    assert.ok(heldBack.every((detail) => detail.reason === 'schema_violation' && detail.user_id === key.userId && detail.resource === 'workouts'));
    assert.equal(heldBack.reduce((sum, detail) => sum + detail.count, 0), status.heldBack);
    const streams = recordsChanged(runId).filter((detail) => detail.kind === 'workout_stream');
    assert.deepEqual(
      streams.map((detail) => detail.workout_id).sort(),
      [...h.fake.counters.served.get(`${key.userId}/workout_stream`)!].sort(),
      'one event per stream stored, naming its workout',
    );
    assert.ok(streams.every((detail) => detail.resource === 'workout_stream' && detail.records.created === 1 && detail.time_range === undefined));
  });

  it('announces a run that fails for good, with its reason', async () => {
    const key: BackfillJobKey = { userId: freshUser(), provider: 'oura', resource: 'sleep' };
    h.fake.setFaults({ fixedStatus: 403 });
    const runId = await h.historical(key, START, END);
    const status = await h.waitForState(key, runId, ['completed', 'failed']);
    assert.equal(status.state, 'failed');
    const [finish, ...more] = await finished(runId);
    assert.equal(more.length, 0);
    assert.equal(finish?.state, 'failed');
    assert.equal(finish?.reason, status.lastError);
    assert.match(finish?.reason ?? '', /403/);
    assert.equal(recordsChanged(runId).length, 0);
  });
});

describe('change events of the backfill, when EventBridge refuses them', () => {
  beforeEach(() => h.beginCase());
  afterEach(() => {
    h.changes.bus.failEntries(undefined);
    return h.endCase();
  });

  it('leaves the page unchecked and the job to SQS; its redelivery stores the page again and publishes it', async () => {
    const key: BackfillJobKey = { userId: freshUser(), provider: 'oura', resource: 'heartrate' };
    // The first page's Records Changed is refused on every try of the publisher (one call and its 3 retries).
    let refused = 0;
    h.changes.bus.failEntries((entry) => {
      if (entry.detailType !== 'Records Changed' || refused === 4) return undefined;
      refused += 1;
      return 'InternalFailure';
    });
    const runId = await h.historical(key, START, END);
    const job = await h.receiveJob();
    const handler = createBackfillHandler(h.dependencies());
    const [record] = job.event.Records;
    assert.deepEqual((await handler(job.event, lambdaContext)).batchItemFailures, [{ itemIdentifier: record!.messageId }], 'not acknowledged');
    const stopped = await h.statuses.get(key);
    assert.equal(stopped?.pagesDone, 0, 'the page stored before its events were refused is not checkpointed');
    assert.match(stopped?.lastError ?? '', /ChangeEventsNotPublishedError: 1 of 1 change events were not published: InternalFailure ×1/);
    assert.equal(recordsChanged(runId).length, 0);

    // SQS delivers the message again.
    const redelivered = { Records: [{ ...record!, attributes: { ...record!.attributes, ApproximateReceiveCount: '2' } }] };
    assert.deepEqual((await handler(redelivered, lambdaContext)).batchItemFailures, []);
    await job.ack();
    const status = await h.statuses.get(key);
    assert.equal(status?.state, 'completed', status?.lastError);
    const pages = recordsChanged(runId);
    // The first page, fetched again, replaces its own samples (a newer fetch): they count as updated.
    assert.deepEqual(pages[0]!.records, { created: 0, updated: 200, unchanged: 0 });
    assert.equal(total(pages, 'created') + total(pages, 'updated'), status!.recordsStored, 'every record stored announced');
    assert.equal(total(pages, 'created'), h.fake.identitiesFor(key.userId, key.provider, 'heartrate', START, END).size - 200);
  });
});
