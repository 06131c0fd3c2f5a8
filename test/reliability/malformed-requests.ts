import { Webhook } from 'svix';
import { exampleEvent } from '../../functions/domain/example-events';
import { newMessageId } from '../../functions/domain/message-order';
import type { Random } from './storm';

/**
 * Generated bad requests: every way a request to the webhook endpoint can be wrong that the
 * verifier must refuse with a 4xx, never enqueue, and never crash on. Deterministic in the PRNG.
 */

export interface BadRequest {
  readonly kind: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  /** The status family the verifier must answer: always a 4xx; `status` when one is certain. */
  readonly status?: number;
}

const EVENT_TYPES = ['daily.data.sleep.created', 'daily.data.heartrate.updated', 'historical.data.workouts.created', 'provider.connection.created'];

export function signedHeaders(secret: string, body: Buffer | string, at: Date, msgId = newMessageId(at)): Record<string, string> {
  return {
    'svix-id': msgId,
    'svix-timestamp': String(Math.floor(at.getTime() / 1000)),
    'svix-signature': new Webhook(secret).sign(msgId, at, typeof body === 'string' ? body : body.toString('utf8')),
  };
}

/** Signs raw bytes (svix's `sign` takes text; a signature is an HMAC over `${id}.${timestamp}.${bytes}`). */
async function signBytes(secret: string, msgId: string, timestamp: string, body: Buffer): Promise<string> {
  const { createHmac } = await import('node:crypto');
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const mac = createHmac('sha256', key).update(`${msgId}.${timestamp}.`).update(body).digest('base64');
  return `v1,${mac}`;
}

export function validBody(random: Random): string {
  const eventType = EVENT_TYPES[Math.floor(random() * EVENT_TYPES.length)]!;
  return JSON.stringify(exampleEvent(eventType, { seed: Math.floor(random() * 1e6) }));
}

const randomBytes = (random: Random, length: number): Buffer => Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
const randomSignature = (random: Random) => `v1,${randomBytes(random, 32).toString('base64')}`;

/** One bad request of a kind chosen by `random`; `secret` is the endpoint's, `otherSecret` is not. */
export async function badRequest(random: Random, secret: string, otherSecret: string, now: Date = new Date()): Promise<BadRequest> {
  const json = { 'content-type': 'application/json' };
  const body = validBody(random);
  const choice = Math.floor(random() * 14);
  switch (choice) {
    case 0: {
      const bytes = randomBytes(random, 1 + Math.floor(random() * 2048));
      const msgId = newMessageId(now);
      return { kind: 'random bytes', body: bytes, headers: { 'content-type': 'application/octet-stream', 'svix-id': msgId, 'svix-timestamp': String(Math.floor(now.getTime() / 1000)), 'svix-signature': randomSignature(random) } };
    }
    case 1: {
      // Truncated JSON, signed as truncated: authentic but unreadable.
      const truncated = body.slice(0, Math.floor(random() * (body.length - 1)));
      return { kind: 'truncated JSON, signed', body: Buffer.from(truncated), headers: { ...json, ...signedHeaders(secret, truncated, now) }, status: 400 };
    }
    case 2: {
      // Truncated in transit: the signature is of the whole body.
      const headers = signedHeaders(secret, body, now);
      return { kind: 'truncated JSON, signature of the whole', body: Buffer.from(body.slice(0, Math.floor(random() * (body.length - 1)))), headers: { ...json, ...headers }, status: 401 };
    }
    case 3: {
      // Huge headers: thousands of signatures, or a huge unrelated header.
      const headers = signedHeaders(otherSecret, body, now);
      const many = Array.from({ length: 500 + Math.floor(random() * 1500) }, () => randomSignature(random)).join(' ');
      return random() < 0.5
        ? { kind: 'huge signature header', body: Buffer.from(body), headers: { ...json, ...headers, 'svix-signature': `${many} ${headers['svix-signature']}` }, status: 401 }
        : { kind: 'huge unrelated header', body: Buffer.from(body), headers: { ...json, ...headers, 'x-padding': 'a'.repeat(20_000 + Math.floor(random() * 60_000)) }, status: 401 };
    }
    case 4:
      return { kind: 'wrong secret', body: Buffer.from(body), headers: { ...json, ...signedHeaders(otherSecret, body, now) }, status: 401 };
    case 5: {
      // A genuine signature replayed onto another body, another id or another timestamp.
      const original = signedHeaders(secret, body, now);
      const variant = Math.floor(random() * 3);
      if (variant === 0) {
        // Another body: some event types' examples do not vary with the seed, so change a value.
        const other = JSON.parse(validBody(random)) as { client_user_id: string };
        other.client_user_id = `${other.client_user_id}-${Math.floor(random() * 1e9)}`;
        return { kind: 'replayed signature, other body', body: Buffer.from(JSON.stringify(other)), headers: { ...json, ...original }, status: 401 };
      }
      if (variant === 1) return { kind: 'replayed signature, other id', body: Buffer.from(body), headers: { ...json, ...original, 'svix-id': newMessageId(now) }, status: 401 };
      return { kind: 'replayed signature, other timestamp', body: Buffer.from(body), headers: { ...json, ...original, 'svix-timestamp': String(Number(original['svix-timestamp']) - 1 - Math.floor(random() * 200)) }, status: 401 };
    }
    case 6: {
      // Correctly signed, outside the ±5 minute tolerance: a late replay, or a clock far ahead.
      const minutes = 6 + Math.floor(random() * 60 * 24);
      const at = new Date(now.getTime() + (random() < 0.7 ? -1 : 1) * minutes * 60_000);
      return { kind: 'stale or future timestamp', body: Buffer.from(body), headers: { ...json, ...signedHeaders(secret, body, at) }, status: 401 };
    }
    case 7: {
      // Wrong content types, carrying what such senders send, unsigned or signed with another secret.
      const variants: [string, string][] = [
        ['application/x-www-form-urlencoded', `event_type=daily.data.sleep.created&data=${encodeURIComponent(body)}`],
        ['multipart/form-data; boundary=xyz', `--xyz\r\nContent-Disposition: form-data; name="payload"\r\n\r\n${body}\r\n--xyz--`],
        ['text/xml', `<event><type>daily.data.sleep.created</type></event>`],
        ['text/plain', body],
        ['application/octet-stream', body],
      ];
      const [contentType, text] = variants[Math.floor(random() * variants.length)]!;
      const headers = random() < 0.5 ? signedHeaders(otherSecret, text, now) : {};
      return { kind: `content type ${contentType.split(';')[0]}`, body: Buffer.from(text), headers: { 'content-type': contentType, ...headers } };
    }
    case 8: {
      // Some of the three signature headers missing (or empty).
      const headers: Record<string, string> = signedHeaders(secret, body, now);
      for (const name of Object.keys(headers)) if (random() < 0.5) delete headers[name];
      if (Object.keys(headers).length === 3) headers['svix-signature'] = '';
      return { kind: 'missing signature headers', body: Buffer.from(body), headers: { ...json, ...headers }, status: 401 };
    }
    case 9: {
      // Correctly signed JSON that is not an object.
      const text = ['[]', '[{"event_type":"daily.data.sleep.created"}]', '42', '"daily.data.sleep.created"', 'null', 'true'][Math.floor(random() * 6)]!;
      return { kind: 'signed JSON, not an object', body: Buffer.from(text), headers: { ...json, ...signedHeaders(secret, text, now) }, status: 400 };
    }
    case 10: {
      // Correctly signed object without a usable event_type.
      const envelope = JSON.parse(body) as Record<string, unknown>;
      const bad = [undefined, '', 42, null, ['daily.data.sleep.created'], { name: 'x' }][Math.floor(random() * 6)];
      if (bad === undefined) delete envelope.event_type;
      else envelope.event_type = bad;
      const text = JSON.stringify(envelope);
      return { kind: 'signed object without event_type', body: Buffer.from(text), headers: { ...json, ...signedHeaders(secret, text, now) }, status: 400 };
    }
    case 11: {
      // Unreadable timestamps. (svix reads the integer prefix of the header and signs that, so
      // `1700000000.5` or `1700000000x` verifies like `1700000000`: not malformed, left out.)
      const headers = signedHeaders(secret, body, now);
      const timestamp = ['', 'yesterday', '1e10', '-1', '0x6553f100', '99999999999999999999', ' ', 'NaN'][Math.floor(random() * 8)]!;
      return { kind: 'unreadable timestamp', body: Buffer.from(body), headers: { ...json, ...headers, 'svix-timestamp': timestamp }, status: 401 };
    }
    case 12: {
      // Malformed signature lists: other versions, no comma, not base64, a truncated MAC.
      const headers = signedHeaders(secret, body, now);
      const mac = headers['svix-signature']!.slice(3);
      const signature = [`v2,${mac}`, mac, `v1,`, `v1,${mac.slice(0, 20)}`, `v1;${mac}`, 'v1,@@@@', `v1,${Buffer.from(mac).toString('hex')}`][Math.floor(random() * 7)]!;
      return { kind: 'malformed signature', body: Buffer.from(body), headers: { ...json, ...headers, 'svix-signature': signature }, status: 401 };
    }
    default: {
      // Correctly signed bytes that are not UTF-8 JSON at all (a binary upload).
      const bytes = randomBytes(random, 16 + Math.floor(random() * 512));
      const msgId = newMessageId(now);
      const timestamp = String(Math.floor(now.getTime() / 1000));
      const signature = await signBytes(secret, msgId, timestamp, bytes);
      return { kind: 'signed binary', body: bytes, headers: { 'content-type': 'application/octet-stream', 'svix-id': msgId, 'svix-timestamp': timestamp, 'svix-signature': signature } };
    }
  }
}
