import { after, afterEach, before, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import type { Context } from 'aws-lambda';
import { createBackfillHandler } from '../../functions/backfill';
import { newMessageId, orderKeyOfDelivery } from '../../functions/domain/message-order';
import { logger, metrics } from '../../functions/shared/observability';
import { startHarness, type Harness } from './harness';

/**
 * Skips and failures that used to pass unseen are counted and logged, without payloads: a workout
 * whose announced stream answers 404, and a historical notice whose range cannot be read (it fails
 * at request time, in the worker, and counts in `BackfillFailures` like any failed run).
 */

const lambdaContext = { getRemainingTimeInMillis: () => 60_000, functionName: 'backfill', awsRequestId: 'test' } as unknown as Context;

describe('backfill skips and failures are counted and logged', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.stop());
  beforeEach(() => h.beginCase());
  afterEach(() => {
    mock.restoreAll();
    return h.endCase();
  });

  const metricNames = (addMetric: { mock: { calls: { arguments: unknown[] }[] } }) => addMetric.mock.calls.map((call) => call.arguments[0]);

  it('a workout stream that answers 404 is skipped, counted in BackfillWorkoutStreamsMissing and logged', async () => {
    const addMetric = mock.method(metrics, 'addMetric');
    const info = mock.method(logger, 'info');
    await h.requests.requestWorkoutStream({ userId: 'observed-user-1', provider: 'strava', workoutId: 'no-such-workout', order: orderKeyOfDelivery(newMessageId(), Date.now()) });
    const job = await h.receiveJob();
    assert.deepEqual((await createBackfillHandler(h.dependencies())(job.event, lambdaContext)).batchItemFailures, [], 'skipped, not failed');
    await job.ack();
    assert.deepEqual(metricNames(addMetric).filter((name) => name === 'BackfillWorkoutStreamsMissing'), ['BackfillWorkoutStreamsMissing']);
    const line = info.mock.calls.find((call) => /no stream/.test(String(call.arguments[0])));
    assert.ok(line, 'an INFO line says so');
    assert.deepEqual(Object.keys(line.arguments[1] as object).sort(), ['reason', 'workoutId']);
    assert.match((line.arguments[1] as { reason: string }).reason, /HTTP 404/);
  });

  it('a notice whose range cannot be read counts in BackfillFailures and logs the reason, not the value', async () => {
    const addMetric = mock.method(metrics, 'addMetric');
    const error = mock.method(logger, 'error');
    const key = { userId: 'observed-user-2', provider: 'oura', resource: 'sleep' };
    const svixId = newMessageId();
    await h.requests.requestHistorical({ ...key, startDate: 'sometime-secret-ish', endDate: '2026-01-01', svixId, order: orderKeyOfDelivery(svixId, Date.now()) });
    const status = await h.statuses.get(key);
    assert.equal(status?.state, 'failed');
    assert.equal(status?.lastError, 'start_date is not a date');
    assert.deepEqual(metricNames(addMetric), ['BackfillFailures']);
    assert.equal(error.mock.callCount(), 1);
    assert.doesNotMatch(JSON.stringify(error.mock.calls[0]!.arguments), /secret-ish/);
    // A redelivery of the same notice records nothing new and counts nothing again.
    await h.requests.requestHistorical({ ...key, startDate: 'sometime-secret-ish', endDate: '2026-01-01', svixId, order: orderKeyOfDelivery(svixId, Date.now()) });
    assert.equal(addMetric.mock.callCount(), 1);
  });
});
