import { ProvisionedThroughputExceededException, ThrottlingException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import type { SQSEvent, Context } from 'aws-lambda';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDbBackfillStatusStore } from '../../functions/adapters/backfill-status-store';
import { DynamoDbConnectionStore } from '../../functions/adapters/connection-store';
import { DynamoDbRecordStore } from '../../functions/adapters/record-store';
import { CachedSigningSecrets } from '../../functions/adapters/signing-secret-source';
import { S3WorkoutStreamStore } from '../../functions/adapters/workout-stream-store';
import { VitalApiClient } from '../../functions/adapters/vital-api-client';
import { ATTRIBUTE } from '../../functions/domain/queued-event';
import type { SqsFunction } from '../../local/event-source-mapping';
import { startFakeVitalApi, type FakeVitalApi } from '../../local/fake-vital-api';
import { startLocalPipeline, type LocalPipelineHooks } from '../../local/pipeline';
import type { PipelineState } from '../../local/pipeline-state';
import { standInClients } from '../../local/stand-ins';
import type { Random } from './storm';

/**
 * The whole pipeline as `npm start` runs it (`startLocalPipeline`, on a data folder of its own, the
 * stand-ins in memory), with faults injected at every boundary through the runner's hooks
 * (`LocalPipelineHooks`), real seams all:
 *
 * - SQS: a middleware on the handlers' SQS client fails a fraction of SendMessage calls before they
 *   are sent, and loses the answer of a few after they were sent (the sender then retries a message
 *   that is already queued);
 * - DynamoDB: a middleware on the handlers' DynamoDB client throttles a fraction of writes, some
 *   inside the SDK's retry loop (retried with backoff by the SDK) and some outside it (surfacing to
 *   the worker or backfill, so SQS redelivers);
 * - the worker crashes mid-batch: it processes a prefix of its batch, then throws, so the poller
 *   redelivers the whole batch after the visibility timeout;
 * - the Vital API answers 429/503 with `Retry-After` and sends some records that break the schema
 *   (the fake's own faults), and a proxy in front of it stalls a fraction of requests past the
 *   client's timeout.
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
  /** Vital API requests answered 429 or 503, with `Retry-After: 1`. */
  readonly vitalTransient: number;
  /** Vital API requests that hang past the client's timeout. */
  readonly vitalTimeout: number;
  /** Records the Vital API sends breaking the schema, the same ones on every request (held back by the backfill). */
  readonly vitalBrokenRecords: number;
}

export const DEFAULT_FAULTS: FaultRates = {
  eventsSendFailure: 0.1,
  eventsSendLostAnswer: 0.03,
  backfillSendFailure: 0.2,
  dynamoThrottleRetried: 0.08,
  dynamoThrottleSurfaced: 0.01,
  workerCrash: 0.05,
  vitalTransient: 0.15,
  vitalTimeout: 0.08,
  vitalBrokenRecords: 0.1,
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
  /** The pipeline's data folder: the CLI finds the pipeline through it (`localTarget`), as a user's would. */
  readonly dataDir: string;
  /** What the running pipeline names: stand-in endpoints, tables, queues, bucket. */
  readonly state: PipelineState;
  readonly records: DynamoDbRecordStore;
  readonly connections: DynamoDbConnectionStore;
  readonly statuses: DynamoDbBackfillStatusStore;
  /** Workout streams, read through the project's own store (its keys, its order metadata). */
  readonly streams: S3WorkoutStreamStore;
  readonly fake: FakeVitalApi;
  /** The pipeline's Vital API key: the one key the fake accepts unless told otherwise (`fake.setApiKey`). */
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
  /** 429/503 answers the Vital client waited out as their `Retry-After` asked, in all and on workout streams. */
  readonly retryAfterWaits: { all: number; workoutStreams: number };
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
/**
 * The `Retry-After` of the fake's 429/503 answers, seconds: the shortest the header can ask for
 * that is not "now". The storm's client waits it out in the invocation (its longest wait is above it).
 */
const VITAL_RETRY_AFTER_SECONDS = 1;
/**
 * How soon a backfill waiting for the API key tries again: the runner's scaled delay (45 s at the
 * storm's scale) would outlast the storm, and what is tested is that the wait ends, not its length.
 */
const API_KEY_RETRY_SECONDS = 1;
/** The local pipeline's console output: the storm reads what it checks from the stores instead. */
const SILENT_OUTPUT = { line: () => undefined, plain: () => undefined };

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
    const fake = await startFakeVitalApi({
      apiKey: API_KEY,
      seed: options.seed,
      pageSize: 10,
      samplesPerDay: 24,
      faults: {
        transientFraction: options.rates.vitalTransient,
        retryAfter: String(VITAL_RETRY_AFTER_SECONDS),
        brokenRecords: options.rates.vitalBrokenRecords,
      },
    });
    stops.push(() => fake.stop());
    const proxy = await startStallingProxy(fake.url, () => chance('vitalTimeout', options.rates.vitalTimeout), () => (faults.vitalTimeouts += 1));
    stops.push(() => proxy.stop());
    const dataDir = await mkdtemp(path.join(tmpdir(), 'storm-'));
    stops.push(() => rm(dataDir, { recursive: true, force: true }));

    // Fault seams on the clients the handlers send with.
    const enqueued = new Map<string, number>();
    let backfillSends = 0;
    const streamJobs = new Map<string, number>();
    const injectFaults: LocalPipelineHooks['handlerClients'] = ({ sqs, dynamodb }, queues) => {
      sqs.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName !== 'SendMessageCommand') return next(args);
          const input = args.input as { QueueUrl?: string; MessageAttributes?: Record<string, { StringValue?: string }> };
          const toEvents = input.QueueUrl === queues.events.url;
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
      // Outside the SDK's retries: the handler sees the throttle.
      dynamodb.middlewareStack.add(
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
      dynamodb.middlewareStack.add(
        (next, context) => async (args) => {
          if (WRITE_COMMANDS.has(context.commandName ?? '') && chance('dynamoThrottleRetried', options.rates.dynamoThrottleRetried)) {
            faults.dynamoThrottlesRetried += 1;
            throw injected(new ThrottlingException({ message: 'injected: rate exceeded', $metadata: {} }));
          }
          return next(args);
        },
        { step: 'finalizeRequest', priority: 'low', name: 'stormDynamoRetriedThrottles' },
      );
    };

    // The verifier reads its secrets as deployed (through the cache in front of Secrets Manager),
    // from a value the test controls.
    let signingSecretValue = options.secret;
    const signingSecretReads: { atMs: number; value: string }[] = [];
    const cache = options.signingSecretCache ?? { maxAgeMs: 300_000, minRefreshIntervalMs: 30_000 };
    const secrets = new CachedSigningSecrets({
      fetch: async () => {
        signingSecretReads.push({ atMs: Date.now(), value: signingSecretValue });
        return signingSecretValue;
      },
      ...cache,
    });
    // The storm's client gives up on a stalled request after VITAL_TIMEOUT_MS instead of 30 s, and
    // waits out a `Retry-After` of VITAL_RETRY_AFTER_SECONDS. Its retries of one request (at worst
    // three 1 s waits after 429s and a last 800 ms stall, 3.8 s) fit the backfill's timeout at the
    // storm's scale (6 s) with room to store the page: with 5 attempts and 500 ms waits a loaded
    // machine timed invocations out until the job's deliveries ran out.
    const retryAfterWaits = { all: 0, workoutStreams: 0 };
    const source = new VitalApiClient({
      baseUrl: proxy.url,
      apiKey: async () => API_KEY,
      maxRequestsPerSecond: 200,
      requestTimeoutMs: VITAL_TIMEOUT_MS,
      retry: { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: VITAL_RETRY_AFTER_SECONDS * 1000 + 100 },
      // The reason is `GET <path>: HTTP <status>`; other waits (after a stall) are shorter.
      onRetry: (reason, delayMs) => {
        if (delayMs < VITAL_RETRY_AFTER_SECONDS * 1000) return;
        retryAfterWaits.all += 1;
        if (reason.includes('/stream:')) retryAfterWaits.workoutStreams += 1;
      },
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

    const crashing = (worker: SqsFunction['handler']): SqsFunction['handler'] => async (event: SQSEvent, context: Context) => {
      if (event.Records.length > 1 && chance('workerCrash', options.rates.workerCrash)) {
        const processed = Math.floor(random() * event.Records.length);
        if (processed > 0) await worker({ Records: event.Records.slice(0, processed) }, context);
        faults.workerCrashes += 1;
        throw new Error(`injected: worker crashed after ${processed} of ${event.Records.length} records`);
      }
      return worker(event, context);
    };

    const outcomes = new Map<string, { processed: number; failed: number }>();
    const pipeline = await startLocalPipeline(
      { port: 0, dataDir, webhookSecret: options.secret, timeScale: options.timeScale },
      SILENT_OUTPUT,
      {
        standInsInMemory: true,
        vitalApi: { url: proxy.url, apiKey: API_KEY },
        ...(options.expectedTeamId ? { expectedTeamId: options.expectedTeamId } : {}),
        handlerClients: injectFaults,
        verifierDependencies: { secrets },
        backfillDependencies: { source, apiKeyRetryDelaySeconds: API_KEY_RETRY_SECONDS },
        wrapWorker: crashing,
        onMessageOutcome: (queue, outcome) => {
          if (queue !== 'events') return;
          const svixId = outcome.record.messageAttributes[ATTRIBUTE.svixId]?.stringValue ?? '';
          const counts = outcomes.get(svixId) ?? { processed: 0, failed: 0 };
          counts[outcome.result] += 1;
          outcomes.set(svixId, counts);
        },
      },
    );
    stops.push(() => pipeline.stop());
    const { state } = pipeline;

    // The harness's own clients (reading, polling) carry no faults.
    const { dynamodb, sqs, s3, destroy } = standInClients(state.endpoints);
    stops.push(async () => destroy());
    const documents = DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } });
    return {
      webhookUrl: pipeline.webhookUrl,
      dataDir,
      state,
      records: new DynamoDbRecordStore(documents, { summariesTable: state.tables.summaries, timeseriesTable: state.tables.timeseries }),
      connections: new DynamoDbConnectionStore(documents, state.tables.connections),
      statuses: new DynamoDbBackfillStatusStore(documents, state.tables.backfills),
      streams: new S3WorkoutStreamStore(s3, state.bucket),
      fake,
      apiKey: API_KEY,
      streamJobs,
      streamFetches,
      retryAfterWaits,
      setSigningSecretValue: (value) => {
        signingSecretValue = value;
      },
      signingSecretReads,
      listObjects: async (prefix) => {
        const keys: string[] = [];
        let token: string | undefined;
        do {
          const page = await s3.send(new ListObjectsV2Command({ Bucket: state.bucket, Prefix: prefix, ContinuationToken: token }));
          keys.push(...(page.Contents ?? []).map((object) => object.Key!));
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        return keys;
      },
      getObject: async (key) => {
        try {
          const object = await s3.send(new GetObjectCommand({ Bucket: state.bucket, Key: key }));
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
