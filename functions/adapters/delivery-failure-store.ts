import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
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

  /**
   * The latest failure of each delivery that has a note, by position in `deliveries`. The notes are
   * listed first and only those found are read: S3 answers a read of a missing key with 403, not
   * 404, to a caller that may not list the bucket, and a list is one request for many letters.
   */
  async latestOf(deliveries: readonly Pick<DeliveryFailure, 'svixId' | 'messageId'>[]): Promise<(DeliveryFailure | undefined)[]> {
    const noted = new Set<string>();
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, ContinuationToken: token }));
      for (const object of page.Contents ?? []) noted.add(object.Key!);
      token = page.NextContinuationToken;
    } while (token);
    return Promise.all(
      deliveries.map(async (delivery) => {
        const key = this.key(delivery);
        if (!noted.has(key)) return undefined;
        const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
        return JSON.parse(await object.Body!.transformToString()) as DeliveryFailure;
      }),
    );
  }
}
