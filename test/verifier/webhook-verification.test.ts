import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  InvalidSignatureError,
  MalformedJsonError,
  MissingEventTypeError,
  MissingSignatureHeadersError,
  PayloadTooLargeError,
  TimestampOutOfToleranceError,
} from '../../functions/domain/ingress-errors';
import { parseSigningSecrets, InvalidSigningSecretValueError } from '../../functions/domain/signing-secrets';
import { verifyDelivery, type InboundRequest } from '../../functions/domain/webhook-verification';
import { caught, newSigningSecret, svixHeaders } from '../support/signing';

const secret = newSigningSecret();
const body = JSON.stringify({
  event_type: 'daily.data.heartrate.created',
  data: { source: { provider: 'oura', type: 'ring' }, data: [{ timestamp: '2026-11-01T00:00:00+00:00', value: 61, unit: 'bpm' }] },
  user_id: 'u-1',
  client_user_id: 'c-1',
  team_id: 't-1',
});
const onlyCurrent = { current: secret, previous: [] };

function request(headers: Record<string, string>, payload: string | undefined = body, isBase64Encoded = false): InboundRequest {
  return { headers, body: payload, isBase64Encoded };
}

describe('verifyDelivery', () => {
  it('accepts a correctly signed body and reports its delivery facts', () => {
    const headers = svixHeaders(secret, body);
    const delivery = verifyDelivery(request(headers), onlyCurrent);
    assert.equal(delivery.svixId, headers['svix-id']);
    assert.equal(delivery.svixTimestamp, headers['svix-timestamp']);
    assert.equal(delivery.eventType, 'daily.data.heartrate.created');
    assert.equal(delivery.body, body);
    assert.equal(delivery.matchedSecret, 'current');
  });

  it('rejects a tampered body with 401 invalid_signature', () => {
    const headers = svixHeaders(secret, body);
    const error = caught(() => verifyDelivery(request(headers, body.replace('61', '62')), onlyCurrent));
    assert.ok(error instanceof InvalidSignatureError);
    assert.equal(error.statusCode, 401);
    assert.equal(error.reason, 'invalid_signature');
  });

  it('rejects a body signed with another secret', () => {
    assert.throws(() => verifyDelivery(request(svixHeaders(newSigningSecret(), body)), onlyCurrent), InvalidSignatureError);
  });

  it('accepts the previous secret during a rotation and says so', () => {
    const previous = newSigningSecret();
    const delivery = verifyDelivery(request(svixHeaders(previous, body)), { current: secret, previous: [previous] });
    assert.equal(delivery.matchedSecret, 'previous');
  });

  it('rejects timestamps more than five minutes old or ahead, and accepts them just inside', () => {
    const now = Date.now();
    for (const offsetMs of [-6 * 60_000, 6 * 60_000]) {
      assert.throws(() => verifyDelivery(request(svixHeaders(secret, body, new Date(now + offsetMs))), onlyCurrent), TimestampOutOfToleranceError);
    }
    for (const offsetMs of [-4 * 60_000, 4 * 60_000]) {
      assert.equal(verifyDelivery(request(svixHeaders(secret, body, new Date(now + offsetMs))), onlyCurrent).matchedSecret, 'current');
    }
  });

  it('rejects a request missing any one of the three headers with 401 missing_signature_headers', () => {
    const headers = svixHeaders(secret, body);
    for (const name of Object.keys(headers)) {
      const partial: Record<string, string> = { ...headers };
      delete partial[name];
      assert.throws(() => verifyDelivery(request(partial), onlyCurrent), MissingSignatureHeadersError, name);
    }
  });

  it('accepts a header with several signatures when any one matches', () => {
    const headers = svixHeaders(secret, body);
    const other = svixHeaders(newSigningSecret(), body, new Date(Number(headers['svix-timestamp']) * 1000), headers['svix-id']);
    const combined = { ...headers, 'svix-signature': `${other['svix-signature']} v1a,ignored ${headers['svix-signature']}` };
    assert.equal(verifyDelivery(request(combined), onlyCurrent).matchedSecret, 'current');
  });

  it('verifies the raw bytes of a base64-encoded body', () => {
    const withUnicode = body.replace('c-1', 'Zoë-🫀');
    const delivery = verifyDelivery(
      request(svixHeaders(secret, withUnicode), Buffer.from(withUnicode).toString('base64'), true),
      onlyCurrent,
    );
    assert.equal(delivery.body, withUnicode);
    assert.equal(delivery.bodyBytes, Buffer.byteLength(withUnicode));
  });

  it('accepts header names in any case and the webhook-* names of Standard Webhooks', () => {
    const headers = svixHeaders(secret, body);
    const upper = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toUpperCase(), value]));
    assert.equal(verifyDelivery(request(upper), onlyCurrent).svixId, headers['svix-id']);
    const standard = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.replace('svix-', 'Webhook-'), value]));
    assert.equal(verifyDelivery(request(standard), onlyCurrent).svixId, headers['svix-id']);
  });

  it('answers 400 for a signed body that is not a JSON object, or has no string event_type', () => {
    for (const payload of ['{"event_type": "x"', '[1,2]', '"text"', 'null']) {
      assert.throws(() => verifyDelivery(request(svixHeaders(secret, payload), payload), onlyCurrent), MalformedJsonError, payload);
    }
    for (const payload of ['{"data": {}}', '{"event_type": 7}', '{"event_type": ""}']) {
      assert.throws(() => verifyDelivery(request(svixHeaders(secret, payload), payload), onlyCurrent), MissingEventTypeError, payload);
    }
  });

  it('checks the signature before the JSON, so an unsigned non-JSON body is a 401', () => {
    assert.throws(() => verifyDelivery(request(svixHeaders(newSigningSecret(), 'nope'), 'nope'), onlyCurrent), InvalidSignatureError);
  });

  it('answers 413 above the size limit, before any signature work', () => {
    const large = JSON.stringify({ event_type: 'x', data: 'y'.repeat(2048) });
    const error = caught(() => verifyDelivery(request({}, large), onlyCurrent, 1024));
    assert.ok(error instanceof PayloadTooLargeError);
    assert.equal(error.statusCode, 413);
    assert.equal(verifyDelivery(request(svixHeaders(secret, large), large), onlyCurrent, 4096).bodyBytes, Buffer.byteLength(large));
  });
});

describe('parseSigningSecrets', () => {
  it('reads a bare secret and the rotation shape', () => {
    const next = newSigningSecret();
    assert.deepEqual(parseSigningSecrets(secret), { current: secret, previous: [] });
    assert.deepEqual(parseSigningSecrets(JSON.stringify({ current: next, previous: secret })), { current: next, previous: [secret] });
    assert.deepEqual(parseSigningSecrets(JSON.stringify({ current: next, previous: [secret] })), { current: next, previous: [secret] });
  });

  it('refuses anything else without echoing the value', () => {
    for (const value of ['', 'plain-text-value', '{"previous": "whsec_abc"}', '{"current": 1}', '{bad json']) {
      const error = caught(() => parseSigningSecrets(value));
      assert.ok(error instanceof InvalidSigningSecretValueError);
      if (value) assert.ok(!error.message.includes(value));
    }
  });
});
