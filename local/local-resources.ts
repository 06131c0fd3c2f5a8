import { CreateBucketCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BUCKET, CHANGE_EVENT_BUS, consumerTimeouts, QUEUES, TABLES, type QueueDefinition } from '../functions/shared/resources';
import { createTables, localTableName } from './provision';

/**
 * Creates the pipeline's queues (each with its dead-letter queue and redrive policy) and bucket on
 * the local stand-ins from the same definitions the CDK stack deploys (`QUEUES`, `BUCKET`; tables
 * through `createTables`), and returns the environment through which the handlers find them.
 * Every step is idempotent, so a restart on persisted data finds what it made before.
 */

/** Prefix of every local resource name: `vital-pipeline-Events`, `vital-pipeline-Summaries`, ... */
export const LOCAL_NAME_PREFIX = 'vital-pipeline-';

export type QueueName = keyof typeof QUEUES;
export type TableName = keyof typeof TABLES;

/** A queue created on the stand-in, with its dead-letter queue. */
export interface LocalQueue {
  readonly definition: QueueDefinition;
  readonly url: string;
  readonly arn: string;
  readonly deadLetterUrl: string;
  readonly deadLetterArn: string;
  /** The consumer's timeout in force: the definition's, scaled by the time scale. */
  readonly functionTimeoutSeconds: number;
  /** The visibility timeout in force: the definition's, scaled by the time scale (the ratio kept). */
  readonly visibilityTimeoutSeconds: number;
}

export interface LocalResources {
  readonly tables: Readonly<Record<TableName, string>>;
  readonly queues: Readonly<Record<QueueName, LocalQueue>>;
  readonly bucket: string;
  /** The change-event bus's name: the EventBridge stand-in is started with it (it has no API to create one). */
  readonly changeEventBus: string;
  /** Table, queue, bucket and bus names by the environment variables the handlers read. */
  readonly environment: Readonly<Record<string, string>>;
}

export interface CreateLocalResourcesOptions {
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly s3: S3Client;
  /** The SQS stand-in's endpoint: queue URLs are rewritten onto it, as fauxqs names hosts that do not resolve. */
  readonly sqsEndpoint: string;
  /**
   * Scales every consumer's timeout and its queue's visibility timeout together (see
   * `consumerTimeouts`), so retries come sooner: fast local runs and tests. @default 1
   */
  readonly timeScale?: number;
  readonly namePrefix?: string;
}

/** fauxqs answers `http://sqs.<region>.localhost:<port>/<account>/<name>`, and finds queues by name. */
function onEndpoint(queueUrl: string, endpoint: string): string {
  return new URL(new URL(queueUrl).pathname, endpoint).toString();
}

async function createQueue(
  sqs: SQSClient,
  endpoint: string,
  name: string,
  attributes: Record<string, string>,
): Promise<{ url: string; arn: string }> {
  // CreateQueue refuses an existing name with other attributes, so create bare, then set them.
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const url = onEndpoint(QueueUrl!, endpoint);
  if (Object.keys(attributes).length > 0) {
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }));
  }
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  return { url, arn: Attributes!.QueueArn! };
}

/** Creates (or finds) one queue of a definition with its dead-letter queue and redrive policy. */
export async function createLocalQueue(
  options: Pick<CreateLocalResourcesOptions, 'sqs' | 'sqsEndpoint' | 'timeScale'>,
  definition: QueueDefinition,
  prefix: string,
): Promise<LocalQueue> {
  const { functionTimeoutSeconds, visibilityTimeoutSeconds } = consumerTimeouts(definition, options.timeScale);
  const retention = { MessageRetentionPeriod: String(definition.messageRetentionSeconds) };
  const deadLetters = await createQueue(options.sqs, options.sqsEndpoint, `${prefix}${definition.id}-dlq`, retention);
  const queue = await createQueue(options.sqs, options.sqsEndpoint, `${prefix}${definition.id}`, {
    ...retention,
    VisibilityTimeout: String(visibilityTimeoutSeconds),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetters.arn, maxReceiveCount: definition.maxReceiveCount }),
  });
  return {
    definition,
    url: queue.url,
    arn: queue.arn,
    deadLetterUrl: deadLetters.url,
    deadLetterArn: deadLetters.arn,
    functionTimeoutSeconds,
    visibilityTimeoutSeconds,
  };
}

async function createBucket(s3: S3Client, name: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: name }));
  } catch {
    await s3.send(new CreateBucketCommand({ Bucket: name }));
  }
}

/** Creates (or finds) every table, queue and bucket of the pipeline on the stand-ins. */
export async function createLocalResources(options: CreateLocalResourcesOptions): Promise<LocalResources> {
  const prefix = options.namePrefix ?? LOCAL_NAME_PREFIX;
  const bucket = `${prefix}${BUCKET.id}`.toLowerCase();
  const [tableEnvironment, queueEntries] = await Promise.all([
    createTables(options.dynamodb, prefix),
    Promise.all(
      Object.entries(QUEUES).map(async ([name, definition]) => [name, await createLocalQueue(options, definition, prefix)] as const),
    ),
    createBucket(options.s3, bucket),
  ]);
  const queues = Object.fromEntries(queueEntries) as Record<QueueName, LocalQueue>;
  const tables = Object.fromEntries(
    Object.entries(TABLES).map(([name, definition]) => [name, localTableName(prefix, definition)]),
  ) as Record<TableName, string>;
  const changeEventBus = `${prefix}${CHANGE_EVENT_BUS.id}`;
  const environment: Record<string, string> = { ...tableEnvironment, [BUCKET.envVar]: bucket, [CHANGE_EVENT_BUS.envVar]: changeEventBus };
  for (const queue of Object.values(queues)) {
    environment[queue.definition.envVar] = queue.url;
    environment[queue.definition.deadLetterEnvVar] = queue.deadLetterUrl;
  }
  return { tables, queues, bucket, changeEventBus, environment };
}
