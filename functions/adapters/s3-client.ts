import { S3Client } from '@aws-sdk/client-s3';

let client: S3Client | undefined;

/**
 * The container's S3 client. Its endpoint honours `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, which
 * is how the local pipeline points it at its stand-in; local endpoints have no per-bucket host
 * names, so S3 then needs path-style addressing.
 */
export const s3Client = (): S3Client =>
  (client ??= new S3Client({ forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL) }));
