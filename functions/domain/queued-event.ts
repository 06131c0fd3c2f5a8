import { NamedError } from './named-error';
/**
 * The contract between the verifier and the worker: how a verified delivery travels through SQS.
 * The body is carried verbatim; the delivery facts travel as message attributes. A body too large
 * for one SQS message is parked in object storage and the message carries a pointer to it
 * (a claim check), so no size Vital may send is lost.
 */

/** SQS's maximum message size, body and attributes together. */
export const SQS_MAX_MESSAGE_BYTES = 1024 * 1024;

export const ATTRIBUTE = {
  svixId: 'svix-id',
  svixTimestamp: 'svix-timestamp',
  eventType: 'event-type',
  receivedAt: 'received-at',
  claimCheck: 'claim-check',
} as const;

/** Where a claim-checked body is stored. */
export interface ClaimCheck {
  readonly bucket: string;
  readonly key: string;
}

/** The delivery facts every queued event carries. */
export interface QueuedEventAttributes {
  readonly svixId: string;
  readonly svixTimestamp: string;
  readonly eventType: string;
  /** ISO 8601 time at which the verifier accepted the delivery. */
  readonly receivedAt: string;
}

/** A queued event as the worker reads it, before a claim-checked body is fetched. */
export interface QueuedEvent extends QueuedEventAttributes {
  readonly body?: string;
  readonly claimCheck?: ClaimCheck;
}

/** Raised when a queue message lacks what the verifier always writes: it cannot be processed. */
export class MalformedQueueMessageError extends NamedError {}

/** The size SQS charges against its limit for these attributes (name, type and value of each). */
export function attributeBytes(attributes: Readonly<Record<string, string>>): number {
  let total = 0;
  for (const [name, value] of Object.entries(attributes)) {
    total += Buffer.byteLength(name) + Buffer.byteLength('String') + Buffer.byteLength(value);
  }
  return total;
}

/** Whether a body with these attributes fits one SQS message. */
export function fitsOneMessage(body: string, attributes: Readonly<Record<string, string>>, limit = SQS_MAX_MESSAGE_BYTES): boolean {
  return Buffer.byteLength(body) + attributeBytes(attributes) <= limit;
}

/** The attributes of a queued event, by their SQS names. */
export function encodeAttributes(event: QueuedEventAttributes, claimCheck?: ClaimCheck): Record<string, string> {
  const attributes: Record<string, string> = {
    [ATTRIBUTE.svixId]: event.svixId,
    [ATTRIBUTE.svixTimestamp]: event.svixTimestamp,
    [ATTRIBUTE.eventType]: event.eventType,
    [ATTRIBUTE.receivedAt]: event.receivedAt,
  };
  if (claimCheck) attributes[ATTRIBUTE.claimCheck] = `s3://${claimCheck.bucket}/${claimCheck.key}`;
  return attributes;
}

/** Reads a queue message back into a `QueuedEvent`; throws `MalformedQueueMessageError` when it is not one. */
export function decodeQueuedEvent(body: string, attributes: Readonly<Record<string, string | undefined>>): QueuedEvent {
  const read = (name: string): string => {
    const value = attributes[name];
    if (!value) throw new MalformedQueueMessageError(`queue message lacks the ${name} attribute`);
    return value;
  };
  const facts: QueuedEventAttributes = {
    svixId: read(ATTRIBUTE.svixId),
    svixTimestamp: read(ATTRIBUTE.svixTimestamp),
    eventType: read(ATTRIBUTE.eventType),
    receivedAt: read(ATTRIBUTE.receivedAt),
  };
  const pointer = attributes[ATTRIBUTE.claimCheck];
  if (!pointer) return { ...facts, body };
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(pointer);
  if (!match) throw new MalformedQueueMessageError('queue message has an unreadable claim-check pointer');
  return { ...facts, claimCheck: { bucket: match[1]!, key: match[2]! } };
}

/** Where the verifier parks a body too large for SQS: one object per delivery, grouped by day. */
export function claimCheckKey(prefix: string, svixId: string, receivedAt: string): string {
  return `${prefix}${receivedAt.slice(0, 10)}/${encodeURIComponent(svixId)}.json`;
}
