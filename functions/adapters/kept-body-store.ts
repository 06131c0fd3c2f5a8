import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Delivery, KeptBodyStore, KeptReason } from '../domain/event-processing';
import { ownerMetadata } from '../domain/envelope-owner';
import { messageCreatedAtMs } from '../domain/message-order';
import { claimCheckKey, type QueuedEventAttributes } from '../domain/queued-event';
import { listKeptObjects } from './kept-objects';

/**
 * Where a kept delivery is stored: one object per message, grouped by the day Svix created it (its
 * KSUID time; the day of receipt for ids that are not KSUIDs). Every delivery of one message
 * (retries, a recovery days later, a replay) maps to the same key, so keeping is idempotent.
 */
export function keptBodyKey(prefix: string, delivery: Pick<Delivery, 'svixId' | 'receivedAt'>): string {
  const createdAtMs = messageCreatedAtMs(delivery.svixId);
  const day = createdAtMs === undefined ? delivery.receivedAt.slice(0, 10) : new Date(createdAtMs).toISOString().slice(0, 10);
  return claimCheckKey(prefix, delivery.svixId, day);
}

/** A kept body as listed: its delivery facts and size, never the body. */
export interface KeptBody extends QueuedEventAttributes {
  readonly key: string;
  readonly reason: string;
  readonly bytes: number;
}

/**
 * Object metadata of a kept body: the delivery facts exactly as the verifier queued them, so a
 * replay can queue it again as it was, and the user its envelope names, so that an erasure finds
 * it without reading it (`ownerMetadata`). The event type comes from the signed body and may hold
 * any character, so it is URI-encoded (S3 metadata travels as HTTP headers); a Vital type is unchanged.
 */
function metadataOf(delivery: Delivery, reason: KeptReason, userId?: string): Record<string, string> {
  return {
    reason,
    'svix-id': delivery.svixId,
    'svix-timestamp': delivery.svixTimestamp,
    'event-type': encodeURIComponent(delivery.eventType),
    'received-at': delivery.receivedAt,
    ...ownerMetadata(userId),
  };
}

/**
 * Deliveries the worker keeps instead of processing, in the raw-body bucket under a prefix of their
 * own so that IAM and lifecycle rules treat them apart: another team's events (`quarantine/`) and
 * event types the catalogue does not know (`unrecognised/`). The body is kept verbatim, the
 * delivery facts and the reason as object metadata. The worker only keeps; the CLI lists, reads and
 * (after a replay) removes.
 */
export class S3KeptBodyStore implements KeptBodyStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  async keep(delivery: Delivery, reason: KeptReason, userId?: string): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: keptBodyKey(this.prefix, delivery),
        Body: delivery.body,
        ContentType: 'application/json',
        Metadata: metadataOf(delivery, reason, userId),
      }),
    );
  }

  /**
   * Every kept body under the prefix, oldest receipt first. An object lacking a delivery fact (not
   * written by `keep`) is listed with that fact empty.
   */
  async list(): Promise<KeptBody[]> {
    const kept = (await listKeptObjects(this.s3, this.bucket, this.prefix)).map(({ key, metadata, bytes }) => ({
      key,
      reason: metadata.reason ?? '',
      svixId: metadata['svix-id'] ?? '',
      svixTimestamp: metadata['svix-timestamp'] ?? '',
      eventType: decodeURIComponent(metadata['event-type'] ?? ''),
      receivedAt: metadata['received-at'] ?? '',
      bytes,
    }));
    return kept.sort((a, b) => a.receivedAt.localeCompare(b.receivedAt));
  }

  async body(key: string): Promise<string> {
    const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    if (!object.Body) throw new Error(`kept object ${key} has no body`);
    return object.Body.transformToString('utf8');
  }

  async remove(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }
}
