import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { messageCreatedAtMs, newMessageId, orderKeyOfDelivery, orderKeyOfFetch } from '../../functions/domain/message-order';

describe('message order', () => {
  it('reads the creation second back out of a Svix KSUID message id', () => {
    const at = new Date('2026-11-22T08:15:42.900Z');
    const id = newMessageId(at);
    assert.match(id, /^msg_[0-9A-Za-z]{27}$/);
    assert.equal(messageCreatedAtMs(id), Date.parse('2026-11-22T08:15:42Z'));
    assert.equal(messageCreatedAtMs('msg_short'), undefined);
    assert.equal(messageCreatedAtMs('evt-123'), undefined);
  });

  it('orders messages by creation time, not by when they were (re)delivered', () => {
    const older = newMessageId(new Date('2026-11-22T08:00:00Z'));
    const newer = newMessageId(new Date('2026-11-22T08:00:01Z'));
    const retryOfOlderReceivedLater = orderKeyOfDelivery(older, Date.parse('2026-11-23T10:00:00Z'));
    const newerReceivedEarlier = orderKeyOfDelivery(newer, Date.parse('2026-11-22T08:00:02Z'));
    assert.ok(retryOfOlderReceivedLater < newerReceivedEarlier);
    assert.equal(orderKeyOfDelivery(older, 1), orderKeyOfDelivery(older, 2), 'a retry keeps its position');
  });

  it('breaks a tie within one second deterministically by the KSUID payload', () => {
    const at = new Date('2026-11-22T08:00:00Z');
    const a = newMessageId(at, new Uint8Array(16).fill(1));
    const b = newMessageId(at, new Uint8Array(16).fill(2));
    assert.ok(orderKeyOfDelivery(a, 0) < orderKeyOfDelivery(b, 0));
  });

  it('places API fetches and non-KSUID deliveries on the same time axis', () => {
    const message = newMessageId(new Date('2026-11-22T08:00:00Z'));
    const fetchedLater = orderKeyOfFetch(Date.parse('2026-11-22T09:00:00Z'));
    const fetchedEarlier = orderKeyOfFetch(Date.parse('2026-11-22T07:00:00Z'));
    assert.ok(fetchedEarlier < orderKeyOfDelivery(message, 0));
    assert.ok(orderKeyOfDelivery(message, 0) < fetchedLater);
    assert.ok(orderKeyOfDelivery('hand-made-id', Date.parse('2026-11-22T07:30:00Z')) < orderKeyOfDelivery(message, 0));
  });
});
