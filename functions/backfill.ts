import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dynamoDbClient } from './adapters/dynamodb-client';
import { s3Client } from './adapters/s3-client';
import { sqsClient } from './adapters/sqs-client';
import { DynamoDbBackfillStatusStore } from './adapters/backfill-status-store';
import { DynamoDbRecordStore } from './adapters/record-store';
import {
  CachedApiKey,
  VitalApiClient,
  vitalApiBaseUrlFromEnvironment,
  type ApiKeySource,
} from './adapters/vital-api-client';
import { S3WorkoutStreamStore } from './adapters/workout-stream-store';
import { S3HeldBackStore } from './adapters/held-back-store';
import { DynamoDbErasureRegister } from './adapters/erasure-register';
import { changeEventPublisherFromEnvironment } from './adapters/change-event-publisher';
import { parseJobMessage } from './domain/backfill-job';
import { SqsBackfillQueue } from './adapters/backfill-requests';
import { BackfillRunner, type BackfillRunnerDependencies } from './domain/backfill-run';
import { requiredEnv } from './shared/environment';
import { backfillTimeReserveMs, BUCKET, QUEUES, TABLES } from './shared/resources';
import { logger, metrics, publishMetrics } from './shared/observability';
import { traced, tracedClient } from './shared/tracing';
import { NamedError } from './domain/named-error';

/** What the backfill function needs from the outside world. */
export interface BackfillHandlerDependencies extends BackfillRunnerDependencies {
  /**
   * Time kept in hand when deciding whether to start another page: a page of workouts fetches one
   * stream per workout, so this must cover the slowest page with its retries.
   * @default backfillTimeReserveMs() (a quarter of the function's timeout)
   */
  readonly timeReserveMs?: number;
  /** Pages one invocation works on before handing the job back to the queue. @default unlimited */
  readonly maxPagesPerInvocation?: number;
}

/**
 * A job gave up waiting for the API key: it is reported as a batch item failure, so SQS keeps the
 * message and, after its receives, the backfill DLQ holds it for a replay once the key is stored.
 */
class ApiKeyNeverSetError extends NamedError {}

/** The last delivery of a historical job: the run was marked failed and the message is left for the DLQ. */
class LastDeliveryError extends NamedError {}

/**
 * Builds the backfill function: one job message per record (the queue's batch size is 1), partial
 * batch responses so that a failing record is redelivered alone with its checkpoint intact.
 */
export function createBackfillHandler(deps: BackfillHandlerDependencies) {
  const runner = new BackfillRunner({
    ...deps,
    listener: {
      page: (resource, records) => {
        metrics.addMetric('BackfillPages', MetricUnit.Count, 1);
        metrics.addMetric('BackfillRecords', MetricUnit.Count, records);
        logger.debug('Backfill page stored', { resource, records });
      },
      streams: (count) => metrics.addMetric('BackfillWorkoutStreams', MetricUnit.Count, count),
      streamMissing: (workoutId, reason) => {
        metrics.addMetric('BackfillWorkoutStreamsMissing', MetricUnit.Count, 1);
        logger.info('Workout has no stream (404): skipped', { workoutId, reason });
      },
      // Where the record sat and which rule it breaks; never the record's values.
      heldBack: (location, reason) => {
        metrics.addMetric('BackfillRecordsHeldBack', MetricUnit.Count, 1);
        logger.warn('Backfill record held back: it breaks the schema; kept under held-back/, the rest of the page stored', {
          resource: location.resource,
          runId: location.runId,
          windowIndex: location.windowIndex,
          page: location.page,
          index: location.index,
          reason,
        });
      },
      failed: (resource, reason) => {
        metrics.addMetric('BackfillFailures', MetricUnit.Count, 1);
        logger.error('Backfill failed', { resource, reason });
      },
      // Alarmed on (lib/constructs/pipeline-alarms.ts): the statuses are written, their events are not.
      changeEventsNotPublished: (reason) => {
        metrics.addMetric('ChangeEventsNotPublished', MetricUnit.Count, 1);
        logger.error('Backfill progress or finish not published as a change event; the status in the table is current', { reason });
      },
      erased: (resource) => {
        metrics.addMetric('ErasedUserJobs', MetricUnit.Count, 1);
        logger.info('Backfill job of an erased user, queued before the erasure: stopped, nothing more stored', { resource });
      },
      // The reason names the status and the path, never the key.
      waitingForApiKey: (resource, reason, waitedMs, retryInSeconds) => {
        metrics.addMetric('BackfillWaitingForApiKey', MetricUnit.Count, 1);
        logger.warn('Backfill waits for the Vital API key: store it in the key secret and the job goes on by itself', {
          resource,
          reason,
          waitedMinutes: Math.floor(waitedMs / 60_000),
          retryInSeconds,
        });
      },
    },
  });
  const timeReserveMs = deps.timeReserveMs ?? backfillTimeReserveMs();
  const maxPages = deps.maxPagesPerInvocation ?? Number.POSITIVE_INFINITY;

  const processRecord = async (record: SQSRecord, context: Context): Promise<void> => {
    const message = parseJobMessage(record.body);
    logger.appendKeys({ userId: message.userId, provider: message.provider, job: message.type });
    try {
      if (message.type === 'workout_stream') {
        const outcome = await runner.runWorkoutStream(message);
        if (outcome === 'api_key_never_set') throw new ApiKeyNeverSetError('workout stream job: no working Vital API key for the whole wait');
        return;
      }
      logger.appendKeys({ resource: message.resource, runId: message.runId });
      const receives = Number(record.attributes.ApproximateReceiveCount);
      if (receives >= QUEUES.backfill.maxReceiveCount) {
        // The last delivery before the DLQ: say so in the status first, since a delivery that runs out of time reports nothing.
        await runner.giveUp(message, receives);
        throw new LastDeliveryError(`historical job: delivery ${receives} of ${QUEUES.backfill.maxReceiveCount}, status failed, message left for the backfill DLQ`);
      }
      let pages = 0;
      const hasTime = () => context.getRemainingTimeInMillis() > timeReserveMs;
      const outcome = await runner.runHistorical(message, { anotherPage: () => pages++ < maxPages && hasTime(), hasTime });
      if (outcome === 'continued') metrics.addMetric('BackfillContinuations', MetricUnit.Count, 1);
      logger.info('Backfill invocation done', { outcome });
      if (outcome === 'api_key_never_set') throw new ApiKeyNeverSetError('historical job: no working Vital API key for the whole wait (status failed)');
    } catch (error) {
      if (error instanceof ApiKeyNeverSetError) {
        logger.error('Backfill gave up waiting for the Vital API key; SQS keeps the job, then the backfill DLQ', { reason: error.message });
        throw error;
      }
      if (error instanceof LastDeliveryError) {
        logger.error('Backfill job goes to the DLQ: run marked failed', { reason: error.message });
        throw error;
      }
      metrics.addMetric('BackfillTransientErrors', MetricUnit.Count, 1);
      logger.warn('Backfill step failed; SQS will redeliver from the checkpoint', { error: (error as Error).name, reason: (error as Error).message });
      throw error;
    } finally {
      logger.resetKeys();
    }
  };

  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    try {
      const processor = new BatchProcessor(EventType.SQS);
      return await traced('backfill', () =>
        processPartialResponse(event, (record: SQSRecord) => processRecord(record, context), processor, {
          context,
          // A failed job is a batch item failure, as in the worker, not a function error: a transient
          // 429 is retried by SQS from the checkpoint without counting as a Lambda error or alarming.
          throwOnFullBatchFailure: false,
        }),
      );
    } finally {
      publishMetrics();
    }
  };
}

/** Seconds a value of the API key secret is used before it is read again. */
const API_KEY_MAX_AGE_SECONDS = 300;

/**
 * The team API key: Secrets Manager when `VITAL_API_KEY_SECRET_ID` is set (AWS), else `VITAL_API_KEY`
 * (local). The secret is cached 5 minutes, and read afresh (at most every 30 s) when Vital rejects
 * the key, so a key stored after deploy is used by warm containers at their next try.
 */
function apiKeySource(): ApiKeySource | (() => Promise<string>) {
  const secretId = process.env.VITAL_API_KEY_SECRET_ID;
  if (secretId) {
    return new CachedApiKey({
      // CachedApiKey is the one cache: each read it asks for goes to Secrets Manager (Powertools'
      // own cache would add its max age to ours).
      fetch: async () => {
        const value = await getSecret<string>(secretId, { forceFetch: true });
        return typeof value === 'string' ? value : '';
      },
      maxAgeMs: API_KEY_MAX_AGE_SECONDS * 1000,
      minRefreshIntervalMs: 30_000,
    });
  }
  const localKey = process.env.VITAL_API_KEY;
  if (!localKey) throw new Error('Set VITAL_API_KEY_SECRET_ID (deployed) or VITAL_API_KEY (local) for the backfill');
  return async () => localKey;
}

/** A whole number of seconds from the environment, or undefined when unset. */
function secondsSetting(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a whole number of seconds, not "${raw}"`);
  return value;
}

/** Wires the backfill function from its Lambda environment (or the local pipeline's, which sets the same names). */
export function backfillFromEnvironment(): BackfillHandlerDependencies {
  const apiKeyRetryDelaySeconds = secondsSetting('BACKFILL_API_KEY_RETRY_SECONDS');
  const documents = DynamoDBDocumentClient.from(tracedClient(dynamoDbClient()), { marshallOptions: { removeUndefinedValues: true } });
  const s3 = tracedClient(s3Client());
  return {
    statuses: new DynamoDbBackfillStatusStore(documents, requiredEnv(TABLES.backfills.envVar)),
    records: new DynamoDbRecordStore(documents, {
      summariesTable: requiredEnv(TABLES.summaries.envVar),
      timeseriesTable: requiredEnv(TABLES.timeseries.envVar),
    }),
    streams: new S3WorkoutStreamStore(s3, requiredEnv(BUCKET.envVar)),
    heldBack: new S3HeldBackStore(s3, requiredEnv(BUCKET.envVar)),
    erasures: new DynamoDbErasureRegister(documents, requiredEnv(TABLES.erasures.envVar)),
    queue: new SqsBackfillQueue(tracedClient(sqsClient()), requiredEnv(QUEUES.backfill.envVar)),
    changes: changeEventPublisherFromEnvironment(),
    source: new VitalApiClient({
      baseUrl: vitalApiBaseUrlFromEnvironment(),
      apiKey: apiKeySource(),
      maxRequestsPerSecond: Number(process.env.VITAL_API_MAX_REQUESTS_PER_SECOND ?? 10),
      onRetry: (reason, delayMs) => {
        metrics.addMetric('BackfillRetries', MetricUnit.Count, 1);
        logger.warn('Vital API retry', { reason, delayMs: Math.round(delayMs) });
      },
    }),
    ...(process.env.BACKFILL_TIME_RESERVE_MS ? { timeReserveMs: Number(process.env.BACKFILL_TIME_RESERVE_MS) } : {}),
    // Local runs at a time scale set it from apiKeyRetryDelaySeconds(timeScale); AWS uses the default, 900 s.
    ...(apiKeyRetryDelaySeconds ? { apiKeyRetryDelaySeconds } : {}),
  };
}

let configured: ReturnType<typeof createBackfillHandler> | undefined;

/** The Lambda entry point. */
export const handler = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
  (configured ??= createBackfillHandler(backfillFromEnvironment()))(event, context);
