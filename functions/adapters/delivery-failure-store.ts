import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { failureNoteName, type DeliveryFailure, type DeliveryFailureLog } from '../domain/delivery-failure';

/**
 * Failure notes in the raw-body bucket under `failures/` (one small JSON object per delivery, the
 * latest failure), expiring with the dead-letter queue's retention (lib/vital-webhook-pipeline-stack.ts).
 * The worker may only put them; the CLI reads them beside the dead letters.
 */
export class S3DeliveryFailureStore implements DeliveryFailureLog {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  private key(failure: Pick<DeliveryFailure, 'svixId' | 'messageId'>): string {
    return `${this.prefix}${failureNoteName(failure)}.json`;
  }

  async record(failure: DeliveryFailure): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: this.key(failure), Body: JSON.stringify(failure), ContentType: 'application/json' }),
    );
  }

  /** The latest failure of a delivery, or `undefined` when none was noted (or it expired). */
  async latest(delivery: Pick<DeliveryFailure, 'svixId' | 'messageId'>): Promise<DeliveryFailure | undefined> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(delivery) }));
      return JSON.parse(await object.Body!.transformToString()) as DeliveryFailure;
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }
}
