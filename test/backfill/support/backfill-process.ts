import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createBackfillHandler } from '../../../functions/backfill';
import { SqsBackfillQueue } from '../../../functions/adapters/backfill-requests';
import { DynamoDbBackfillStatusStore } from '../../../functions/adapters/backfill-status-store';
import { DynamoDbRecordStore } from '../../../functions/adapters/record-store';
import { DynamoDbErasureRegister } from '../../../functions/adapters/erasure-register';
import { VitalApiClient } from '../../../functions/adapters/vital-api-client';
import { S3HeldBackStore } from '../../../functions/adapters/held-back-store';
import { S3WorkoutStreamStore } from '../../../functions/adapters/workout-stream-store';
import { QUEUES } from '../../../functions/shared/resources';
import { SqsEventSourceMapping } from '../../../local/event-source-mapping';
import { LOCAL_AWS } from '../../../local/stand-ins';
import { startChangeEventCapture } from '../../support/change-events';

/**
 * The backfill function in a process of its own, so that a test can kill it with SIGKILL half-way
 * through a job, as a crashed or timed-out Lambda would be. Configuration comes as JSON in argv[2].
 */
interface ProcessConfig {
  dynamoEndpoint: string;
  sqsEndpoint: string;
  tables: { summaries: string; timeseries: string; backfills: string; erasures: string };
  bucket: string;
  queueUrl: string;
  queueArn: string;
  apiUrl: string;
  apiKey: string;
  functionTimeoutSeconds: number;
  timeReserveMs: number;
}

const config = JSON.parse(process.argv[2]!) as ProcessConfig;
const documents = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: config.dynamoEndpoint, ...LOCAL_AWS }), {
  marshallOptions: { removeUndefinedValues: true },
});
const sqs = new SQSClient({ endpoint: config.sqsEndpoint, ...LOCAL_AWS });
const s3 = new S3Client({ endpoint: config.sqsEndpoint, forcePathStyle: true, ...LOCAL_AWS });
// This process's own bus: the kill test reads the stores and statuses, not the events.
const changes = await startChangeEventCapture();
const handler = createBackfillHandler({
  statuses: new DynamoDbBackfillStatusStore(documents, config.tables.backfills),
  records: new DynamoDbRecordStore(documents, { summariesTable: config.tables.summaries, timeseriesTable: config.tables.timeseries }),
  streams: new S3WorkoutStreamStore(s3, config.bucket),
  heldBack: new S3HeldBackStore(s3, config.bucket),
  erasures: new DynamoDbErasureRegister(documents, config.tables.erasures),
  queue: new SqsBackfillQueue(sqs, config.queueUrl),
  changes: changes.publisher,
  source: new VitalApiClient({ baseUrl: config.apiUrl, apiKey: async () => config.apiKey, maxRequestsPerSecond: 100 }),
  timeReserveMs: config.timeReserveMs,
});
await new SqsEventSourceMapping({
  sqs,
  queueUrl: config.queueUrl,
  queueArn: config.queueArn,
  settings: { ...QUEUES.backfill, maxConcurrency: 1 },
  function: { name: 'backfill', timeoutSeconds: config.functionTimeoutSeconds, handler },
}).start();
process.send?.('ready');
