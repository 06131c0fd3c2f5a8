import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Delivery, QuarantineStore } from '../domain/event-processing';
import { messageCreatedAtMs } from '../domain/message-order';

/**
 * Where a quarantined delivery is kept: one object per message, grouped by the day Svix created it
 * (its KSUID time; the day of receipt for ids that are not KSUIDs). Every delivery of one message
 * (retries, a recovery days later, a replay) maps to the same key, so quarantining is idempotent.
 */
export function quarantineKey(prefix: string, delivery: Pick<Delivery, 'svixId' | 'receivedAt'>): string {
  const createdAtMs = messageCreatedAtMs(delivery.svixId);
  const day = createdAtMs === undefined ? delivery.receivedAt.slice(0, 10) : new Date(createdAtMs).toISOString().slice(0, 10);
  return `${prefix}${day}/${encodeURIComponent(delivery.svixId)}.json`;
}

/**
 * Quarantined deliveries in the raw-body bucket, under their own prefix so that IAM and lifecycle
 * rules can treat them apart. The body is kept verbatim, the reason as object metadata.
 */
export class S3QuarantineStore implements QuarantineStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  async quarantine(delivery: Delivery, reason: string): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: quarantineKey(this.prefix, delivery),
        Body: delivery.body,
        ContentType: 'application/json',
        Metadata: { reason, 'svix-id': delivery.svixId, 'received-at': delivery.receivedAt },
      }),
    );
  }
}
