import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ownerMetadata } from '../domain/envelope-owner';
import type { ClaimCheck } from '../domain/queued-event';
import type { ClaimCheckStore } from './event-queue';

/** Claim-check bodies in an S3 bucket, under one prefix so that IAM can grant exactly that prefix. */
export class S3ClaimCheckStore implements ClaimCheckStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async put(key: string, body: string, userId?: string): Promise<ClaimCheck> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/json', Metadata: ownerMetadata(userId) }),
    );
    return { bucket: this.bucket, key };
  }

  async get(claimCheck: ClaimCheck): Promise<string> {
    const object = await this.s3.send(new GetObjectCommand({ Bucket: claimCheck.bucket, Key: claimCheck.key }));
    if (!object.Body) throw new Error(`claim-check object ${claimCheck.key} has no body`);
    return object.Body.transformToString('utf8');
  }
}
