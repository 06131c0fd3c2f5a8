import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { HeldBackRecord, HeldBackStore } from '../domain/held-back';
import { BUCKET } from '../shared/resources';

/**
 * Held-back backfill records in the raw-body bucket, one object per record under
 * `held-back/{user}/{provider}/{resource}/{run}/w{window}-p{page}-{index}.json`: the record as the API
 * sent it, the reason in the object metadata. The key is the location, so fetching the same page again
 * writes the same object. Kept as long as quarantined bodies (`rawBodyRetentionDays`).
 */
export class S3HeldBackStore implements HeldBackStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly prefix: string = BUCKET.prefixes.heldBack,
  ) {}

  keyOf({ location }: Pick<HeldBackRecord, 'location'>): string {
    const part = encodeURIComponent;
    return (
      `${this.prefix}${part(location.userId)}/${part(location.provider)}/${part(location.resource)}/${part(location.runId)}/` +
      `w${location.windowIndex}-p${location.page}-${part(location.index)}.json`
    );
  }

  async put(heldBack: HeldBackRecord): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.keyOf(heldBack),
        Body: JSON.stringify(heldBack.record),
        ContentType: 'application/json',
        Metadata: { reason: heldBack.reason },
      }),
    );
  }
}
