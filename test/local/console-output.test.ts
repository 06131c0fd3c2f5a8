import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deliveryLogOf, describeDelivery, type DeliveryLog } from '../../local/console-output';

/**
 * What the local console says a delivery did, from the worker's own "Delivery processed" log
 * (the pipeline-level wiring is in test/e2e and test/local/simulate-connect.test.ts).
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
