import { Webhook } from 'svix';
import { newMessageId } from '../../functions/domain/message-order';

/** A fresh `whsec_` secret, as Svix issues them. */
export function newSigningSecret(): string {
  return `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('base64')}`;
}

/** Signs `body` as Svix would at `at`, returning the three headers. */
export function svixHeaders(secret: string, body: string | Buffer, at: Date = new Date(), msgId = newMessageId(at)) {
  return {
    'svix-id': msgId,
    'svix-timestamp': String(Math.floor(at.getTime() / 1000)),
    'svix-signature': new Webhook(secret).sign(msgId, at, body),
  };
}

/** Runs `action`, which must throw, and returns what it threw (assert.throws returns nothing). */
export function caught(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the action to throw');
}
