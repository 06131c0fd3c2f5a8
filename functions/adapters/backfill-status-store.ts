import { isConditionFailure } from './condition-failure';
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type {
  ApiKeyWait,
  BackfillJobKey,
  BackfillStatus,
  BackfillStatusStore,
  CheckpointAdvance,
  ExtendedRanges,
  QueueOutcome,
  ReadRun,
} from '../domain/backfill-job';

/**
 * Backfill status and checkpoints in the backfills table: one item per (user, provider, resource),
 * partition key `userId`, sort key `backfill#{provider}#{resource}`, so one query lists a user's
 * backfills. Every change after `queue` is conditional on the run id, so a superseded run can never
 * overwrite the status of the run that replaced it.
 */

/** The sort key of a job's status item. */
export const statusSortKey = (key: BackfillJobKey): string => `backfill#${key.provider}#${key.resource}`;

/**
 * The sort key of a notice recorded on its own because its range cannot be read while a run is
 * stored for its key: next to that run's status item, under the same `backfill#` prefix, so
 * `inspect backfills` lists it as a failed run with its reason.
 */
const rejectedNoticeSortKey = (key: BackfillJobKey, runId: string): string => `${statusSortKey(key)}#notice#${runId}`;

/** Runs a conditional write; false when its condition did not hold. */
async function conditionally(write: Promise<unknown>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

export class DynamoDbBackfillStatusStore implements BackfillStatusStore {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  private keyOf(key: BackfillJobKey) {
    return { userId: key.userId, sk: statusSortKey(key) };
  }

  async queue(status: BackfillStatus, replacing: ReadRun | null): Promise<QueueOutcome> {
    const written = await conditionally(
      this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...status, sk: statusSortKey(status) },
          // Whether the run may replace the one read is decideNotice's rule; the write only holds
          // while the stored run is still the one read (same id, no ranges added since). With
          // nothing read, only an absent item is written.
          ConditionExpression:
            replacing === null ? 'attribute_not_exists(userId)' : 'runId = :replacing AND runId <> :runId AND windowsTotal = :replacingTotal',
          ...(replacing === null
            ? {}
            : { ExpressionAttributeValues: { ':replacing': replacing.runId, ':runId': status.runId, ':replacingTotal': replacing.windowsTotal } }),
        }),
      ),
    );
    if (written) return 'queued';
    const existing = await this.get(status);
    if (existing?.runId === status.runId) return existing.state === 'queued' ? 'already_queued' : 'already_started';
    return 'changed';
  }

  extend(key: BackfillJobKey, run: ReadRun, ranges: ExtendedRanges, reopen: boolean, at: Date): Promise<boolean> {
    return conditionally(
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.keyOf(key),
          // The checkpoint, counters and step sequence stay: the windows added come after the run's own.
          // An unfinished run keeps its updatedAt too, so a retry whose message may not have gone out
          // still tells itself apart (isUnsentRetry, functions/domain/backfill-retry.ts).
          UpdateExpression:
            'SET startDate = :startDate, endDate = :endDate, ranges = :ranges, windowsTotal = :windowsTotal' +
            (reopen ? ', updatedAt = :at, #state = :queued REMOVE finishedAt, lastError' : ''),
          ConditionExpression: `runId = :runId AND windowsTotal = :readTotal AND #state IN (${reopen ? ':completed, :failed' : ':queued, :running, :waiting'})`,
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':startDate': ranges.startDate,
            ':endDate': ranges.endDate,
            ':ranges': ranges.ranges,
            ':windowsTotal': ranges.windowsTotal,
            ...(reopen ? { ':at': at.toISOString() } : {}),
            ':runId': run.runId,
            ':readTotal': run.windowsTotal,
            ':queued': 'queued',
            ...(reopen ? { ':completed': 'completed', ':failed': 'failed' } : { ':running': 'running', ':waiting': 'waiting_for_api_key' }),
          },
        }),
      ),
    );
  }

  recordRejected(status: BackfillStatus): Promise<boolean> {
    return conditionally(
      this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...status, sk: rejectedNoticeSortKey(status, status.runId) },
          ConditionExpression: 'attribute_not_exists(userId)',
        }),
      ),
    );
  }

  async get(key: BackfillJobKey): Promise<BackfillStatus | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: this.keyOf(key), ConsistentRead: true }),
    );
    if (!Item) return undefined;
    const { sk: _sortKey, ...status } = Item;
    return status as BackfillStatus;
  }

  async start(key: BackfillJobKey, runId: string, at: Date): Promise<void> {
    await conditionally(
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.keyOf(key),
          // A failed run starts again only when its job message is replayed from the dead-letter queue.
          UpdateExpression: 'SET #state = :running, startedAt = :at, updatedAt = :at REMOVE finishedAt',
          ConditionExpression: 'runId = :runId AND #state IN (:queued, :failed)',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':running': 'running', ':queued': 'queued', ':failed': 'failed', ':runId': runId, ':at': at.toISOString() },
        }),
      ),
    );
  }

  advance(key: BackfillJobKey, runId: string, expectedSeq: number, advance: CheckpointAdvance, at: Date): Promise<boolean> {
    const finished = advance.completed ? ', finishedAt = :at' : '';
    // A run completes only with the windows the runner read: none added since (`extend`).
    const planned = advance.completed ? ' AND windowsTotal = :windowsTotal' : '';
    return conditionally(
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.keyOf(key),
          // A page stored ends any wait for the API key: the run is running (or completed) again.
          UpdateExpression:
            'SET #state = :state, windowIndex = :windowIndex, #cursor = :cursor, windowsDone = :windowsDone, ' +
            `updatedAt = :at, startedAt = if_not_exists(startedAt, :at)${finished} ` +
            'REMOVE waitingSince, waitingReason, nextAttemptAt ' +
            'ADD stepSeq :one, pagesDone :pages, recordsStored :records, heldBack :heldBack',
          ConditionExpression: `runId = :runId AND stepSeq = :seq AND #state IN (:queued, :running, :waiting)${planned}`,
          ExpressionAttributeNames: { '#state': 'state', '#cursor': 'cursor' },
          ExpressionAttributeValues: {
            ':state': advance.completed ? 'completed' : 'running',
            ':windowIndex': advance.next.windowIndex,
            ':cursor': advance.next.cursor,
            ':windowsDone': advance.windowsDone,
            ':at': at.toISOString(),
            ':one': 1,
            ':pages': advance.pagesAdded,
            ':records': advance.recordsAdded,
            ':heldBack': advance.heldBackAdded,
            ':runId': runId,
            ':seq': expectedSeq,
            ':queued': 'queued',
            ':running': 'running',
            ':waiting': 'waiting_for_api_key',
            ...(advance.completed ? { ':windowsTotal': advance.windowsTotal } : {}),
          },
        }),
      ),
    );
  }

  waitForApiKey(key: BackfillJobKey, runId: string, expectedSeq: number, wait: ApiKeyWait, at: Date): Promise<boolean> {
    return conditionally(
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.keyOf(key),
          UpdateExpression:
            'SET #state = :waiting, waitingSince = if_not_exists(waitingSince, :at), waitingReason = :reason, ' +
            'nextAttemptAt = :next, updatedAt = :at ADD stepSeq :one',
          ConditionExpression: 'runId = :runId AND stepSeq = :seq AND #state IN (:queued, :running, :waiting)',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':waiting': 'waiting_for_api_key',
            ':reason': wait.reason,
            ':next': wait.nextAttemptAt.toISOString(),
            ':at': at.toISOString(),
            ':one': 1,
            ':runId': runId,
            ':seq': expectedSeq,
            ':queued': 'queued',
            ':running': 'running',
          },
        }),
      ),
    );
  }

  async noteError(key: BackfillJobKey, runId: string, reason: string, at: Date): Promise<void> {
    await conditionally(
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.keyOf(key),
          UpdateExpression: 'SET lastError = :reason, updatedAt = :at',
          ConditionExpression: 'runId = :runId AND #state IN (:queued, :running, :waiting)',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':reason': reason,
            ':at': at.toISOString(),
            ':runId': runId,
            ':queued': 'queued',
            ':running': 'running',
            ':waiting': 'waiting_for_api_key',
          },
        }),
      ),
    );
  }

  fail(key: BackfillJobKey, runId: string, reason: string, at: Date): Promise<boolean> {
    return conditionally(
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.keyOf(key),
          // A failed wait keeps waitingSince: a replay of the job from the DLQ that still finds no
          // working key fails again at once instead of waiting another full period.
          UpdateExpression: 'SET #state = :failed, lastError = :reason, updatedAt = :at, finishedAt = :at REMOVE waitingReason, nextAttemptAt',
          ConditionExpression: 'runId = :runId AND #state IN (:queued, :running, :waiting)',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':failed': 'failed',
            ':reason': reason,
            ':at': at.toISOString(),
            ':runId': runId,
            ':queued': 'queued',
            ':running': 'running',
            ':waiting': 'waiting_for_api_key',
          },
        }),
      ),
    );
  }

  retry(key: BackfillJobKey, runId: string, at: Date): Promise<boolean> {
    return conditionally(
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.keyOf(key),
          // The checkpoint stays: the run resumes where it failed. waitingSince stays too (see fail).
          UpdateExpression: 'SET #state = :queued, updatedAt = :at, retriedAt = :at REMOVE lastError, finishedAt ADD retries :one',
          // Failed, or queued by a retry whose message may not have gone out (isUnsentRetry).
          ConditionExpression: 'runId = :runId AND (#state = :failed OR (#state = :queued AND retriedAt = updatedAt))',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':queued': 'queued', ':failed': 'failed', ':at': at.toISOString(), ':one': 1, ':runId': runId },
        }),
      ),
    );
  }
}
