import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resourceNamed } from '../../functions/domain/catalogue';
import { InvalidBackfillRangeError, planBackfill } from '../../functions/domain/backfill-plan';

const resource = (name: string) => resourceNamed(name)!;

describe('planBackfill', () => {
  it('cuts a datetime range into 30-day windows that cover it exactly', () => {
    const plan = planBackfill(resource('activity'), '2025-01-01T00:00:00+00:00', '2025-04-01T12:00:00+00:00');
    assert.equal(plan.windows.length, 4);
    assert.deepEqual(plan.windows[0], { startDate: '2025-01-01T00:00:00.000Z', endDate: '2025-01-31T00:00:00.000Z' });
    assert.equal(plan.windows[1]!.startDate, plan.windows[0]!.endDate);
    assert.equal(plan.windows.at(-1)!.endDate, '2025-04-01T12:00:00.000Z');
  });

  it('normalises a reversed range', () => {
    const forward = planBackfill(resource('heartrate'), '2025-01-01T00:00:00Z', '2025-01-10T00:00:00Z', 3);
    const reversed = planBackfill(resource('heartrate'), '2025-01-10T00:00:00Z', '2025-01-01T00:00:00Z', 3);
    assert.deepEqual(reversed, forward);
    assert.equal(forward.windows.length, 3);
  });

  it('gives date-only resources whole days, end inclusive, without overlap', () => {
    const plan = planBackfill(resource('sleep_cycle'), '2025-01-31T22:15:00+00:00', '2025-01-01T03:00:00+00:00', 10);
    assert.equal(plan.startDate, '2025-01-01');
    assert.equal(plan.endDate, '2025-01-31');
    assert.deepEqual(plan.windows, [
      { startDate: '2025-01-01', endDate: '2025-01-10' },
      { startDate: '2025-01-11', endDate: '2025-01-20' },
      { startDate: '2025-01-21', endDate: '2025-01-30' },
      { startDate: '2025-01-31', endDate: '2025-01-31' },
    ]);
  });

  it('reads offsets before converting to dates', () => {
    const plan = planBackfill(resource('electrocardiogram'), '2025-03-01T23:30:00-05:00', '2025-03-02T01:00:00-05:00');
    assert.deepEqual(plan.windows, [{ startDate: '2025-03-02', endDate: '2025-03-02' }]);
  });

  it('plans profile as one window without a range', () => {
    assert.deepEqual(planBackfill(resource('profile'), '2025-01-01', '2025-06-01').windows, [{}]);
  });

  it('rejects a range that is not a date', () => {
    assert.throws(() => planBackfill(resource('activity'), 'yesterday', '2025-01-01'), InvalidBackfillRangeError);
  });
});
