/**
 * The pipeline's stateful resources, described once as plain data. The CDK stack builds its tables,
 * queues and bucket from these definitions, the local pipeline creates the same ones on its
 * stand-ins, and the handlers find each by the environment variable named here.
 */

export interface KeyAttribute {
  readonly name: string;
  readonly type: 'S' | 'N' | 'B';
}

export interface TableDefinition {
  /** Logical id: the construct id in CDK, the suffix of the local table name. */
  readonly id: string;
  /** Environment variable through which handlers receive the table's name. */
  readonly envVar: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  readonly localSecondaryIndexes?: readonly { readonly indexName: string; readonly sortKey: KeyAttribute }[];
  readonly description: string;
}

export interface QueueDefinition {
  readonly id: string;
  readonly envVar: string;
  /** Seconds: the timeout of the function that consumes the queue. */
  readonly consumerTimeoutSeconds: number;
  /** Seconds: `VISIBILITY_TIMEOUT_RATIO` times `consumerTimeoutSeconds`. */
  readonly visibilityTimeoutSeconds: number;
  /** Receives before a message moves to the queue's dead-letter queue. */
  readonly maxReceiveCount: number;
  /** Event source mapping: records per batch, and seconds to gather a batch. */
  readonly batchSize: number;
  readonly maxBatchingWindowSeconds: number;
  /** Upper bound of concurrent consumer invocations (the event source mapping's maximum concurrency). */
  readonly maxConcurrency: number;
  readonly deadLetterEnvVar: string;
  /** Seconds a message is kept, in the queue and in its dead-letter queue (SQS's maximum: 14 days). */
  readonly messageRetentionSeconds: number;
  readonly description: string;
}

const string = (name: string): KeyAttribute => ({ name, type: 'S' });

export const TABLES = {
  summaries: {
    id: 'Summaries',
    envVar: 'SUMMARIES_TABLE',
    partitionKey: string('pk'),
    sortKey: string('sk'),
    description: 'Summary records: one item per (user, resource, id), the newest version by updated_at, with the svix-id that wrote it.',
  },
  timeseries: {
    id: 'Timeseries',
    envVar: 'TIMESERIES_TABLE',
    partitionKey: string('pk'),
    sortKey: string('sk'),
    description: 'Timeseries samples, packed into time buckets per (user, resource, provider, source type).',
  },
  connections: {
    id: 'Connections',
    envVar: 'CONNECTIONS_TABLE',
    partitionKey: string('userId'),
    sortKey: string('provider'),
    description: 'Provider connections per (user, provider): state, last error, announced resources.',
  },
  backfills: {
    id: 'Backfills',
    envVar: 'BACKFILLS_TABLE',
    partitionKey: string('userId'),
    sortKey: string('sk'),
    description: 'Backfill jobs and their status per (user, provider, resource), with checkpoints.',
  },
  erasures: {
    id: 'Erasures',
    envVar: 'ERASURES_TABLE',
    partitionKey: string('userId'),
    sortKey: string('erasedAt'),
    description: 'Erasures of users (vital-pipeline erase), one item per erasure and its receipt; a user\'s newest is the tombstone the worker and the backfill check.',
  },
} as const satisfies Record<string, TableDefinition>;

/** The pipeline's functions, as the stack, the local runner and the tests name them. */
export type PipelineFunctionName = 'verifier' | 'worker' | 'backfill';

/** The route Vital delivers to, on the HTTP API in AWS and on the local endpoint alike. */
export const WEBHOOK_ROUTE = { method: 'POST', path: '/webhooks/vital' } as const;

/** The verifier's timeout: Svix counts a delivery failed after about 15 s. */
export const VERIFIER_TIMEOUT_SECONDS = 10;

const FOURTEEN_DAYS = 14 * 24 * 3600;

/**
 * A queue's visibility timeout is six times its consumer's timeout, as AWS advises for SQS event
 * sources: a message is never handed to a second invocation while the first may still run on it,
 * and a batch the mapping is still gathering or retrying within the function has room. Every
 * runner keeps the ratio: the stack, the local pipeline and the test harnesses (scaled, never inverted).
 */
export const VISIBILITY_TIMEOUT_RATIO = 6;

/** The worker's timeout; the events queue's visibility timeout is six times it. */
export const WORKER_TIMEOUT_SECONDS = 30;
/** The backfill function's timeout; the backfill queue's visibility timeout is six times it. */
export const BACKFILL_TIMEOUT_SECONDS = 120;
/**
 * Milliseconds the backfill keeps in hand before starting another page (a workouts page fetches a
 * stream per workout, with retries): a quarter of its timeout, scaled with it by `timeScale`.
 */
export function backfillTimeReserveMs(timeScale = 1): number {
  return (BACKFILL_TIMEOUT_SECONDS / 4) * 1000 * timeScale;
}

export const QUEUES = {
  events: {
    id: 'Events',
    envVar: 'EVENTS_QUEUE_URL',
    deadLetterEnvVar: 'EVENTS_DLQ_URL',
    consumerTimeoutSeconds: WORKER_TIMEOUT_SECONDS,
    visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_RATIO * WORKER_TIMEOUT_SECONDS,
    maxReceiveCount: 5,
    batchSize: 10,
    maxBatchingWindowSeconds: 1,
    maxConcurrency: 10,
    messageRetentionSeconds: FOURTEEN_DAYS,
    description: 'Verified webhook deliveries, consumed by the worker.',
  },
  backfill: {
    id: 'Backfill',
    envVar: 'BACKFILL_QUEUE_URL',
    deadLetterEnvVar: 'BACKFILL_DLQ_URL',
    consumerTimeoutSeconds: BACKFILL_TIMEOUT_SECONDS,
    visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_RATIO * BACKFILL_TIMEOUT_SECONDS,
    maxReceiveCount: 5,
    batchSize: 1,
    maxBatchingWindowSeconds: 0,
    maxConcurrency: 2,
    messageRetentionSeconds: FOURTEEN_DAYS,
    description: 'Backfill jobs (windows and pages of the Data Access API), consumed with capped concurrency.',
  },
} as const satisfies Record<string, QueueDefinition>;

/** A consumer's function timeout and its queue's visibility timeout, as one runner applies them. */
export interface ConsumerTimeouts {
  readonly functionTimeoutSeconds: number;
  /** Whole seconds, as SQS takes them. */
  readonly visibilityTimeoutSeconds: number;
}

/**
 * The timeouts of a queue's consumer scaled by `timeScale` (1 in AWS; a fraction for fast local
 * runs and tests, so retries come sooner). The ratio between them is kept: the visibility timeout
 * is rounded up to whole seconds, never down.
 */
export function consumerTimeouts(definition: QueueDefinition, timeScale = 1): ConsumerTimeouts {
  if (!(timeScale > 0 && timeScale <= 1)) throw new RangeError(`A time scale is a number above 0 and at most 1, not ${timeScale}`);
  const functionTimeoutSeconds = definition.consumerTimeoutSeconds * timeScale;
  return { functionTimeoutSeconds, visibilityTimeoutSeconds: Math.ceil(VISIBILITY_TIMEOUT_RATIO * functionTimeoutSeconds) };
}

/**
 * The bucket for bodies too large for SQS, quarantined events, events of a type the catalogue does
 * not know (`unrecognised/`, kept for a replay), workout streams and records of Data Access API
 * responses held back by the backfill because they break the schema (`held-back/`).
 */
export const BUCKET = {
  id: 'RawBodies',
  envVar: 'RAW_BODY_BUCKET',
  prefixes: {
    claimChecks: 'raw-bodies/',
    quarantine: 'quarantine/',
    unrecognised: 'unrecognised/',
    workoutStreams: 'workout-streams/',
    heldBack: 'held-back/',
    deliveryFailures: 'failures/',
  },
} as const;

/**
 * The EventBridge bus the handlers publish change events on (`functions/domain/change-events.ts`):
 * the stack's own or one the deployment names, given to the handlers as a name or an ARN in
 * `envVar`. The local pipeline's bus, on its EventBridge stand-in, is named after `id`.
 */
export const CHANGE_EVENT_BUS = {
  id: 'ChangeEvents',
  envVar: 'CHANGE_EVENT_BUS',
} as const;
