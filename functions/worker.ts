import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dynamoDbClient } from './adapters/dynamodb-client';
import type { S3Client } from '@aws-sdk/client-s3';
import { DynamoDbConnectionStore } from './adapters/connection-store';
import { DynamoDbErasureRegister } from './adapters/erasure-register';
import type { ClaimCheckStore } from './adapters/event-queue';
import { loadedOnFirstUse } from './adapters/loaded-on-first-use';
import { changeEventPublisherFromEnvironment } from './adapters/change-event-publisher';
import { DynamoDbRecordStore } from './adapters/record-store';
import type { BackfillRequests } from './domain/backfill-requests';
import type { DeliveryFailure, DeliveryFailureLog } from './domain/delivery-failure';
import { readOncePerUser } from './domain/erasure';
import { deliveryResult, processDelivery, type DeliveryOutcome, type KeptBodyStore, type ProcessingPorts } from './domain/event-processing';
import { decodeQueuedEvent, MalformedQueueMessageError, type QueuedEvent } from './domain/queued-event';
import { MalformedEnvelopeError } from './domain/webhook-event';
import { requiredEnv } from './shared/environment';
import { logger, metrics, publishMetrics } from './shared/observability';
import { traced, tracedClient } from './shared/tracing';
import { BUCKET, QUEUES, TABLES } from './shared/resources';

/** What the worker needs from the outside world. */
export interface WorkerDependencies {
  readonly ports: ProcessingPorts;
  readonly claimChecks: ClaimCheckStore;
  /** Where each failure is noted, for `vital-pipeline inspect dlq`. */
  readonly failures: DeliveryFailureLog;
  /** When set, events of any other team are quarantined instead of stored. */
  readonly expectedTeamId?: string;
}

const attributesOf = (record: SQSRecord): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(record.messageAttributes ?? {}).map(([name, value]) => [name, value.stringValue]));

const WRITTEN_METRIC: Record<'summary' | 'timeseries' | 'workout_stream' | 'connection' | 'historical', string> = {
  summary: 'SummaryRecordsWritten',
  timeseries: 'TimeseriesSamplesWritten',
  workout_stream: 'WorkoutStreamsRecorded',
  connection: 'ConnectionsWritten',
  historical: 'BackfillsRequested',
};

function countOutcome(outcome: DeliveryOutcome): void {
  if (outcome.erased) {
    metrics.addMetric('ErasedUserEvents', MetricUnit.Count, 1);
    return;
  }
  switch (outcome.action) {
    case 'unknown':
      // Alarmed on (lib/constructs/pipeline-alarms.ts): the body is kept under unrecognised/ for a replay.
      metrics.addMetric('UnknownEvents', MetricUnit.Count, 1);
      return;
    case 'out_of_scope':
      metrics.addMetric('OutOfScopeEvents', MetricUnit.Count, 1);
      return;
    case 'foreign_team':
      metrics.addMetric('QuarantinedEvents', MetricUnit.Count, 1);
      return;
    case 'device':
      metrics.addMetric('DeviceEvents', MetricUnit.Count, 1);
      return;
  }
  // One metric name per kind rather than a dimension: Powertools then aggregates them into one EMF
  // line per invocation instead of one line per record.
  if (outcome.written > 0) metrics.addMetric(WRITTEN_METRIC[outcome.action], MetricUnit.Count, outcome.written);
  if (outcome.stale > 0) metrics.addMetric('StaleVersionsIgnored', MetricUnit.Count, outcome.stale);
  if (deliveryResult(outcome) === 'duplicate') metrics.addMetric('DuplicateDeliveries', MetricUnit.Count, 1);
}

/**
 * Builds the worker: for each SQS record, decode the queue message, fetch a claim-checked body, and
 * process the delivery. No delivery is remembered: processing is idempotent by construction
 * (functions/domain/event-processing.ts), so a copy of a delivery, however late, is processed again,
 * changes nothing and is logged and counted as a duplicate. Records that throw are reported alone in
 * `batchItemFailures` and retried by SQS until `maxReceiveCount` moves them to the DLQ; nothing is
 * swallowed. A malformed body is such a failure on purpose: it was correctly signed, so it is kept
 * (in the DLQ) for a replay once the schema or the sender is fixed, rather than dropped. A delivery
 * of an erased user created before the erasure is acknowledged, counted (`ErasedUserEvents`) and
 * dropped; each invocation reads a user's erasure once (`readOncePerUser`).
 */
export function createWorkerHandler(deps: WorkerDependencies) {
  /**
   * Notes why `record` failed; the error itself still fails the record. A note that cannot be
   * written is logged, never allowed to replace the error that SQS must see.
   */
  const noteFailure = async (record: SQSRecord, error: unknown, facts: Pick<DeliveryFailure, 'svixId' | 'eventType'>): Promise<void> => {
    const failure: DeliveryFailure = {
      ...facts,
      messageId: record.messageId,
      attempt: Number(record.attributes?.ApproximateReceiveCount ?? 1),
      reason: `${(error as Error).name}: ${(error as Error).message}`,
      failedAt: new Date().toISOString(),
    };
    try {
      await deps.failures.record(failure);
    } catch (noteError) {
      logger.warn('Could not note the failure for inspect dlq', { messageId: record.messageId, error: (noteError as Error).name });
    }
    if (failure.attempt < QUEUES.events.maxReceiveCount) return;
    // The last attempt: SQS moves the message to the DLQ now. Said as a change event too; one that
    // cannot be published is logged, and the dead letter stays listed by `inspect dlq` either way.
    try {
      await deps.ports.changes.publish([
        { detailType: 'Events Held Back', detail: { reason: 'delivery_failed', count: 1, ...(facts.eventType ? { event_type: facts.eventType } : {}), ...(facts.svixId ? { svix_id: facts.svixId } : {}) } },
      ]);
    } catch (publishError) {
      logger.warn('Could not publish the dead letter as a change event', { messageId: record.messageId, error: (publishError as Error).name });
    }
  };

  const processRecord = async (record: SQSRecord, ports: ProcessingPorts): Promise<void> => {
    let queued: QueuedEvent;
    try {
      queued = decodeQueuedEvent(record.body, attributesOf(record));
    } catch (error) {
      if (error instanceof MalformedQueueMessageError) {
        metrics.addMetric('MalformedQueueMessages', MetricUnit.Count, 1);
        logger.error('Queue message is not a queued event; left for the DLQ', { messageId: record.messageId, reason: error.message });
      }
      await noteFailure(record, error, {});
      throw error;
    }
    const { svixId, svixTimestamp, eventType, receivedAt } = queued;
    const keys = { svixId, eventType };
    try {
      const body = queued.body ?? (await deps.claimChecks.get(queued.claimCheck!));
      const outcome = await processDelivery({ svixId, svixTimestamp, eventType, receivedAt, body }, ports, {
        expectedTeamId: deps.expectedTeamId,
      });
      countOutcome(outcome);
      logger.info('Delivery processed', {
        ...keys,
        userId: outcome.userId,
        action: outcome.action,
        result: deliveryResult(outcome),
        written: outcome.written,
        stale: outcome.stale,
        unchanged: outcome.unchanged,
      });
    } catch (error) {
      if (error instanceof MalformedEnvelopeError) {
        metrics.addMetric('MalformedEnvelopes', MetricUnit.Count, 1);
        logger.error('Signed body breaks its schema; retried, then kept in the DLQ for replay', { ...keys, issues: error.issues });
      } else {
        metrics.addMetric('ProcessingFailures', MetricUnit.Count, 1);
        logger.error('Delivery processing failed; SQS will retry it', { ...keys, error: (error as Error).name, reason: (error as Error).message });
      }
      await noteFailure(record, error, keys);
      throw error;
    }
  };

  return async (event: SQSEvent, _context?: Context): Promise<SQSBatchResponse> => {
    // A processor holds the state of one batch: one per invocation, so concurrent invocations of
    // this handler (the local pipeline runs several) cannot mix their batches.
    const processor = new BatchProcessor(EventType.SQS);
    // The erasures this invocation reads, once per user. (The port is reached only when a delivery names a user.)
    const ports: ProcessingPorts = { ...deps.ports, erasures: readOncePerUser({ latest: (userId) => deps.ports.erasures.latest(userId) }) };
    try {
      return await traced('worker', () => processPartialResponse(event, (record: SQSRecord) => processRecord(record, ports), processor, {
        // Every record failing is still a partial response to SQS: each is retried on its own.
        throwOnFullBatchFailure: false,
      }));
    } finally {
      publishMetrics();
    }
  };
}

/** Wires the worker from its Lambda environment (or the local pipeline's, which sets the same names). */
export function workerFromEnvironment(): WorkerDependencies {
  const client = tracedClient(dynamoDbClient());
  const documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  const bucket = requiredEnv(BUCKET.envVar);
  const backfillsTable = requiredEnv(TABLES.backfills.envVar);
  const backfillQueueUrl = requiredEnv(QUEUES.backfill.envVar);
  // Claim checks, kept bodies and backfill requests are rare: their adapters and the S3 and SQS
  // clients behind them load on first use, so a cold start loads only DynamoDB.
  let s3: Promise<S3Client> | undefined;
  const tracedS3 = () => (s3 ??= import('./adapters/s3-client').then(({ s3Client }) => tracedClient(s3Client())));
  const keptUnder = (prefix: string) =>
    loadedOnFirstUse<KeptBodyStore>(async () => {
      const { S3KeptBodyStore } = await import('./adapters/kept-body-store');
      return new S3KeptBodyStore(await tracedS3(), bucket, prefix);
    });
  return {
    ports: {
      records: new DynamoDbRecordStore(documents, {
        summariesTable: requiredEnv(TABLES.summaries.envVar),
        timeseriesTable: requiredEnv(TABLES.timeseries.envVar),
      }),
      connections: new DynamoDbConnectionStore(documents, requiredEnv(TABLES.connections.envVar)),
      backfillRequests: loadedOnFirstUse<BackfillRequests>(async () => {
        const [{ QueuedBackfillRequests, SqsBackfillQueue }, { DynamoDbBackfillStatusStore }, { sqsClient }] = await Promise.all([
          import('./adapters/backfill-requests'),
          import('./adapters/backfill-status-store'),
          import('./adapters/sqs-client'),
        ]);
        return new QueuedBackfillRequests({
          statuses: new DynamoDbBackfillStatusStore(documents, backfillsTable),
          queue: new SqsBackfillQueue(tracedClient(sqsClient()), backfillQueueUrl),
        });
      }),
      quarantine: keptUnder(BUCKET.prefixes.quarantine),
      unrecognised: keptUnder(BUCKET.prefixes.unrecognised),
      // Loads the EventBridge client on its first publish.
      changes: changeEventPublisherFromEnvironment(),
      erasures: new DynamoDbErasureRegister(documents, requiredEnv(TABLES.erasures.envVar)),
    },
    claimChecks: loadedOnFirstUse<ClaimCheckStore>(async () => {
      const { S3ClaimCheckStore } = await import('./adapters/claim-check-store');
      return new S3ClaimCheckStore(await tracedS3(), bucket);
    }),
    failures: loadedOnFirstUse<DeliveryFailureLog>(async () => {
      const { S3DeliveryFailureStore } = await import('./adapters/delivery-failure-store');
      return new S3DeliveryFailureStore(await tracedS3(), bucket, BUCKET.prefixes.deliveryFailures);
    }),
    expectedTeamId: process.env.EXPECTED_TEAM_ID || undefined,
  };
}

let configured: ReturnType<typeof createWorkerHandler> | undefined;

/** The Lambda entry point. */
export const handler = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
  (configured ??= createWorkerHandler(workerFromEnvironment()))(event, context);
