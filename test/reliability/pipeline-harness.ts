import { ProvisionedThroughputExceededException, ThrottlingException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import type { SQSEvent, Context } from 'aws-lambda';
import { createServer, request as httpRequest, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDbBackfillStatusStore } from '../../functions/adapters/backfill-status-store';
import { DynamoDbConnectionStore } from '../../functions/adapters/connection-store';
import { DynamoDbRecordStore } from '../../functions/adapters/record-store';
import { CachedSigningSecrets } from '../../functions/adapters/signing-secret-source';
import { S3WorkoutStreamStore } from '../../functions/adapters/workout-stream-store';
import { VitalApiClient } from '../../functions/adapters/vital-api-client';
import { ATTRIBUTE } from '../../functions/domain/queued-event';
import { backfillTimeReserveMs, QUEUES, VERIFIER_TIMEOUT_SECONDS, WEBHOOK_ROUTE } from '../../functions/shared/resources';
import { SqsEventSourceMapping, type SqsFunction } from '../../local/event-source-mapping';
import { startHttpApi, type RunningHttpApi } from '../../local/http-api';
import { createLocalResources, type LocalResources } from '../../local/local-resources';
import { startFakeVitalApi, type FakeVitalApi } from '../../local/fake-vital-api';
import { standInClients, standInEnvironment, startDynamoDbLocal, startSqsAndS3, type RunningStandIn } from '../../local/stand-ins';
import type { Random } from './storm';

/**
 * The whole pipeline on the local stand-ins, composed from the same pieces as `npm start`
 * (`createLocalResources`, `startHttpApi`, `SqsEventSourceMapping`, the handlers wired by their own
 * `*FromEnvironment()` functions), with faults injected at every boundary through real seams:
 *
 * - SQS: a middleware on the handlers' SQS client fails a fraction of SendMessage calls before they
 *   are sent, and loses the answer of a few after they were sent (the sender then retries a message
 *   that is already queued);
 * - DynamoDB: a middleware on the handlers' DynamoDB client throttles a fraction of writes, some
 *   inside the SDK's retry loop (retried with backoff by the SDK) and some outside it (surfacing to
 *   the worker or backfill, so SQS redelivers);
 * - the worker crashes mid-batch: it processes a prefix of its batch, then throws, so the poller
 *   redelivers the whole batch after the visibility timeout;
 * - the Vital API answers 429/503 (the fake's own faults), and a proxy in front of it stalls a
 *   fraction of requests past the client's timeout.
 *
 * The verifier reads its signing secrets through `CachedSigningSecrets`, as deployed, from a store
 * value the test can change (`setSigningSecretValue`), so a rotation happens under load; the worker
 * quarantines events of any team but `expectedTeamId`.
 */

export interface FaultRates {
  /** SendMessage calls to the events queue refused before sending (the verifier answers 503). */
  readonly eventsSendFailure: number;
  /** SendMessage calls to the events queue whose answer is lost after the message was queued. */
  readonly eventsSendLostAnswer: number;
  /** SendMessage calls to the backfill queue refused (the worker's or backfill's record fails). */
  readonly backfillSendFailure: number;
  /** DynamoDB writes throttled inside the SDK retry loop (retried by the SDK). */
  readonly dynamoThrottleRetried: number;
  /** DynamoDB writes throttled outside the SDK retry loop (the handler sees the error). */
  readonly dynamoThrottleSurfaced: number;
  /** Worker invocations that crash after a prefix of their batch. */
  readonly workerCrash: number;
  /** Vital API requests answered 429 or 503. */
  readonly vitalTransient: number;
  /** Vital API requests that hang past the client's timeout. */
  readonly vitalTimeout: number;
}

export const DEFAULT_FAULTS: FaultRates = {
  eventsSendFailure: 0.1,
  eventsSendLostAnswer: 0.03,
  backfillSendFailure: 0.2,
  dynamoThrottleRetried: 0.08,
  dynamoThrottleSurfaced: 0.01,
  workerCrash: 0.05,
  vitalTransient: 0.25,
  vitalTimeout: 0.08,
};

export interface FaultCounters {
  eventsSendFailures: number;
  eventsSendLostAnswers: number;
  backfillSendFailures: number;
  dynamoThrottlesRetried: number;
  dynamoThrottlesSurfaced: number;
  workerCrashes: number;
  vitalTimeouts: number;
}

export interface StormPipeline {
  readonly webhookUrl: string;
  readonly secret: string;
  readonly resources: LocalResources;
  readonly records: DynamoDbRecordStore;
  readonly connections: DynamoDbConnectionStore;
  readonly statuses: DynamoDbBackfillStatusStore;
  /** Workout streams, read through the project's own store (its keys, its order metadata). */
  readonly streams: S3WorkoutStreamStore;
  readonly fake: FakeVitalApi;
  /** The fake Vital API's key, to read what it holds at `fake.url` directly (past the stalling proxy). */
  readonly apiKey: string;
  readonly faults: FaultCounters;
  /** svix-ids of every message the verifier's SendMessage actually put on the events queue, with counts. */
  readonly enqueued: Map<string, number>;
  /** What the worker's event source mapping did with each svix-id: invocations that processed or failed it. */
  readonly outcomes: Map<string, { processed: number; failed: number }>;
  /** SendMessage calls to the backfill queue (job messages from the worker and the backfill itself). */
  backfillSends(): number;
  /** workout_stream job messages put on the backfill queue, by workout id. */
  readonly streamJobs: Map<string, number>;
  /** Workout streams the backfill fetched and read whole, by workout id. */
  readonly streamFetches: Map<string, number>;
  /** Replaces the signing secret's stored value (what Secrets Manager would hold). */
  setSigningSecretValue(value: string): void;
  /** Every read of the stored secret value by the verifier: when, and what it got. */
  readonly signingSecretReads: { readonly atMs: number; readonly value: string }[];
  /** Keys and bodies of the bucket's objects under `prefix`. */
  listObjects(prefix: string): Promise<string[]>;
  getObject(key: string): Promise<{ body: string; metadata: Record<string, string> } | undefined>;
  /** Vital API 429/503 answers injected by the fake. */
  vitalTransientFaults(): number;
  /** Visible plus in-flight messages of a queue. */
  queueDepth(url: string): Promise<number>;
  /** Reads every message of a dead-letter queue (hiding each for a minute, so none is read twice). */
  drain(url: string): Promise<Message[]>;
  stop(): Promise<void>;
}

const WRITE_COMMANDS = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand', 'TransactWriteItemsCommand']);

const API_KEY = 'storm-api-key';
/** The Vital API client's per-request timeout in the storm (the default is 30 s). */
const VITAL_TIMEOUT_MS = 800;

/** A proxy to the fake Vital API that stalls a fraction of requests until the client gives up. */
async function startStallingProxy(target: string, shouldStall: () => boolean, onStall: () => void) {
  const stalled = new Set<ServerResponse>();
  const server = createServer((request, response) => {
    if (shouldStall()) {
      onStall();
      stalled.add(response);
      response.once('close', () => stalled.delete(response));
      return;
    }
    const upstream = httpRequest(new URL(request.url ?? '/', target), { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const response of stalled) response.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const injected = <T extends Error>(error: T): T => Object.assign(error, { $fault: 'client', $metadata: { httpStatusCode: 400 } });

export async function startStormPipeline(options: {
  readonly secret: string;
  readonly seed: number;
  readonly random: Random;
  readonly rates: FaultRates;
  /** Scales the stack's consumer and visibility timeouts together (the ratio kept). */
  readonly timeScale: number;
  /** When set, the worker quarantines events of any other team (EXPECTED_TEAM_ID). */
  readonly expectedTeamId?: string;
  /** The verifier's secret cache: trusted this long, refetched after a signature failure at most this often. */
  readonly signingSecretCache?: { readonly maxAgeMs: number; readonly minRefreshIntervalMs: number };
}): Promise<StormPipeline> {
  const { random } = options;
  // Each kind of fault hits its first chance for sure, then a random fraction: every boundary is
  // exercised in every run, however small the storm.
  const hitOnce = new Set<string>();
  const chance = (kind: string, rate: number): boolean => {
    if (rate > 0 && !hitOnce.has(kind)) {
      hitOnce.add(kind);
      return true;
    }
    return random() < rate;
  };
  const faults: FaultCounters = {
    eventsSendFailures: 0,
    eventsSendLostAnswers: 0,
    backfillSendFailures: 0,
    dynamoThrottlesRetried: 0,
    dynamoThrottlesSurfaced: 0,
    workerCrashes: 0,
    vitalTimeouts: 0,
  };
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const step of stops.splice(0).reverse()) await step().catch(() => undefined);
  };

  try {
    const [dynamo, sqsAndS3] = await Promise.all([startDynamoDbLocal(), startSqsAndS3()]);
    for (const standIn of [dynamo, sqsAndS3] as RunningStandIn[]) stops.push(() => standIn.stop());
    // The harness's own clients (provisioning, reading, polling) carry no faults.
    const harnessClients = standInClients({ dynamodb: dynamo.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint });
    const { dynamodb, sqs, s3 } = harnessClients;
    stops.push(async () => harnessClients.destroy());
    const resources = await createLocalResources({
      dynamodb,
      sqs,
      s3,
      sqsEndpoint: sqsAndS3.endpoint,
      timeScale: options.timeScale,
      namePrefix: 'storm-',
    });

    const fake = await startFakeVitalApi({
      apiKey: API_KEY,
      seed: options.seed,
      pageSize: 10,
      samplesPerDay: 24,
      faults: { transientFraction: options.rates.vitalTransient, retryAfter: '0' },
    });
    stops.push(() => fake.stop());
    const proxy = await startStallingProxy(fake.url, () => chance('vitalTimeout', options.rates.vitalTimeout), () => (faults.vitalTimeouts += 1));
    stops.push(() => proxy.stop());

    // The handlers read their settings from the environment, as in Lambda and in `npm start`.
    Object.assign(process.env, {
      ...standInEnvironment({ dynamodb: dynamo.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint }),
      ...resources.environment,
      VITAL_WEBHOOK_SECRET: options.secret,
      EXPECTED_TEAM_ID: options.expectedTeamId ?? '',
      VITAL_API_KEY: API_KEY,
      VITAL_API_BASE_URL: proxy.url,
      POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'SILENT',
      POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
      POWERTOOLS_TRACE_ENABLED: 'false',
    });
    // Imported only now, with the environment set, as a Lambda cold start would.
    const [clients, verifierModule, workerModule, backfillModule] = await Promise.all([
      import('../../functions/adapters/aws-clients'),
      import('../../functions/verifier'),
      import('../../functions/worker'),
      import('../../functions/backfill'),
    ]);

    // Fault seams on the clients the handlers use.
    const enqueued = new Map<string, number>();
    let backfillSends = 0;
    const streamJobs = new Map<string, number>();
    const handlerSqs = clients.sqsClient();
    handlerSqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'SendMessageCommand') return next(args);
        const input = args.input as { QueueUrl?: string; MessageAttributes?: Record<string, { StringValue?: string }> };
        const toEvents = input.QueueUrl === resources.queues.events.url;
        if (toEvents && chance('eventsSendFailure', options.rates.eventsSendFailure)) {
          faults.eventsSendFailures += 1;
          throw Object.assign(new Error('injected: SQS unavailable'), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } });
        }
        if (!toEvents) backfillSends += 1;
        if (!toEvents && chance('backfillSendFailure', options.rates.backfillSendFailure)) {
          faults.backfillSendFailures += 1;
          throw Object.assign(new Error('injected: SQS unavailable'), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } });
        }
        const result = await next(args);
        if (!toEvents) {
          const job = JSON.parse((args.input as { MessageBody?: string }).MessageBody ?? '{}') as { type?: string; workoutId?: string };
          if (job.type === 'workout_stream' && job.workoutId) streamJobs.set(job.workoutId, (streamJobs.get(job.workoutId) ?? 0) + 1);
        }
        if (toEvents) {
          const svixId = input.MessageAttributes?.[ATTRIBUTE.svixId]?.StringValue ?? '';
          enqueued.set(svixId, (enqueued.get(svixId) ?? 0) + 1);
          if (chance('eventsSendLostAnswer', options.rates.eventsSendLostAnswer)) {
            faults.eventsSendLostAnswers += 1;
            throw Object.assign(new Error('injected: connection reset after send'), { name: 'TimeoutError', $metadata: {} });
          }
        }
        return result;
      },
      { step: 'initialize', name: 'stormSqsFaults' },
    );
    const handlerDynamo = clients.dynamoDbClient();
    // Outside the SDK's retries: the handler sees the throttle.
    handlerDynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (WRITE_COMMANDS.has(context.commandName ?? '') && chance('dynamoThrottleSurfaced', options.rates.dynamoThrottleSurfaced)) {
          faults.dynamoThrottlesSurfaced += 1;
          throw injected(new ProvisionedThroughputExceededException({ message: 'injected: throughput exceeded', $metadata: {} }));
        }
        return next(args);
      },
      { step: 'initialize', name: 'stormDynamoSurfacedThrottles' },
    );
    // Inside the SDK's retry loop: retried with backoff by the SDK itself.
    handlerDynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (WRITE_COMMANDS.has(context.commandName ?? '') && chance('dynamoThrottleRetried', options.rates.dynamoThrottleRetried)) {
          faults.dynamoThrottlesRetried += 1;
          throw injected(new ThrottlingException({ message: 'injected: rate exceeded', $metadata: {} }));
        }
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low', name: 'stormDynamoRetriedThrottles' },
    );

    // The verifier as wired from its environment, but reading its secrets as deployed (through the
    // cache in front of Secrets Manager), from a value the test controls.
    let signingSecretValue = options.secret;
    const signingSecretReads: { atMs: number; value: string }[] = [];
    const cache = options.signingSecretCache ?? { maxAgeMs: 300_000, minRefreshIntervalMs: 30_000 };
    const verifier = verifierModule.createVerifierHandler({
      ...verifierModule.verifierFromEnvironment(),
      secrets: new CachedSigningSecrets({
        fetch: async () => {
          signingSecretReads.push({ atMs: Date.now(), value: signingSecretValue });
          return signingSecretValue;
        },
        ...cache,
      }),
    });
    // One handler invoked concurrently by the pollers, as `npm start` runs it (worker-concurrency.test.ts
    // shows what this once broke).
    const worker = workerModule.createWorkerHandler(workerModule.workerFromEnvironment());
    // The storm's client gives up on a stalled request after VITAL_TIMEOUT_MS instead of 30 s. Its
    // retries of one request (at worst 4 × 800 ms stalls and 3 × 300 ms waits, 4.1 s) fit the
    // backfill's timeout at the storm's scale (6 s) with room to store the page: with 5 attempts and
    // 500 ms waits (6 s) a loaded machine timed invocations out until the job's deliveries ran out.
    const source = new VitalApiClient({
      baseUrl: proxy.url,
      apiKey: async () => API_KEY,
      maxRequestsPerSecond: 200,
      requestTimeoutMs: VITAL_TIMEOUT_MS,
      retry: { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 300 },
    });
    // Stream fetches the backfill received whole, by workout (the fake also counts answers the
    // client gave up on before reading them).
    const streamFetches = new Map<string, number>();
    const fetchWorkoutStream = source.fetchWorkoutStream.bind(source);
    source.fetchWorkoutStream = async (workoutId) => {
      const stream = await fetchWorkoutStream(workoutId);
      streamFetches.set(workoutId, (streamFetches.get(workoutId) ?? 0) + 1);
      return stream;
    };
    const backfill = backfillModule.createBackfillHandler({
      ...backfillModule.backfillFromEnvironment(),
      source,
      timeReserveMs: backfillTimeReserveMs(options.timeScale),
    });

    const crashingWorker: SqsFunction['handler'] = async (event: SQSEvent, context: Context) => {
      if (event.Records.length > 1 && chance('workerCrash', options.rates.workerCrash)) {
        const processed = Math.floor(random() * event.Records.length);
        if (processed > 0) await worker({ Records: event.Records.slice(0, processed) }, context);
        faults.workerCrashes += 1;
        throw new Error(`injected: worker crashed after ${processed} of ${event.Records.length} records`);
      }
      return worker(event, context);
    };

    const outcomes = new Map<string, { processed: number; failed: number }>();
    const mappings = await Promise.all([
      new SqsEventSourceMapping({
        sqs,
        queueUrl: resources.queues.events.url,
        queueArn: resources.queues.events.arn,
        settings: { ...QUEUES.events, maxConcurrency: 4 },
        function: { name: 'worker', timeoutSeconds: resources.queues.events.functionTimeoutSeconds, handler: crashingWorker },
        onOutcome: (outcome) => {
          const svixId = outcome.record.messageAttributes[ATTRIBUTE.svixId]?.stringValue ?? '';
          const counts = outcomes.get(svixId) ?? { processed: 0, failed: 0 };
          counts[outcome.result] += 1;
          outcomes.set(svixId, counts);
        },
      }).start(),
      new SqsEventSourceMapping({
        sqs,
        queueUrl: resources.queues.backfill.url,
        queueArn: resources.queues.backfill.arn,
        settings: QUEUES.backfill,
        function: { name: 'backfill', timeoutSeconds: resources.queues.backfill.functionTimeoutSeconds, handler: backfill },
      }).start(),
    ]);
    stops.push(async () => {
      await Promise.all(mappings.map((mapping) => mapping.stop()));
    });

    const api: RunningHttpApi = await startHttpApi({
      port: 0,
      routes: [{ ...WEBHOOK_ROUTE, function: { name: 'verifier', timeoutSeconds: VERIFIER_TIMEOUT_SECONDS, handler: verifier } }],
    });
    stops.push(() => api.close());
    stops.push(async () => [handlerSqs, handlerDynamo].forEach((client) => client.destroy()));

    const documents = DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } });
    return {
      webhookUrl: `${api.url}${WEBHOOK_ROUTE.path}`,
      secret: options.secret,
      resources,
      records: new DynamoDbRecordStore(documents, { summariesTable: resources.tables.summaries, timeseriesTable: resources.tables.timeseries }),
      connections: new DynamoDbConnectionStore(documents, resources.tables.connections),
      statuses: new DynamoDbBackfillStatusStore(documents, resources.tables.backfills),
      streams: new S3WorkoutStreamStore(s3, resources.bucket),
      fake,
      apiKey: API_KEY,
      streamJobs,
      streamFetches,
      setSigningSecretValue: (value) => {
        signingSecretValue = value;
      },
      signingSecretReads,
      listObjects: async (prefix) => {
        const keys: string[] = [];
        let token: string | undefined;
        do {
          const page = await s3.send(new ListObjectsV2Command({ Bucket: resources.bucket, Prefix: prefix, ContinuationToken: token }));
          keys.push(...(page.Contents ?? []).map((object) => object.Key!));
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        return keys;
      },
      getObject: async (key) => {
        try {
          const object = await s3.send(new GetObjectCommand({ Bucket: resources.bucket, Key: key }));
          return { body: await object.Body!.transformToString('utf8'), metadata: object.Metadata ?? {} };
        } catch (error) {
          // A missing key answers 403 on the stand-in, as in S3 for a caller without s3:ListBucket.
          if ([403, 404].includes((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0)) return undefined;
          throw error;
        }
      },
      faults,
      enqueued,
      outcomes,
      backfillSends: () => backfillSends,
      vitalTransientFaults: () => (fake.counters.byStatus.get(429) ?? 0) + (fake.counters.byStatus.get(503) ?? 0),
      queueDepth: async (url) => {
        const { Attributes } = await sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: url,
            AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
          }),
        );
        return (
          Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
          Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) +
          Number(Attributes?.ApproximateNumberOfMessagesDelayed ?? 0)
        );
      },
      drain: async (url) => {
        const messages: Message[] = [];
        for (let empty = 0; empty < 2; ) {
          const { Messages = [] } = await sqs.send(
            new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 60, MessageAttributeNames: ['All'], WaitTimeSeconds: 0 }),
          );
          if (Messages.length === 0) {
            empty += 1;
            await sleep(50);
          }
          messages.push(...Messages);
        }
        return messages;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
