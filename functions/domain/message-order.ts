/**
 * A total order over messages that says which of two deliveries carries newer data.
 *
 * `svix-timestamp` is the time of the delivery attempt and changes on every retry, so it cannot
 * order messages. The Svix message id (`msg_` + KSUID) can: a KSUID starts with its creation time in
 * seconds (big-endian, offset by the KSUID epoch), and the id is fixed for the life of the message,
 * so a retry, a manual recovery or a DLQ replay of an old message keeps its old position. Two
 * messages created in the same second fall back to the KSUID's random payload: deterministic, but
 * arbitrary, which is the best any receiver can do without an event time in the body.
 *
 * The order key is a fixed-width string so that plain string comparison (in code and in DynamoDB
 * condition expressions) gives the order. Data fetched from the Data Access API is ordered by the
 * time of the fetch, in the same key space: it is the state of the record at that second.
 */

const KSUID_EPOCH_SECONDS = 1_400_000_000;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ksuidPattern = /^(?:msg_)?([0-9A-Za-z]{27})$/;

/** A sortable string: 10 digits of Unix seconds, `.`, then a tie-breaker. */
export type OrderKey = string;

function decodeKsuidSeconds(ksuid: string): number | undefined {
  let value = 0n;
  for (const character of ksuid) value = value * 62n + BigInt(BASE62.indexOf(character));
  if (value >= 1n << 160n) return undefined;
  return Number(value >> 128n) + KSUID_EPOCH_SECONDS;
}

function key(seconds: number, tieBreaker: string): OrderKey {
  return `${Math.floor(seconds).toString().padStart(10, '0')}.${tieBreaker}`;
}

/** When Svix created the message, from its KSUID id; `undefined` for ids that are not KSUIDs. */
export function messageCreatedAtMs(svixId: string): number | undefined {
  const match = ksuidPattern.exec(svixId);
  const seconds = match ? decodeKsuidSeconds(match[1]!) : undefined;
  return seconds === undefined ? undefined : seconds * 1000;
}

/**
 * The order key of a webhook delivery. Message ids that are not KSUIDs (another sender, a
 * hand-made test event) fall back to the time the pipeline received them.
 */
export function orderKeyOfDelivery(svixId: string, receivedAtMs: number): OrderKey {
  const createdAtMs = messageCreatedAtMs(svixId);
  if (createdAtMs !== undefined) return key(createdAtMs / 1000, `k${ksuidPattern.exec(svixId)![1]}`);
  return key(receivedAtMs / 1000, `r${String(receivedAtMs % 1000).padStart(3, '0')}${svixId}`);
}

/** The order key of data read from the Data Access API at `fetchedAtMs`. */
export function orderKeyOfFetch(fetchedAtMs: number): OrderKey {
  return key(fetchedAtMs / 1000, `f${String(fetchedAtMs % 1000).padStart(3, '0')}`);
}

/**
 * The order key just above every key of the second of `atMs` and before: each message Svix created
 * in that second or earlier, and each fetch made then or earlier, sorts below it. (KSUIDs count
 * whole seconds, so a message of the same second cannot be told to be later.)
 */
export function orderKeyAfterSecondOf(atMs: number): OrderKey {
  return key(atMs / 1000, '~');
}

/** Creates a Svix-style message id (`msg_` + KSUID) for `at`: used by the CLI and tests to sign events. */
export function newMessageId(at: Date = new Date(), random: Uint8Array = crypto.getRandomValues(new Uint8Array(16))): string {
  let value = BigInt(Math.floor(at.getTime() / 1000) - KSUID_EPOCH_SECONDS);
  for (const byte of random) value = (value << 8n) | BigInt(byte);
  let encoded = '';
  for (let i = 0; i < 27; i += 1) {
    encoded = BASE62[Number(value % 62n)] + encoded;
    value /= 62n;
  }
  return `msg_${encoded}`;
}
