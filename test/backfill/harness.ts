import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { createBackfillHandler, type BackfillHandlerDependencies } from '../../functions/backfill';
import { QueuedBackfillRequests, SqsBackfillQueue } from '../../functions/adapters/backfill-requests';
import { DynamoDbBackfillStatusStore } from '../../functions/adapters/backfill-status-store';
import { DynamoDbRecordStore } from '../../functions/adapters/record-store';
import { DynamoDbErasureRegister } from '../../functions/adapters/erasure-register';
import { VitalApiClient } from '../../functions/adapters/vital-api-client';
import { S3WorkoutStreamStore } from '../../functions/adapters/workout-stream-store';
import { S3HeldBackStore } from '../../functions/adapters/held-back-store';
import type { BackfillJobKey, BackfillStatus } from '../../functions/domain/backfill-job';
import { newMessageId, orderKeyOfDelivery } from '../../functions/domain/message-order';
import { backfillTimeReserveMs, QUEUES } from '../../functions/shared/resources';
import { SqsEventSourceMapping } from '../../local/event-source-mapping';
import { startFakeVitalApi, type FakeVitalApi, type FakeVitalApiOptions } from '../../local/fake-vital-api';
import { createLocalQueue, createLocalResources, type LocalQueue, type LocalResources } from '../../local/local-resources';
import { functionCredentials } from '../../local/aws-access';
import { enforceStackAccess } from '../../local/stack-access';
import { standInClients, startSqsAndS3, type RunningStandIn } from '../../local/stand-ins';
import { startChangeEventCapture, type ChangeEventCapture } from '../support/change-events';
import { startTestDynamoDb, uniquePrefix } from '../support/dynamodb-local';

/**
 * The backfill on real stand-ins: DynamoDB Local, fauxqs (SQS and S3), the fake Vital API on
 * loopback, the local SQS event source mapping invoking the real handler with real SDK clients.
 *
 * Cases are kept apart: `beginCase()` gives each case a backfill queue of its own (a job an earlier
 * case left behind cannot reach it) and fresh counters on the fake API, and `endCase()` stops the
 * case's mappings, waiting for their invocations. Timeouts are the stack's, scaled by `timeScale`
 * with the visibility-to-function ratio kept (the mapping refuses anything else).
 */

export const API_KEY = 'backfill-test-key';
/** The backfill's 120 s timeout scaled to 3 s (18 s visibility, 0.75 s time reserve). */
export const DEFAULT_TIME_SCALE = 1 / 40;

export interface Harness {
  readonly fake: FakeVitalApi;
  readonly endpoints: { readonly dynamodb: string; readonly sqsAndS3: string };
  /** Tables and bucket, shared by the cases (each case uses users of its own). */
  readonly resources: LocalResources;
  /** The current case's backfill queue. */
  readonly queue: LocalQueue;
  readonly timeScale: number;
  readonly documents: DynamoDBDocumentClient;
  readonly sqs: SQSClient;
  readonly s3: S3Client;
  readonly records: DynamoDbRecordStore;
  readonly statuses: DynamoDbBackfillStatusStore;
  readonly streams: S3WorkoutStreamStore;
  /** Backfill requests onto the current case's queue. */
  readonly requests: QueuedBackfillRequests;
  readonly dependencies: (overrides?: Partial<BackfillHandlerDependencies>) => BackfillHandlerDependencies;
  /** The change events the backfill published, through the real adapter onto an EventBridge stand-in. */
  readonly changes: ChangeEventCapture;
  /** A fresh backfill queue, the starting faults and fresh fake API counters for the case that starts. */
  beginCase(): Promise<void>;
  /** Stops the mappings the case started, waiting for their invocations. */
  endCase(): Promise<void>;
  /** Starts the event source mapping with the backfill handler on the case's queue; returns its stop function. */
  startBackfill(options?: { concurrency?: number; overrides?: Partial<BackfillHandlerDependencies> }): Promise<() => Promise<void>>;
  /** Sends a historical notice for a fresh run; returns its run id. */
  historical(key: BackfillJobKey, startDate: string, endDate: string): Promise<string>;
  waitForState(key: BackfillJobKey, runId: string, states: readonly BackfillStatus['state'][], timeoutMs?: number): Promise<BackfillStatus>;
  /**
   * Takes the next job message off the case's queue as the event source mapping hands it over,
   * marked as its `receiveCount`th receive; `ack` deletes it (what the mapping does on success), so
   * a case that drives the handler by hand leaves nothing received behind.
   */
  receiveJob(receiveCount?: number): Promise<{ readonly event: SQSEvent; ack(): Promise<void> }>;
  stop(): Promise<void>;
}

export async function startHarness(options: {
  fake?: Omit<FakeVitalApiOptions, 'apiKey'>;
  timeScale?: number;
  maxRequestsPerSecond?: number;
} = {}): Promise<Harness> {
  const timeScale = options.timeScale ?? DEFAULT_TIME_SCALE;
  const [dynamo, sqsAndS3, changes] = await Promise.all([startTestDynamoDb(), startSqsAndS3(), startChangeEventCapture()]);
  const standIns: RunningStandIn[] = [dynamo, sqsAndS3];
  const clients = standInClients({ dynamodb: dynamo.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint });
  const { dynamodb, sqs, s3 } = clients;
  const resources = await createLocalResources({
    dynamodb,
    sqs,
    s3,
    sqsEndpoint: sqsAndS3.endpoint,
    timeScale,
    namePrefix: uniquePrefix('backfill-'),
  });
  const fake = await startFakeVitalApi({ apiKey: API_KEY, ...options.fake });
  const documents = DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  const statuses = new DynamoDbBackfillStatusStore(documents, resources.tables.backfills);
  const records = new DynamoDbRecordStore(documents, { summariesTable: resources.tables.summaries, timeseriesTable: resources.tables.timeseries });
  const streams = new S3WorkoutStreamStore(s3, resources.bucket);

  // The backfill runs as its role, and notices are queued as the worker's role, both held to the
  // stack's IAM policies; the harness's own checks read as the administrator.
  const endpoints = { dynamodb: dynamo.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint };
  const backfillClients = standInClients(endpoints, functionCredentials('backfill'));
  const workerClients = standInClients(endpoints, functionCredentials('worker'));
  const asBackfill = DynamoDBDocumentClient.from(backfillClients.dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  const asWorker = DynamoDBDocumentClient.from(workerClients.dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  const backfillStores = {
    statuses: new DynamoDbBackfillStatusStore(asBackfill, resources.tables.backfills),
    records: new DynamoDbRecordStore(asBackfill, { summariesTable: resources.tables.summaries, timeseriesTable: resources.tables.timeseries }),
    streams: new S3WorkoutStreamStore(backfillClients.s3, resources.bucket),
    heldBack: new S3HeldBackStore(backfillClients.s3, resources.bucket),
    erasures: new DynamoDbErasureRegister(asBackfill, resources.tables.erasures),
  };
  const workerStatuses = new DynamoDbBackfillStatusStore(asWorker, resources.tables.backfills);
  /** The stack's IAM over the stand-ins, with the backfill queue of the case. */
  const enforceIam = (queueUrl: string) => enforceStackAccess(standIns, { ...resources.environment, [QUEUES.backfill.envVar]: queueUrl });

  let caseQueue = resources.queues.backfill;
  let queue = new SqsBackfillQueue(backfillClients.sqs, caseQueue.url);
  let requests = new QueuedBackfillRequests({ statuses: workerStatuses, queue: new SqsBackfillQueue(workerClients.sqs, caseQueue.url) });
  enforceIam(caseQueue.url);
  let cases = 0;

  const dependencies = (overrides: Partial<BackfillHandlerDependencies> = {}): BackfillHandlerDependencies => ({
    ...backfillStores,
    queue,
    changes: changes.publisher,
    source: new VitalApiClient({
      baseUrl: fake.url,
      apiKey: async () => API_KEY,
      maxRequestsPerSecond: options.maxRequestsPerSecond ?? 200,
      retry: { maxAttempts: 6, baseDelayMs: 10, maxDelayMs: 2_000 },
    }),
    timeReserveMs: backfillTimeReserveMs(timeScale),
    ...overrides,
  });

  const mappings: SqsEventSourceMapping[] = [];
  const stopMappings = async () => {
    await Promise.all(mappings.splice(0).map((mapping) => mapping.stop(caseQueue.functionTimeoutSeconds * 1000)));
  };
  let lastNoticeAt = 0;
  return {
    fake,
    endpoints: { dynamodb: dynamo.endpoint, sqsAndS3: sqsAndS3.endpoint },
    resources,
    get queue() {
      return caseQueue;
    },
    timeScale,
    documents,
    sqs,
    s3,
    records,
    statuses,
    streams,
    get requests() {
      return requests;
    },
    dependencies,
    changes,
    beginCase: async () => {
      await stopMappings();
      cases += 1;
      caseQueue = await createLocalQueue({ sqs, sqsEndpoint: sqsAndS3.endpoint, timeScale }, QUEUES.backfill, `case${cases}-`);
      enforceIam(caseQueue.url);
      queue = new SqsBackfillQueue(backfillClients.sqs, caseQueue.url);
      requests = new QueuedBackfillRequests({ statuses: workerStatuses, queue: new SqsBackfillQueue(workerClients.sqs, caseQueue.url) });
      // The faults the harness was started with, not those a previous case set.
      fake.setFaults(options.fake?.faults ?? {});
      fake.setApiKey(API_KEY);
      fake.resetCounters();
    },
    endCase: stopMappings,
    startBackfill: async ({ concurrency, overrides } = {}) => {
      // Lambda polls the queue with the function's role.
      const mapping = await new SqsEventSourceMapping({
        sqs: backfillClients.sqs,
        queueUrl: caseQueue.url,
        queueArn: caseQueue.arn,
        settings: { ...QUEUES.backfill, maxConcurrency: concurrency ?? QUEUES.backfill.maxConcurrency },
        function: { name: 'backfill', timeoutSeconds: caseQueue.functionTimeoutSeconds, handler: createBackfillHandler(dependencies(overrides)) },
      }).start();
      mappings.push(mapping);
      return () => mapping.stop();
    },
    historical: async (key, startDate, endDate) => {
      // Each notice a second after the last: the KSUID orders notices by the second (ties are random).
      lastNoticeAt = Math.max(Date.now(), lastNoticeAt + 1000);
      const svixId = newMessageId(new Date(lastNoticeAt));
      await requests.requestHistorical({ ...key, startDate, endDate, svixId, order: orderKeyOfDelivery(svixId, lastNoticeAt) });
      return svixId;
    },
    waitForState: async (key, runId, states, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const status = await statuses.get(key);
        if (status?.runId === runId && states.includes(status.state)) return status;
        if (Date.now() > deadline) throw new Error(`backfill ${key.resource} not ${states.join('/')} in time: ${JSON.stringify(status)}`);
        await sleep(50);
      }
    },
    receiveJob: async (receiveCount = 1) => {
      const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: caseQueue.url, WaitTimeSeconds: 2 }));
      const message = received.Messages?.[0];
      assert.ok(message, 'a job message is queued');
      const queueUrl = caseQueue.url;
      return {
        event: {
          Records: [{
            messageId: message.MessageId!, receiptHandle: message.ReceiptHandle!, body: message.Body!,
            attributes: { ApproximateReceiveCount: String(receiveCount), SentTimestamp: '0', SenderId: 'test', ApproximateFirstReceiveTimestamp: '0' },
            messageAttributes: {}, md5OfBody: '', eventSource: 'aws:sqs', eventSourceARN: caseQueue.arn, awsRegion: 'us-east-1',
          }],
        },
        ack: async () => {
          await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle! }));
        },
      };
    },
    stop: async () => {
      await stopMappings();
      await fake.stop();
      [clients, backfillClients, workerClients].forEach((each) => each.destroy());
      await Promise.all([...standIns.map((standIn) => standIn.stop()), changes.close()]);
    },
  };
}
