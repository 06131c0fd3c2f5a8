import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { erasedBy, readOncePerUser, settledAt, type Erasure } from '../../functions/domain/erasure';
import { newMessageId, orderKeyOfDelivery, orderKeyOfFetch } from '../../functions/domain/message-order';

/**
 * The erasure's rules, alone: what counts as created before an erasure (never a message that might
 * be older, so the same second counts as before), that a register is read once per user however
 * many deliveries ask, and when the second sweep may begin.
 */

const T = Date.parse('2026-05-14T10:00:00.600Z');
const erasure: Erasure = { userId: 'u', erasedAt: new Date(T).toISOString() };
const messageAt = (ms: number) => {
  const svixId = newMessageId(new Date(ms));
  return orderKeyOfDelivery(svixId, ms + 5_000);
};

describe('erasure rules', () => {
  it('drops what was created before the erasure, or in its second, and nothing created after', () => {
    assert.equal(erasedBy(undefined, messageAt(T - 60_000)), false, 'no erasure, nothing dropped');
    assert.equal(erasedBy(erasure, messageAt(T - 60_000)), true);
    // KSUIDs count whole seconds: a message of T's second may be older than T, so it is dropped.
    assert.equal(erasedBy(erasure, messageAt(T + 300)), true);
    assert.equal(erasedBy(erasure, messageAt(T + 1_000)), false);
    // A fetch (a backfill run queued, a page fetched) and an id that is not a KSUID (its receipt time) alike.
    assert.equal(erasedBy(erasure, orderKeyOfFetch(T - 1)), true);
    assert.equal(erasedBy(erasure, orderKeyOfFetch(T + 1_000)), false);
    assert.equal(erasedBy(erasure, orderKeyOfDelivery('hand-made-id', T - 10_000)), true);
    assert.equal(erasedBy(erasure, orderKeyOfDelivery('hand-made-id', T + 10_000)), false);
  });

  it('reads each user\'s erasure once for the life of a register shared by an invocation\'s deliveries', async () => {
    const asked: string[] = [];
    const register = readOncePerUser({
      latest: async (userId) => {
        asked.push(userId);
        return userId === 'u' ? erasure : undefined;
      },
    });
    const answers = await Promise.all(['u', 'v', 'u', 'u', 'v'].map((userId) => register.latest(userId)));
    assert.deepEqual(answers, [erasure, undefined, erasure, erasure, undefined]);
    assert.deepEqual(asked, ['u', 'v']);
  });

  it('sweeps again once the longest consumer timeout has passed since the tombstone was known written', () => {
    assert.equal(settledAt(T, [30, 120]), T + 120_000);
    assert.equal(settledAt(T, [1, 4]), T + 4_000);
  });
});
