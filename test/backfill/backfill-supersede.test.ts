import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Context } from 'aws-lambda';
import { createBackfillHandler } from '../../functions/backfill';
import { resourceNamed } from '../../functions/domain/catalogue';
import type { BackfillStatus } from '../../functions/domain/backfill-job';
import { rangeCoveringRemainder } from '../../functions/domain/backfill-supersede';
import { startHarness, type Harness } from './harness';

/**
 * A newer historical notice replaces an older run of the same key; the union of the announced ranges
 * still ends up fetched: the newer run's range is widened to what the older run had left.
 */

const lambdaContext = { getRemainingTimeInMillis: () => 60_000, functionName: 'backfill', awsRequestId: 'test' } as unknown as Context;

describe('rangeCoveringRemainder', () => {
  const sleep = resourceNamed('sleep')!;
  const older = (overrides: Partial<BackfillStatus>): BackfillStatus => ({
    userId: 'u', provider: 'oura', resource: 'sleep', runId: 'old', state: 'running',
    startDate: '2026-01-01T00:00:00.000Z', endDate: '2026-03-31T00:00:00.000Z', windowDays: 30, windowsTotal: 3,
    windowIndex: 1, cursor: null, windowsDone: 1, pagesDone: 1, recordsStored: 0, stepSeq: 1, queuedAt: '', updatedAt: '',
    ...overrides,
  });
  const notice = { startDate: '2026-03-15T00:00:00+00:00', endDate: '2026-04-30T00:00:00+00:00' };

  it('widens the range to the start of the window at the older run\'s checkpoint', () => {
    assert.deepEqual(rangeCoveringRemainder(sleep, notice, older({})), { startDate: '2026-01-31T00:00:00.000Z', endDate: '2026-04-30T00:00:00.000Z' });
  });
  it('covers the whole range of an older run that never started, failed or waits, and nothing of a completed one', () => {
    assert.equal(rangeCoveringRemainder(sleep, notice, older({ state: 'queued', windowIndex: 0 })).startDate, '2026-01-01T00:00:00.000Z');
    assert.equal(rangeCoveringRemainder(sleep, notice, older({ state: 'failed' })).startDate, '2026-01-31T00:00:00.000Z');
    assert.equal(rangeCoveringRemainder(sleep, notice, older({ state: 'waiting_for_api_key' })).startDate, '2026-01-31T00:00:00.000Z');
    assert.deepEqual(rangeCoveringRemainder(sleep, notice, older({ state: 'completed', windowIndex: 3 })), notice);
  });
  it('keeps the notice\'s range when it covers the remainder already, or the older run had an unreadable range', () => {
    const wide = { startDate: '2025-12-01T00:00:00Z', endDate: '2026-05-01T00:00:00Z' };
    assert.deepEqual(rangeCoveringRemainder(sleep, wide, older({})), { startDate: '2025-12-01T00:00:00.000Z', endDate: '2026-05-01T00:00:00.000Z' });
    assert.deepEqual(rangeCoveringRemainder(sleep, notice, older({ startDate: 'garbage', windowsTotal: 0, state: 'failed' })), notice);
  });
});

describe('a newer notice replacing a running run', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.stop());
  beforeEach(() => h.beginCase());
  afterEach(() => h.endCase());

  it('fetches what the older run had left as well as its own range', async () => {
    const key = { userId: 'supersede-user-1', provider: 'oura', resource: 'sleep' };
    const olderStart = '2026-01-01T00:00:00+00:00';
    const olderEnd = '2026-03-31T00:00:00+00:00';
    await h.historical(key, olderStart, olderEnd);
    // The older run stores its first window, then is replaced before it goes on.
    const first = await h.receiveJob();
    assert.deepEqual((await createBackfillHandler(h.dependencies({ maxPagesPerInvocation: 1 }))(first.event, lambdaContext)).batchItemFailures, []);
    await first.ack();
    assert.equal((await h.statuses.get(key))?.windowIndex, 1);

    const newerStart = '2026-03-15T00:00:00+00:00';
    const newerEnd = '2026-04-30T00:00:00+00:00';
    const newer = await h.historical(key, newerStart, newerEnd);
    const registered = await h.statuses.get(key);
    assert.equal(registered?.runId, newer);
    assert.equal(registered?.startDate, '2026-01-31T00:00:00.000Z', 'widened to the older run\'s remainder');

    const stop = await h.startBackfill();
    try {
      assert.equal((await h.waitForState(key, newer, ['completed', 'failed'])).state, 'completed');
    } finally {
      await stop();
    }
    const stored = await h.records.querySummaries(key.userId, key.resource, { from: '2025-12-01T00:00:00Z', to: '2026-06-01T00:00:00Z' });
    const announced = new Set([
      ...h.fake.identitiesFor(key.userId, key.provider, key.resource, olderStart, olderEnd),
      ...h.fake.identitiesFor(key.userId, key.provider, key.resource, newerStart, newerEnd),
    ]);
    const storedIds = new Set(stored.map((record) => record.object.id as string));
    assert.deepEqual([...announced].filter((id) => !storedIds.has(id)), [], 'every record of both announced ranges stored');
  });
});
