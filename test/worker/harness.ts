import type { Context, SQSRecord } from 'aws-lambda';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { WorkerDependencies } from '../../functions/worker';
import type { ProcessingPorts } from '../../functions/domain/event-processing';
import { DynamoDbRecordStore } from '../../functions/adapters/record-store';
import { DynamoDbConnectionStore } from '../../functions/adapters/connection-store';
import { DynamoDbErasureRegister } from '../../functions/adapters/erasure-register';
import { S3ClaimCheckStore } from '../../functions/adapters/claim-check-store';
import { S3KeptBodyStore } from '../../functions/adapters/kept-body-store';
import { S3DeliveryFailureStore } from '../../functions/adapters/delivery-failure-store';
import { QueuedBackfillRequests, SqsBackfillQueue } from '../../functions/adapters/backfill-requests';
import { DynamoDbBackfillStatusStore } from '../../functions/adapters/backfill-status-store';
import { newMessageId } from '../../functions/domain/message-order';
import { encodeAttributes, type ClaimCheck } from '../../functions/domain/queued-event';
import { BUCKET, QUEUES, TABLES } from '../../functions/shared/resources';
import { createTables } from '../../local/provision';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { functionCredentials } from '../../local/aws-access';
import { enforceStackAccess } from '../../local/stack-access';
import { LOCAL_AWS, standInClients, startSqsAndS3 } from '../../local/stand-ins';
import { startChangeEventCapture, type ChangeEventCapture } from '../support/change-events';
import { startTestDynamoDb, uniquePrefix } from '../support/dynamodb-local';

/**
 * The worker on real stand-ins: DynamoDB Local with the project's tables, fauxqs for S3 (claim
 * checks, kept bodies), the real stores and the real backfill requests (status table and job queue).
 */

export interface WorkerHarness {
  readonly client: DynamoDBClient;
  readonly documents: DynamoDBDocumentClient;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly env: Record<string, string>;
  readonly records: DynamoDbRecordStore;
  readonly connections: DynamoDbConnectionStore;
  /** The real backfill requests: status items in the backfills table, job messages on `backfillQueueUrl`. */
  readonly backfillStatuses: DynamoDbBackfillStatusStore;
  readonly sqs: SQSClient;
  readonly backfillQueueUrl: string;
  /** The change events the worker published, through the real adapter onto an EventBridge stand-in. */
  readonly changes: ChangeEventCapture;
  /** Worker dependencies on the stand-ins; `overrides` replace parts (a failing store wrapper). */
  dependencies(overrides?: Partial<WorkerDependencies> & { expectedTeamId?: string }): WorkerDependencies;
  /** Ports of their own, as another Lambda container of the worker holds them (`dependencies` share one set). */
  containerPorts(): ProcessingPorts;
  stop(): Promise<void>;
}

let prefixCounter = 0;

export async function startWorkerHarness(): Promise<WorkerHarness> {
  const [dynamo, sqsAndS3, changes] = await Promise.all([startTestDynamoDb(), startSqsAndS3(), startChangeEventCapture()]);
  const client = new DynamoDBClient({ endpoint: dynamo.endpoint, ...LOCAL_AWS });
  const documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  const s3 = new S3Client({ endpoint: sqsAndS3.endpoint, forcePathStyle: true, ...LOCAL_AWS });
  const bucket = 'worker-test-bodies';
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const tables = await createTables(client, uniquePrefix(`worker${(prefixCounter += 1)}-`));
  const records = new DynamoDbRecordStore(documents, {
    summariesTable: tables[TABLES.summaries.envVar]!,
    timeseriesTable: tables[TABLES.timeseries.envVar]!,
  });
  const connections = new DynamoDbConnectionStore(documents, tables[TABLES.connections.envVar]!);
  const sqs = new SQSClient({ endpoint: sqsAndS3.endpoint, ...LOCAL_AWS });
  const backfillQueueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `worker-backfill-${prefixCounter}` }))).QueueUrl!;
  const backfillStatuses = new DynamoDbBackfillStatusStore(documents, tables[TABLES.backfills.envVar]!);
  const env: Record<string, string> = { ...tables, [BUCKET.envVar]: bucket, [QUEUES.backfill.envVar]: backfillQueueUrl };

  // The worker's stores sign as its role, held to the stack's IAM policies; the checks above read as the administrator.
  enforceStackAccess([dynamo, sqsAndS3], env);
  const asWorker = standInClients({ dynamodb: dynamo.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint }, functionCredentials('worker'));
  const workerDocuments = DynamoDBDocumentClient.from(asWorker.dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  /** The worker's ports as one Lambda container holds them: stores of its own, signing as the worker's role. */
  const containerPorts = (): ProcessingPorts => ({
    records: new DynamoDbRecordStore(workerDocuments, { summariesTable: env[TABLES.summaries.envVar]!, timeseriesTable: env[TABLES.timeseries.envVar]! }),
    connections: new DynamoDbConnectionStore(workerDocuments, env[TABLES.connections.envVar]!),
    backfillRequests: new QueuedBackfillRequests({
      statuses: new DynamoDbBackfillStatusStore(workerDocuments, env[TABLES.backfills.envVar]!),
      queue: new SqsBackfillQueue(asWorker.sqs, backfillQueueUrl),
    }),
    quarantine: new S3KeptBodyStore(asWorker.s3, bucket, BUCKET.prefixes.quarantine),
    unrecognised: new S3KeptBodyStore(asWorker.s3, bucket, BUCKET.prefixes.unrecognised),
    changes: changes.publisher,
    erasures: new DynamoDbErasureRegister(workerDocuments, env[TABLES.erasures.envVar]!),
  });
  const workerPorts = containerPorts();
  return {
    client,
    documents,
    s3,
    bucket,
    env,
    records,
    connections,
    backfillStatuses,
    sqs,
    backfillQueueUrl,
    changes,
    containerPorts,
    dependencies: (overrides = {}) => ({
      ports: workerPorts,
      claimChecks: new S3ClaimCheckStore(asWorker.s3, bucket),
      failures: new S3DeliveryFailureStore(asWorker.s3, bucket, BUCKET.prefixes.deliveryFailures),
      ...overrides,
    }),
    stop: async () => {
      asWorker.destroy();
      client.destroy();
      s3.destroy();
      sqs.destroy();
      await Promise.all([dynamo.stop(), sqsAndS3.stop(), changes.close()]);
    },
  };
}

let deliveryCounter = 0;

/** A new delivery's identity: a unique Svix-style id created at `createdAt` (which fixes its order). */
export function delivery(createdAt: string): { svixId: string; receivedAt: string } {
  const random = new Uint8Array(16);
  new DataView(random.buffer).setUint32(12, (deliveryCounter += 1));
  return { svixId: newMessageId(new Date(createdAt), random), receivedAt: new Date(Date.parse(createdAt) + 2_000).toISOString() };
}

let messageCounter = 0;

/** The SQS record the verifier would have queued for `body`. */
export function sqsRecord(
  body: unknown,
  identity: { svixId: string; receivedAt: string },
  options: { eventType?: string; claimCheck?: ClaimCheck; receiveCount?: number } = {},
): SQSRecord {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const eventType = options.eventType ?? (JSON.parse(text) as { event_type: string }).event_type;
  const attributes = encodeAttributes({ ...identity, svixTimestamp: String(Math.floor(Date.now() / 1000)), eventType }, options.claimCheck);
  return {
    messageId: `message-${(messageCounter += 1)}`,
    receiptHandle: `receipt-${messageCounter}`,
    body: options.claimCheck ? attributes['claim-check']! : text,
    attributes: {
      ApproximateReceiveCount: String(options.receiveCount ?? 1),
      SentTimestamp: String(Date.now()),
      SenderId: 'verifier',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(attributes).map(([name, value]) => [name, { stringValue: value, dataType: 'String', stringListValues: [], binaryListValues: [] }]),
    ),
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:events',
    awsRegion: 'us-east-1',
  };
}

/** A Lambda context with the worker's timeout left. */
export function lambdaContext(): Context {
  const deadline = Date.now() + 30_000;
  return {
    functionName: 'worker',
    awsRequestId: `request-${Date.now()}`,
    getRemainingTimeInMillis: () => deadline - Date.now(),
  } as unknown as Context;
}
