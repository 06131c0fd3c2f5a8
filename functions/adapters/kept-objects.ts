import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';

/**
 * What the pipeline keeps aside in the raw-body bucket instead of storing it (bodies of unrecognised
 * or quarantined events, held-back backfill records) is listed one way: every object under a prefix
 * with its key, size, last write and metadata, never its body. ListObjectsV2 carries no user
 * metadata, so each object costs one HeadObject (no GetObject: nothing of the payload is read).
 */

/** An object kept under a prefix, as listed. */
export interface KeptObject {
  readonly key: string;
  /** The object's user metadata (`x-amz-meta-*`, names lower case). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly bytes: number;
  /** When the object was last written (ISO 8601); empty when the store does not say. */
  readonly lastModified: string;
}

/** Every object under `prefix` of `bucket`, in key order. */
export async function listKeptObjects(s3: S3Client, bucket: string, prefix: string): Promise<KeptObject[]> {
  const kept: KeptObject[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) {
      const { Metadata = {} } = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: object.Key! }));
      kept.push({ key: object.Key!, metadata: Metadata, bytes: object.Size ?? 0, lastModified: object.LastModified?.toISOString() ?? '' });
    }
    token = page.NextContinuationToken;
  } while (token);
  return kept;
}
