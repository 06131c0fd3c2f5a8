import { BatchWriteItemCommand, QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { userInfo } from 'node:os';
import { createInterface } from 'node:readline/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDbErasureRegister } from '../../functions/adapters/erasure-register';
import { S3HeldBackStore } from '../../functions/adapters/held-back-store';
import { partitionKey } from '../../functions/adapters/record-store';
import { S3WorkoutStreamStore } from '../../functions/adapters/workout-stream-store';
import { RESOURCES } from '../../functions/domain/catalogue';
import { bodyOwner, ownerOfMetadata } from '../../functions/domain/envelope-owner';
import { ERASED_STORES, NOTHING_REMOVED, settledAt, type ErasedStore, type ErasureRecord } from '../../functions/domain/erasure';
import { BUCKET, TABLES, type TableDefinition } from '../../functions/shared/resources';
import { stackClient, type PipelineTarget } from '../target';
import { UsageError } from '../terminal';

/**
 * `vital-pipeline erase --user U`: removes every copy of one user's data from the pipeline's
 * stores, so that none comes back (docs/erasure.md). In order:
 *
 * 1. The tombstone: the erasure is recorded at T in the erasures table. From then on the worker
 *    and the backfill store nothing of the user that was created before T
 *    (functions/domain/erasure.ts).
 * 2. A sweep: every store is emptied of the user, one after another (`ERASED_STORES`), and what
 *    each held is added to the erasure's receipt as soon as it is removed.
 * 3. A wait, until every invocation that may have read the register just before the tombstone was
 *    written has ended (`settledAt`: the longest consumer timeout after the write), then a second
 *    sweep for what such an invocation stored.
 * 4. The receipt is marked finished; it stays in the erasures table for an auditor.
 *
 * Every step can be done again: a run that finds the user's newest erasure unfinished (a crash, a
 * Ctrl-C) resumes it with the same T, and its sweeps remove what is left; a run on a user whose
 * erasure finished records a new one (a later T) and finds nothing new unless data came since.
 */

/** What to erase, and how the erasure tells what it does. */
export interface EraseRequest {
  readonly userId: string;
  /** Who runs it, for the receipt: the AWS caller identity's ARN, or the local user (`operatorOf`). */
  readonly erasedBy: string;
  /** Each step, one line (the wait above all). */
  readonly onStep?: (text: string) => void;
  readonly now?: () => Date;
}

export interface EraseResult {
  /** The receipt as recorded: the sum over every run of this erasure. */
  readonly receipt: ErasureRecord;
  /** This run finished an erasure an earlier run had begun. */
  readonly resumed: boolean;
  /** What this run removed, per store. */
  readonly removedNow: Readonly<Record<ErasedStore, number>>;
  /** The user's finished erasure before this one, when there was one. */
  readonly previous?: ErasureRecord;
}

/** DynamoDB takes at most 25 requests in one BatchWriteItem. */
const BATCH_WRITE_LIMIT = 25;
/** S3 takes at most 1,000 keys in one DeleteObjects. */
const DELETE_OBJECTS_LIMIT = 1000;
/** Tries of one BatchWriteItem's unprocessed deletes (throttling), backing off, before the sweep fails (and can be run again). */
const BATCH_WRITE_ATTEMPTS = 8;
/** Partitions of the record tables queried at once (one per resource of the catalogue). */
const PARTITION_CONCURRENCY = 16;

/** Deletes `keys` from `table`, retrying what DynamoDB leaves unprocessed. */
async function deleteKeys(dynamodb: DynamoDBClient, table: string, keys: readonly Record<string, AttributeValue>[]): Promise<void> {
  let requests = keys.map((key) => ({ DeleteRequest: { Key: key } }));
  for (let attempt = 1; requests.length > 0; attempt += 1) {
    if (attempt > BATCH_WRITE_ATTEMPTS) throw new Error(`DynamoDB left ${requests.length} deletes of ${table} unprocessed ${BATCH_WRITE_ATTEMPTS} times: run erase again`);
    if (attempt > 1) await sleep(Math.min(2_000, 50 * 2 ** attempt) * Math.random());
    const { UnprocessedItems } = await dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
    requests = (UnprocessedItems?.[table] ?? []) as typeof requests;
  }
}

/** Deletes every item of one partition of a table; resolves how many there were. */
async function deletePartition(dynamodb: DynamoDBClient, table: string, definition: TableDefinition, partition: string): Promise<number> {
  const names = { '#pk': definition.partitionKey.name, '#sk': definition.sortKey!.name };
  let removed = 0;
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await dynamodb.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':pk': { S: partition } },
        // The keys alone: nothing of the records is read.
        ProjectionExpression: '#pk, #sk',
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    const keys = page.Items ?? [];
    for (let index = 0; index < keys.length; index += BATCH_WRITE_LIMIT) await deleteKeys(dynamodb, table, keys.slice(index, index + BATCH_WRITE_LIMIT));
    removed += keys.length;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return removed;
}

/** A user's summaries or timeseries: one partition per resource of the catalogue (`partitionKey`). */
async function deleteRecords(dynamodb: DynamoDBClient, table: string, definition: TableDefinition, userId: string): Promise<number> {
  const resources = [...RESOURCES.keys()];
  let removed = 0;
  for (let index = 0; index < resources.length; index += PARTITION_CONCURRENCY) {
    const counts = await Promise.all(
      resources.slice(index, index + PARTITION_CONCURRENCY).map((resource) => deletePartition(dynamodb, table, definition, partitionKey(userId, resource))),
    );
    removed += counts.reduce((sum, count) => sum + count, 0);
  }
  return removed;
}

/** One stored copy of an object: a version or a delete marker in a versioned bucket, else the object. */
interface StoredCopy {
  readonly key: string;
  readonly versionId?: string;
  readonly deleteMarker: boolean;
}

/**
 * Whether the bucket keeps versions (versioning enabled, or suspended with versions kept). A
 * versioned bucket keeps a deleted object's data as noncurrent versions: only deleting each version
 * and delete marker removes it. (The stack's bucket is versioned; the local stand-in, fauxqs, keeps
 * no versions and answers a listing of versions with none, so it is asked first.)
 */
async function keepsVersions(s3: S3Client, bucket: string): Promise<boolean> {
  const { Status } = await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }));
  return Status === 'Enabled' || Status === 'Suspended';
}

/** Every stored copy under `prefix`. */
async function copiesUnder(s3: S3Client, bucket: string, prefix: string, versioned: boolean): Promise<StoredCopy[]> {
  const copies: StoredCopy[] = [];
  if (versioned) {
    let markers: { KeyMarker?: string; VersionIdMarker?: string } = {};
    for (;;) {
      const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, ...markers }));
      for (const version of page.Versions ?? []) copies.push({ key: version.Key!, versionId: version.VersionId!, deleteMarker: false });
      for (const marker of page.DeleteMarkers ?? []) copies.push({ key: marker.Key!, versionId: marker.VersionId!, deleteMarker: true });
      if (!page.IsTruncated) return copies;
      markers = { KeyMarker: page.NextKeyMarker, VersionIdMarker: page.NextVersionIdMarker };
    }
  }
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) copies.push({ key: object.Key!, deleteMarker: false });
    token = page.NextContinuationToken;
  } while (token);
  return copies;
}

/** Deletes the copies (each version by its id); resolves how many. */
async function deleteCopies(s3: S3Client, bucket: string, copies: readonly StoredCopy[]): Promise<number> {
  for (let index = 0; index < copies.length; index += DELETE_OBJECTS_LIMIT) {
    const { Errors = [] } = await s3.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: {
          Objects: copies.slice(index, index + DELETE_OBJECTS_LIMIT).map(({ key, versionId }) => ({ Key: key, ...(versionId ? { VersionId: versionId } : {}) })),
          Quiet: true,
        },
      }),
    );
    if (Errors.length > 0) throw new Error(`S3 did not delete ${Errors.length} object(s) of ${bucket}, the first ${Errors[0]!.Key}: ${Errors[0]!.Code}: run erase again`);
  }
  return copies.length;
}

/**
 * The user a body under a shared prefix belongs to: its owner label (`ownerMetadata`, on every body
 * written since the label exists), else the envelope of the body itself, read and never shown.
 */
async function ownerOfObject(s3: S3Client, bucket: string, copy: StoredCopy): Promise<string | undefined> {
  const at = { Bucket: bucket, Key: copy.key, ...(copy.versionId ? { VersionId: copy.versionId } : {}) };
  const { Metadata } = await s3.send(new HeadObjectCommand(at));
  const labelled = ownerOfMetadata(Metadata);
  if (labelled !== undefined) return labelled;
  const object = await s3.send(new GetObjectCommand(at));
  return bodyOwner((await object.Body?.transformToString('utf8')) ?? '');
}

/** Deletes every copy under `prefix` whose object belongs to `userId`, as its data (any version not a delete marker) says. */
async function deleteOwnedUnder(s3: S3Client, bucket: string, prefix: string, versioned: boolean, userId: string): Promise<number> {
  const byKey = new Map<string, StoredCopy[]>();
  for (const copy of await copiesUnder(s3, bucket, prefix, versioned)) byKey.set(copy.key, [...(byKey.get(copy.key) ?? []), copy]);
  const owned: StoredCopy[] = [];
  for (const copies of byKey.values()) {
    // Every copy of a key is one message's body (the key is its svix-id), so one copy with data says whose.
    const withData = copies.find((copy) => !copy.deleteMarker);
    if (withData && (await ownerOfObject(s3, bucket, withData)) === userId) owned.push(...copies);
  }
  return deleteCopies(s3, bucket, owned);
}

/** Removes a user's data from one store of the target; resolves how much it held. */
type StoreSweep = (target: PipelineTarget, userId: string, versioned: boolean) => Promise<number>;

/** A table of the user's records: one partition per resource. */
const recordsIn = (table: 'summaries' | 'timeseries'): StoreSweep => (target, userId) =>
  deleteRecords(target.dynamodb, target.tables[table], TABLES[table], userId);

/** A table keyed by user: the user's partition. */
const partitionOf = (table: 'connections' | 'backfills'): StoreSweep => (target, userId) =>
  deletePartition(target.dynamodb, target.tables[table], TABLES[table], userId);

/** A prefix of the user's own in the bucket, as its store names it. */
const userPrefix = (prefixOf: (target: PipelineTarget, userId: string) => string): StoreSweep => async (target, userId, versioned) =>
  deleteCopies(target.s3, target.bucket, await copiesUnder(target.s3, target.bucket, prefixOf(target, userId), versioned));

/** A prefix shared by every user: the user's objects among it, by owner. */
const ownedUnder = (prefix: string): StoreSweep => (target, userId, versioned) => deleteOwnedUnder(target.s3, target.bucket, prefix, versioned, userId);

const SWEEPS: Readonly<Record<ErasedStore, StoreSweep>> = {
  summaries: recordsIn('summaries'),
  timeseries: recordsIn('timeseries'),
  connections: partitionOf('connections'),
  backfills: partitionOf('backfills'),
  workout_streams: userPrefix((target, userId) => new S3WorkoutStreamStore(target.s3, target.bucket).prefixOf(userId)),
  held_back: userPrefix((target, userId) => new S3HeldBackStore(target.s3, target.bucket).prefixOf(userId)),
  claim_checks: ownedUnder(BUCKET.prefixes.claimChecks),
  quarantine: ownedUnder(BUCKET.prefixes.quarantine),
  unrecognised: ownedUnder(BUCKET.prefixes.unrecognised),
};

/** Erases one user's data from the target: tombstone, sweep, wait, sweep, receipt. */
export async function eraseUser(target: PipelineTarget, request: EraseRequest): Promise<EraseResult> {
  const { userId } = request;
  const now = request.now ?? (() => new Date());
  const step = request.onStep ?? (() => undefined);
  const register = new DynamoDbErasureRegister(DynamoDBDocumentClient.from(target.dynamodb), target.tables.erasures);
  const latest = await register.latest(userId);
  const resumed = latest?.state === 'erasing';
  const erasure = resumed ? latest : await register.begin({ userId, erasedAt: now().toISOString(), erasedBy: request.erasedBy });
  // Read (resumed) or written (new): by now the tombstone is written, whenever exactly it was.
  const writtenBy = now().getTime();
  const timeouts = Object.values(target.queues).map((queue) => queue.functionTimeoutSeconds);
  step(
    resumed
      ? `Resuming the erasure of ${userId} begun at ${erasure.erasedAt} (by ${erasure.erasedBy})`
      : `Erasure recorded at ${erasure.erasedAt}: from now on nothing of ${userId} created before it is stored again`,
  );
  step(
    `Sweeping now, and again once every worker and backfill invocation that may have missed the erasure has ended ` +
      `(the longest function timeout, ${Math.max(...timeouts)} s, after it was recorded)`,
  );
  const removedNow: Record<ErasedStore, number> = { ...NOTHING_REMOVED };
  const sweep = async (which: string) => {
    const versioned = await keepsVersions(target.s3, target.bucket);
    for (const store of ERASED_STORES) {
      const removed = await SWEEPS[store](target, userId, versioned);
      // Counted as soon as it is gone: a run interrupted later still has it on the receipt.
      await register.count(erasure, store, removed);
      removedNow[store] += removed;
    }
    step(`${which} sweep done: ${ERASED_STORES.reduce((sum, store) => sum + removedNow[store], 0)} removed so far by this run`);
  };
  await sweep('First');
  const waitMs = settledAt(writtenBy, timeouts) - now().getTime();
  if (waitMs > 0) {
    step(`Waiting ${Math.ceil(waitMs / 1000)} s for them, then sweeping again for what they stored`);
    await sleep(waitMs);
  }
  await sweep('Second');
  const receipt = await register.finish(erasure, now());
  return { receipt, resumed, removedNow, ...(!resumed && latest ? { previous: latest } : {}) };
}

/** The erasure was not confirmed: the id typed again is not the user's. */
export class ErasureNotConfirmedError extends Error {}

/**
 * Asks for the user id to be typed again on a terminal (stderr, so stdout stays the receipt's). An
 * erasure cannot be undone, so without a terminal it is refused: `--yes` is the non-interactive
 * confirmation.
 */
export async function confirmErasure(userId: string, targetDescription: string, input: NodeJS.ReadStream = process.stdin): Promise<void> {
  if (!input.isTTY) throw new UsageError(`erase removes every copy of user ${userId}'s data for good: confirm at a terminal, or pass --yes`);
  const terminal = createInterface({ input, output: process.stderr });
  try {
    const typed = await terminal.question(`Erase every copy of user ${userId}'s data from ${targetDescription}? It cannot be undone.\nType the user id again to confirm: `);
    if (typed.trim() !== userId) throw new ErasureNotConfirmedError(`not confirmed (the id typed is not ${userId}): nothing was erased`);
  } finally {
    terminal.close();
  }
}

/** Who runs the erasure, for its receipt: the AWS caller identity's ARN for a stack, the local user otherwise. */
export async function operatorOf(target: PipelineTarget): Promise<string> {
  if (target.origin.kind === 'local') return `local user ${userInfo().username}`;
  const { STSClient, GetCallerIdentityCommand } = await import('@aws-sdk/client-sts');
  const sts = stackClient(STSClient, target.origin.stack);
  try {
    const { Arn } = await sts.send(new GetCallerIdentityCommand({}));
    if (!Arn) throw new Error('STS named no caller');
    return Arn;
  } finally {
    sts.destroy();
  }
}

/** The receipt as `--json` prints it. */
export function receiptJson(result: EraseResult, erasuresTable: string) {
  const { receipt } = result;
  return {
    user_id: receipt.userId,
    erased_at: receipt.erasedAt,
    finished_at: receipt.finishedAt ?? null,
    erased_by: receipt.erasedBy,
    state: receipt.state,
    removed: receipt.removed,
    removed_by_this_run: result.removedNow,
    resumed: result.resumed,
    previously_erased_at: result.previous?.erasedAt ?? null,
    receipt_item: { table: erasuresTable, userId: receipt.userId, erasedAt: receipt.erasedAt },
  };
}
