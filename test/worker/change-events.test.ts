import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createWorkerHandler } from '../../functions/worker';
import { exampleEvent } from '../../functions/domain/example-events';
import { summaryTime } from '../../functions/domain/record-identity';
import { QUEUES } from '../../functions/shared/resources';
import type { DeliveredEvent } from '../../local/eventbridge-stand-in';
import { delivery, lambdaContext, sqsRecord, startWorkerHarness, type WorkerHarness } from './harness';

/**
 * The worker's change events, published through the real adapter onto the EventBridge stand-in and
 * checked against docs/events/ (the capture checks every event it hands out).
 */

/** Every number and string a body's `data` holds, as they would appear in JSON: none may reach a detail. */
function valuesOf(data: unknown): string[] {
  if (typeof data === 'number') return [JSON.stringify(data)];
  if (Array.isArray(data)) return data.flatMap(valuesOf);
  if (typeof data === 'object' && data !== null) return Object.values(data).flatMap(valuesOf);
  return [];
}

const details = (events: DeliveredEvent[]) => events.map((event) => event.detail);

describe('change events of the worker', () => {
  let harness: WorkerHarness;
  before(async () => {
    harness = await startWorkerHarness();
  });
  after(async () => harness.stop());
  beforeEach(() => {
    harness.changes.bus.failEntries(undefined);
    harness.changes.clear();
  });

  const run = (records: ReturnType<typeof sqsRecord>[], overrides = {}) =>
    createWorkerHandler(harness.dependencies(overrides))({ Records: records }, lambdaContext());

  it('publishes one Records Changed per delivery, with who, what, range and counts, and never a value', async () => {
    const summary = exampleEvent('daily.data.sleep.created', { userId: 'user-ce-1', clientUserId: 'client-1' });
    const series = exampleEvent('daily.data.heartrate.created', { userId: 'user-ce-1', clientUserId: 'client-1', sampleCount: 4, sampleIntervalSeconds: 60 });
    const summaryDelivery = delivery('2024-05-14T12:00:00Z');
    const seriesDelivery = delivery('2024-05-14T12:00:01Z');
    assert.deepEqual((await run([sqsRecord(summary, summaryDelivery), sqsRecord(series, seriesDelivery)])).batchItemFailures, []);
    const events = harness.changes.events('Records Changed');
    assert.equal(events.length, 2, 'one per delivery');
    const bySvixId = new Map(details(events).map((detail) => [detail.svix_id, detail]));
    assert.deepEqual(bySvixId.get(summaryDelivery.svixId), {
      user_id: 'user-ce-1',
      client_user_id: 'client-1',
      provider: 'oura',
      resource: 'sleep',
      kind: 'summary',
      // A sleep sits in time at its first time field (the catalogue's `timeFields`).
      time_range: { from: summaryTime('sleep', summary.data), to: summaryTime('sleep', summary.data) },
      records: { created: 1, updated: 0, unchanged: 0 },
      svix_id: summaryDelivery.svixId,
    });
    assert.deepEqual(bySvixId.get(seriesDelivery.svixId), {
      user_id: 'user-ce-1',
      client_user_id: 'client-1',
      provider: 'oura',
      source_type: 'ring',
      resource: 'heartrate',
      kind: 'timeseries',
      time_range: { from: '2024-05-14T08:00:00.000000Z', to: '2024-05-14T08:03:00.000000Z' },
      records: { created: 4, updated: 0, unchanged: 0 },
      svix_id: seriesDelivery.svixId,
    });
    const published = JSON.stringify(details(events));
    for (const value of [...valuesOf(summary.data), ...valuesOf(series.data)]) {
      if (value.length > 1) assert.ok(!published.includes(`:${value}`), `value ${value} reached a detail`);
    }
  });

  it('says updated for a newer version, nothing for a stale one, and publishes again (unchanged) for a redelivery', async () => {
    const created = exampleEvent('daily.data.sleep.created', { userId: 'user-ce-2', updatedAt: '2024-05-14T10:00:00Z' });
    const updated = { ...created, event_type: 'daily.data.sleep.updated', data: { ...created.data, updated_at: '2024-05-14T11:00:00Z' } };
    const first = delivery('2024-05-14T12:00:00Z');
    const second = delivery('2024-05-14T12:00:01Z');
    await run([sqsRecord(created, first)]);
    await run([sqsRecord(updated, second)]);
    await run([sqsRecord(created, delivery('2024-05-14T12:00:02Z'))]);
    await run([sqsRecord(updated, second)]);
    assert.deepEqual(
      details(harness.changes.events('Records Changed')).map((detail) => [detail.svix_id, detail.records]),
      [
        [first.svixId, { created: 1, updated: 0, unchanged: 0 }],
        [second.svixId, { created: 0, updated: 1, unchanged: 0 }],
        // The late older copy is stale: no event. The redelivery of the newest publishes again.
        [second.svixId, { created: 0, updated: 0, unchanged: 1 }],
      ],
    );
  });

  it('publishes connection changes and bodies kept aside, and nothing for notices and out-of-scope events', async () => {
    const connected = exampleEvent('provider.connection.created', { userId: 'user-ce-3', clientUserId: 'client-3' });
    const unknown = { event_type: 'daily.data.brand_new_thing.created', data: { anything: 1 }, user_id: 'user-ce-3', team_id: 't' };
    const historical = exampleEvent('historical.data.sleep.created', { userId: 'user-ce-3' });
    const labtest = { event_type: 'labtest.order.created', data: {}, user_id: 'user-ce-3', team_id: 't' };
    const connectedDelivery = delivery('2024-05-14T12:00:00Z');
    const unknownDelivery = delivery('2024-05-14T12:00:01Z');
    const response = await run([
      sqsRecord(connected, connectedDelivery),
      sqsRecord(unknown, unknownDelivery),
      sqsRecord(historical, delivery('2024-05-14T12:00:02Z')),
      sqsRecord(labtest, delivery('2024-05-14T12:00:03Z')),
    ]);
    assert.deepEqual(response.batchItemFailures, []);
    assert.deepEqual(details(harness.changes.events('Connection Changed')), [
      { user_id: 'user-ce-3', client_user_id: 'client-3', provider: 'oura', change: 'created', result: 'applied', svix_id: connectedDelivery.svixId },
    ]);
    assert.deepEqual(details(harness.changes.events('Events Held Back')), [
      { reason: 'unrecognised_event_type', count: 1, event_type: unknown.event_type, svix_id: unknownDelivery.svixId },
    ]);
    assert.equal(harness.changes.events().length, 2);

    const foreign = exampleEvent('daily.data.sleep.created', { userId: 'user-ce-3', teamId: 'another-team' });
    const foreignDelivery = delivery('2024-05-14T12:00:04Z');
    await createWorkerHandler(harness.dependencies({ expectedTeamId: 'our-team' }))({ Records: [sqsRecord(foreign, foreignDelivery)] }, lambdaContext());
    assert.deepEqual(details(harness.changes.events('Events Held Back')).at(-1), {
      reason: 'foreign_team', count: 1, event_type: 'daily.data.sleep.created', svix_id: foreignDelivery.svixId,
    });
  });

  it('leaves a delivery whose events EventBridge refuses to be retried; the retry publishes what the first stored', async () => {
    const event = exampleEvent('daily.data.sleep.created', { userId: 'user-ce-4' });
    const identity = delivery('2024-05-14T12:00:00Z');
    const record = sqsRecord(event, identity);
    harness.changes.bus.failEntries(() => 'InternalFailure');
    assert.deepEqual((await run([record])).batchItemFailures, [{ itemIdentifier: record.messageId }], 'not acknowledged');
    assert.equal(harness.changes.events().length, 0);
    assert.ok(await harness.records.getSummary('user-ce-4', 'sleep', event.data.id as string), 'stored before the publish failed');
    harness.changes.bus.failEntries(undefined);
    assert.deepEqual((await run([record])).batchItemFailures, []);
    assert.deepEqual(details(harness.changes.events('Records Changed')).map((detail) => [detail.svix_id, detail.records]), [
      [identity.svixId, { created: 0, updated: 0, unchanged: 1 }],
    ]);
  });

  it('says a delivery failed for good on its last attempt, with no payload', async () => {
    const body = exampleEvent('daily.data.sleep.created', { userId: 'user-ce-5' }) as { data: Record<string, unknown> };
    delete body.data.id;
    const identity = delivery('2024-05-14T12:00:00Z');
    await run([sqsRecord(body, identity, { receiveCount: QUEUES.events.maxReceiveCount - 1 })]);
    assert.equal(harness.changes.events().length, 0, 'not before the last attempt');
    await run([sqsRecord(body, identity, { receiveCount: QUEUES.events.maxReceiveCount })]);
    assert.deepEqual(details(harness.changes.events()), [
      { reason: 'delivery_failed', count: 1, event_type: 'daily.data.sleep.created', svix_id: identity.svixId },
    ]);
  });
});
