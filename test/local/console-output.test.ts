import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changeEventLine, deliveryLogOf, describeDelivery, type DeliveryLog } from '../../local/console-output';
import type { DeliveredEvent } from '../../local/eventbridge-stand-in';

/**
 * What the local console says a delivery did, from the worker's own "Delivery processed" log
 * (the pipeline-level wiring is in test/e2e and test/local/simulate-connect.test.ts), and what it
 * says of each change event published (`vital-pipeline events` prints the same facts).
 */

const delivery = (facts: Partial<DeliveryLog>): DeliveryLog => ({ svixId: 'msg_1', action: 'summary', result: 'wrote', written: 0, stale: 0, unchanged: 0, ...facts });

describe('the console line of a processed delivery', () => {
  it('names each outcome in words, with counts and their units', () => {
    const cases: [Partial<DeliveryLog>, string][] = [
      [{ action: 'summary', result: 'wrote', written: 1 }, 'stored 1 record'],
      [{ action: 'timeseries', result: 'wrote', written: 3, stale: 1, unchanged: 2 }, 'stored 3 samples, 1 stale version ignored, 2 samples already stored'],
      [{ action: 'summary', result: 'duplicate', unchanged: 1 }, 'duplicate: already stored, nothing changed'],
      [{ action: 'summary', result: 'stale', stale: 1 }, 'stale version ignored: newer data is stored'],
      [{ action: 'timeseries', result: 'stale', stale: 2, unchanged: 1 }, 'stale version ignored: newer data is stored (1 sample already stored)'],
      [{ action: 'historical', result: 'none' }, 'backfill requested (vital-pipeline inspect backfills)'],
      [{ action: 'workout_stream', result: 'wrote', written: 1 }, 'stored 1 stream notice'],
      [{ action: 'connection', result: 'wrote', written: 1 }, 'stored 1 connection state'],
      [{ action: 'unknown', result: 'none' }, 'unknown event type: body kept for a replay (vital-pipeline inspect unrecognised)'],
      [{ action: 'foreign_team', result: 'none' }, "quarantined: another team's event, kept aside (EXPECTED_TEAM_ID)"],
      [{ action: 'out_of_scope', result: 'none' }, 'nothing to store: outside what the pipeline keeps'],
      [{ action: 'device', result: 'none' }, 'nothing to store: a device event'],
      // Whatever it carried: a historical notice of an erased user starts no backfill.
      [{ action: 'historical', result: 'erased' }, 'user erased: dropped, nothing stored (the message predates the erasure)'],
    ];
    for (const [facts, words] of cases) assert.equal(describeDelivery(delivery(facts)), words, JSON.stringify(facts));
  });

  it('reads only the worker\'s delivery line, and no value of the payload is in it', () => {
    const line = JSON.stringify({ level: 'INFO', message: 'Delivery processed', svixId: 'msg_2', eventType: 'daily.data.sleep.created', action: 'summary', result: 'duplicate', written: 0, stale: 0, unchanged: 1 });
    assert.deepEqual(deliveryLogOf(line), { svixId: 'msg_2', action: 'summary', result: 'duplicate', written: 0, stale: 0, unchanged: 1 });
    assert.equal(deliveryLogOf(JSON.stringify({ level: 'INFO', message: 'Backfill page stored', svixId: 'msg_2' })), undefined);
    assert.equal(deliveryLogOf('not json'), undefined);
  });
});

describe('the console line of a change event', () => {
  const delivered = (detailType: string, detail: Record<string, unknown>): DeliveredEvent => ({
    version: '0', id: 'e-1', 'detail-type': detailType, source: 'vital-webhook-pipeline', account: '000000000000', time: '2026-05-14T12:00:01Z', region: 'us-east-1', resources: [], detail,
  });

  it('says who, what, when, how many, and which delivery or run, for each detail-type', () => {
    const cases: [DeliveredEvent, string | undefined, string][] = [
      [
        delivered('Records Changed', { user_id: 'u-1', provider: 'oura', resource: 'heartrate', kind: 'timeseries', time_range: { from: '2026-05-14T00:00:00.000000Z', to: '2026-05-14T01:00:00.000000Z' }, records: { created: 4, updated: 1, unchanged: 0 }, svix_id: 'msg_1' }),
        'msg_1',
        'user u-1  oura/heartrate  2026-05-14T00:00:00.000000Z..2026-05-14T01:00:00.000000Z  4 created, 1 updated, 0 unchanged',
      ],
      [delivered('Records Changed', { user_id: 'u-1', resource: 'profile', kind: 'summary', records: { created: 0, updated: 0, unchanged: 1 }, backfill_run: 'run-1' }), 'run run-1', 'user u-1  profile  -  0 created, 0 updated, 1 unchanged'],
      [delivered('Connection Changed', { user_id: 'u-2', provider: 'garmin', change: 'error', error_type: 'token_refresh_failed', result: 'unchanged', svix_id: 'msg_2' }), 'msg_2', 'user u-2  garmin  -  error (token_refresh_failed), unchanged'],
      [delivered('Backfill Progress', { user_id: 'u-3', provider: 'oura', resource: 'sleep', backfill_run: 'run-3', windows_done: 1, windows_total: 4, pages_done: 2, records_stored: 20 }), 'run run-3', 'user u-3  oura/sleep  -  window 1 of 4, 2 pages, 20 records stored'],
      [
        delivered('Backfill Finished', { user_id: 'u-3', provider: 'oura', resource: 'sleep', backfill_run: 'run-3', state: 'failed', start_date: '2026-04-01', end_date: '2026-05-01', records_stored: 20, reason: 'VitalApiError: HTTP 500' }),
        'run run-3',
        'user u-3  oura/sleep  2026-04-01..2026-05-01  failed, 20 records stored: VitalApiError: HTTP 500',
      ],
      [delivered('Events Held Back', { reason: 'foreign_team', count: 1, event_type: 'daily.data.sleep.created', svix_id: 'msg_4' }), 'msg_4', 'user -  daily.data.sleep.created  -  1 held back: foreign_team'],
    ];
    for (const [event, id, text] of cases) {
      assert.deepEqual(changeEventLine(event), { source: 'events', ...(id ? { id } : {}), eventType: event['detail-type'], text }, event['detail-type']);
    }
  });

  it('shows only the fields it names, whatever else a detail holds', () => {
    const line = changeEventLine(delivered('Records Changed', { user_id: 'u-1', resource: 'glucose', kind: 'timeseries', records: { created: 1, updated: 0, unchanged: 0 }, client_user_id: 'client-secret-id', value: 7.4, samples: [{ value: 7.4 }] }));
    assert.doesNotMatch(JSON.stringify(line), /client-secret-id|7\.4/);
  });
});
