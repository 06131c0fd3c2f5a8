import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, ScanCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { statusSortKey } from '../functions/adapters/backfill-status-store';
import type { StoredConnection } from '../functions/adapters/connection-store';
import { DynamoDbRecordStore, type TimeRange } from '../functions/adapters/record-store';
import type { S3WorkoutStreamStore } from '../functions/adapters/workout-stream-store';
import { streamIsCurrent } from '../functions/domain/backfill-run';
import { rangesOfRun, type RunRanges } from '../functions/domain/backfill-plan';
import type { BackfillState, BackfillStatus } from '../functions/domain/backfill-job';
import { resourceNamed, RESOURCES, type ResourceDefinition } from '../functions/domain/catalogue';
import { didYouMean } from './terminal';
import { stackOptions, type StackLocation } from './target';
import { sampleKey, sampleSourceOf, summaryRecordIdentity, type VitalSource } from '../functions/domain/record-identity';
import type { TableName } from '../local/local-resources';

/**
 * Read-side queries over the pipeline's tables, for `inspect`. Records are read through the worker's
 * own store adapter (`DynamoDbRecordStore`) wherever it has a read; the rest follows the layout it
 * documents: summaries keyed `${userId}#${resource}` / record id with the object as a map in `data`,
 * backfill status items under `backfill#...` sort keys, connections keyed by user and provider.
 */

/** `--resource` names nothing in the catalogue. */
export class UnknownResourceError extends Error {}

/** One stored record, as `inspect records --json` prints it: `record` is exactly what Vital sent. */
export interface RecordRow {
  readonly resource: string;
  readonly provider: string;
  readonly source_type: string;
  /** Summary: the record id. Timeseries: the sample's instant, and `|type` where samples are typed. */
  readonly key: string;
  readonly record: Record<string, unknown>;
}

export interface RecordQuery {
  readonly userId: string;
  readonly resource: string;
  readonly provider?: string;
  /** ISO 8601 bounds, inclusive; either may be left out. */
  readonly from?: string;
  readonly to?: string;
}

/** Bounds wide enough for any data Vital holds, for a query without `--from` / `--to`. */
const EARLIEST = '1970-01-01T00:00:00Z';
const LATEST = '9999-12-31T23:59:59Z';

const documentsOf = (dynamodb: DynamoDBClient) => DynamoDBDocumentClient.from(dynamodb);

async function queryAll(dynamodb: DynamoDBClient, input: QueryCommandInput): Promise<Record<string, unknown>[]> {
  const documents = documentsOf(dynamodb);
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey }));
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/** Every summary object of a user's resource, with a time or without one (profile, workout streams). */
async function allSummaryObjects(dynamodb: DynamoDBClient, table: string, userId: string, resource: string) {
  const items = await queryAll(dynamodb, {
    TableName: table,
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': `${userId}#${resource}` },
  });
  return items.map((item) => ({ object: item.data as Record<string, unknown>, order: item.order as string }));
}

/** The catalogue's resource of that name; `UnknownResourceError` with the close names otherwise. */
export function requireResource(name: string): ResourceDefinition {
  const definition = resourceNamed(name);
  if (!definition) throw new UnknownResourceError(`Unknown resource "${name}".${didYouMean(name, [...RESOURCES.keys()])} Every resource: vital-pipeline inspect resources`);
  return definition;
}

/** The newest stored version of each record of a user's resource, optionally by provider and time. */
export async function readRecords(
  dynamodb: DynamoDBClient,
  tables: Readonly<Record<TableName, string>>,
  query: RecordQuery,
): Promise<RecordRow[]> {
  const definition = requireResource(query.resource);
  const store = new DynamoDbRecordStore(documentsOf(dynamodb), {
    summariesTable: tables.summaries,
    timeseriesTable: tables.timeseries,
  });
  const range: TimeRange = { from: query.from ?? EARLIEST, to: query.to ?? LATEST };
  let rows: RecordRow[];
  if (definition.kind === 'timeseries') {
    const { samples } = await store.readTimeseries(query.userId, query.resource, range);
    rows = samples.map(({ source, sample }) => ({
      resource: query.resource,
      provider: source.provider,
      source_type: source.type,
      key: sampleKey(sample),
      record: sample,
    }));
  } else {
    const bounded = query.from !== undefined || query.to !== undefined;
    const stored = bounded
      ? await store.querySummaries(query.userId, query.resource, range)
      : await allSummaryObjects(dynamodb, tables.summaries, query.userId, query.resource);
    rows = stored.map(({ object, order }) => {
      const source = sampleSourceOf((object.source ?? {}) as VitalSource);
      return {
        resource: query.resource,
        provider: source.provider,
        source_type: source.type,
        key: summaryRecordIdentity(query.resource, object, order).id,
        record: object,
      };
    });
  }
  return query.provider ? rows.filter((row) => row.provider === query.provider) : rows;
}

/**
 * The workout-stream jobs of a user, as backfill rows: one per `workout_stream` notice stored, with
 * `completed` once a stream as new as the notice is in the bucket (the backfill's own rule,
 * `streamIsCurrent`) and `queued` until then. A job keeps no status of its own: its notice and its
 * stream are the whole of its state, so a workout the API has no stream for (a manual entry) stays
 * `queued`, which the table says.
 */
export async function readWorkoutStreamJobs(
  dynamodb: DynamoDBClient,
  streams: Pick<S3WorkoutStreamStore, 'orderOf'>,
  summariesTable: string,
  userId: string,
): Promise<BackfillRow[]> {
  const notices = await allSummaryObjects(dynamodb, summariesTable, userId, 'workout_stream');
  return Promise.all(
    notices.map(async ({ object, order }) => {
      const provider = sampleSourceOf((object.source ?? {}) as VitalSource).provider;
      const workoutId = summaryRecordIdentity('workout_stream', object, order).id;
      const stored = await streams.orderOf(userId, provider, workoutId);
      return {
        resource: 'workout_stream',
        provider,
        status: streamIsCurrent(stored, order) ? 'completed' : 'queued',
        start_date: '',
        end_date: '',
        records: stored !== undefined ? 1 : 0,
        held_back: 0,
        workout_id: workoutId,
      } satisfies BackfillRow;
    }),
  );
}

/** A run's ranges as the CLI prints them, only when it fetches more than one (`start_date`/`end_date` are then their hull). */
export function rangesField(run: RunRanges): { ranges?: { start_date: string; end_date: string }[] } {
  const ranges = rangesOfRun(run);
  return ranges.length > 1 ? { ranges: ranges.map((range) => ({ start_date: range.startDate, end_date: range.endDate })) } : {};
}

/** One backfill, as `inspect backfills --json` prints it. */
export interface BackfillRow {
  readonly resource: string;
  readonly provider: string;
  readonly status: BackfillState;
  readonly start_date: string;
  readonly end_date: string;
  /**
   * Only when the run fetches more than one range (`start_date`/`end_date` are then their hull, and
   * the gaps between them are not fetched): the ranges, in the order the run fetches them.
   */
  readonly ranges?: readonly { readonly start_date: string; readonly end_date: string }[];
  readonly records: number;
  /** Only for a workout-stream job (`resource` `workout_stream`): the workout whose stream it fetches. */
  readonly workout_id?: string;
  /** Records the API sent that break the schema, kept under `held-back/` instead of stored. */
  readonly held_back: number;
  /** Only when `failed`: why (the error, never a payload) and when. `vital-pipeline backfill retry` resumes it. */
  readonly failure_reason?: string;
  readonly failed_at?: string;
  /** How many times the run was retried after failing (`vital-pipeline backfill retry`), when it was. */
  readonly retries?: number;
  /** Only while `waiting_for_api_key`: since when, why (status and path), when it tries again, and what to do. */
  readonly waiting_since?: string;
  readonly waiting_reason?: string;
  readonly next_attempt_at?: string;
  readonly hint?: string;
}

/**
 * What to do about backfills waiting for the Vital API key: store it where the target's backfill
 * reads it. The runs then go on by themselves, from their checkpoints.
 */
export function apiKeyHint(stack: StackLocation | undefined): string {
  return stack
    ? `store the Vital API key: vital-pipeline secrets set ${stackOptions(stack)} --api-key-only; waiting backfills go on by themselves at their next try (within 15 minutes)`
    : 'store the Vital API key: set VITAL_API_KEY and restart the local pipeline; waiting backfills go on by themselves at their next try';
}

/**
 * The status items of a user's backfills, or with no user those of the whole deployment (a scan of
 * the backfills table: status items only, by their sort-key prefix).
 */
export async function readBackfillStatuses(dynamodb: DynamoDBClient, table: string, scope: { readonly userId?: string }): Promise<BackfillStatus[]> {
  // Status items share the sort-key prefix of statusSortKey: `backfill#`.
  const prefix = `${statusSortKey({ userId: '', provider: '', resource: '' }).split('#')[0]}#`;
  if (scope.userId !== undefined) {
    return (await queryAll(dynamodb, {
      TableName: table,
      KeyConditionExpression: 'userId = :userId AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':userId': scope.userId, ':prefix': prefix },
    })) as unknown as BackfillStatus[];
  }
  const documents = documentsOf(dynamodb);
  const items: BackfillStatus[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new ScanCommand({ TableName: table, FilterExpression: 'begins_with(sk, :prefix)', ExpressionAttributeValues: { ':prefix': prefix }, ExclusiveStartKey: startKey }),
    );
    items.push(...((page.Items ?? []) as unknown as BackfillStatus[]));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/**
 * A user's backfills, one per (provider, resource): the latest run of each, with its last error,
 * and for a run waiting for the API key, the wait and `apiKeyHint(stack)`.
 */
export async function readBackfills(
  dynamodb: DynamoDBClient,
  table: string,
  userId: string,
  target: { readonly stack?: StackLocation } = {},
): Promise<{ row: BackfillRow; lastError?: string }[]> {
  const items = await readBackfillStatuses(dynamodb, table, { userId });
  return items.map((status) => ({
    row: {
      resource: status.resource,
      provider: status.provider,
      status: status.state,
      start_date: status.startDate,
      end_date: status.endDate,
      ...rangesField(status),
      records: status.recordsStored ?? 0,
      held_back: status.heldBack ?? 0,
      ...(status.state === 'failed'
        ? { failure_reason: status.lastError ?? 'no reason recorded', ...(status.finishedAt ? { failed_at: status.finishedAt } : {}) }
        : {}),
      ...(status.retries ? { retries: status.retries } : {}),
      ...(status.state === 'waiting_for_api_key'
        ? {
            ...(status.waitingSince ? { waiting_since: status.waitingSince } : {}),
            ...(status.waitingReason ? { waiting_reason: status.waitingReason } : {}),
            ...(status.nextAttemptAt ? { next_attempt_at: status.nextAttemptAt } : {}),
            hint: apiKeyHint(target.stack),
          }
        : {}),
    },
    ...(status.lastError ? { lastError: status.lastError } : {}),
  }));
}

/** One provider connection, as `inspect connections --json` prints it. */
export interface ConnectionRow {
  readonly provider: string;
  readonly status: StoredConnection['status'];
  readonly external_user_id?: string;
  readonly resource_availability?: unknown;
  readonly last_error_type?: string;
  readonly last_error_message?: string;
}

/** A user's provider connections. */
export async function readConnections(dynamodb: DynamoDBClient, table: string, userId: string): Promise<ConnectionRow[]> {
  const items = (await queryAll(dynamodb, {
    TableName: table,
    KeyConditionExpression: 'userId = :userId',
    ExpressionAttributeValues: { ':userId': userId },
  })) as unknown as StoredConnection[];
  return items.map((connection) => ({
    provider: connection.provider,
    status: connection.status,
    ...(connection.externalUserId ? { external_user_id: connection.externalUserId } : {}),
    ...(connection.resourceAvailability ? { resource_availability: connection.resourceAvailability } : {}),
    ...(connection.lastErrorType ? { last_error_type: connection.lastErrorType } : {}),
    ...(connection.lastErrorMessage ? { last_error_message: connection.lastErrorMessage } : {}),
  }));
}
