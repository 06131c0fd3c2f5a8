import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * AWS SDK clients built once per container. Endpoints come from the SDK's own environment
 * variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SQS`, ...), which is how the local pipeline points
 * the same handlers at its stand-ins; S3 then needs path-style addressing, as local endpoints have
 * no per-bucket host names.
 */
const usesLocalEndpoint = (service: string): boolean =>
  Boolean(process.env[`AWS_ENDPOINT_URL_${service}`] ?? process.env.AWS_ENDPOINT_URL);

let sqs: SQSClient | undefined;
let s3: S3Client | undefined;
let dynamodb: DynamoDBClient | undefined;

export const sqsClient = (): SQSClient => (sqs ??= new SQSClient({}));
export const s3Client = (): S3Client => (s3 ??= new S3Client({ forcePathStyle: usesLocalEndpoint('S3') }));
export const dynamoDbClient = (): DynamoDBClient => (dynamodb ??= new DynamoDBClient({}));
