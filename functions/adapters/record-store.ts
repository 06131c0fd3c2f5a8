import { isConditionFailure } from './condition-failure';
import { GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { OrderKey } from '../domain/message-order';
import { compareVersions, requireInstantKey, sampleInstant, summaryRecordIdentity, type InstantKey } from '../domain/record-identity';
import {
  STORAGE_LAYOUT_VERSION,
  type DeliveryOrigin,
  type RecordStore,
  type SampleSource,
  type StoreSummaryInput,
  type StoreTimeseriesInput,
  type WriteOutcome,
} from '../domain/record-store';
import {
  bucketSortKey,
  bucketStartOf,
  bucketWidthMs,
  decodeBucket,
  encodeBucket,
  groupSamplesByBucket,
  mergeSamples,
  parseBucketSortKey,
  type StoredBucket,
} from '../domain/timeseries-bucket';
import { NamedError } from '../domain/named-error';

/**
 * The record store on DynamoDB, in plain attributes anyone can read with the console, PartiQL or
 * boto3 (layout, examples and measurements in docs/storage.md). Every item carries `layout`.
 *
 * Summaries: one item per record, pk `${userId}#${resource}`, sk = record id, the object as a
 * native map (`data`), `version` and the normalised `time` by which range queries filter and sort,
 * and the delivery that wrote it (`svix_id`, `received_at`). A write is one conditional put:
 * `attribute_not_exists(pk) OR version < :version`, so an older or equal version never replaces a
 * newer one, whatever order they arrive in, and no read precedes it.
 *
 * Timeseries: one item per (user, resource, bucket, provider, source type), pk
 * `${userId}#${resource}`, sk `${bucketStart}#${provider}#${sourceType}`, the samples as a native
 * map (see timeseries-bucket.ts). A merge reads the bucket, merges in memory and writes it back on
 * the condition that its `revision` is unchanged. Merges of one bucket within this process go into
 * one write together (`mergeWithOthers`); a conflict with another process means that process's
 * write succeeded, so retrying always makes progress: it retries (backing off) for as long as
 * `contentionBudgetMs` allows, far beyond any burst one bucket meets, and a valid message never
 * runs out of receives on contention.
 */

/** DynamoDB's item size limit, less headroom (sizes are checked on the JSON text, which is larger). */
const MAX_ITEM_BYTES = 390 * 1024;
/** Buckets merged at once for one batch (a backfill page can span a hundred buckets). */
const BUCKET_MERGE_CONCURRENCY = 8;
/** The longest pause between two merge attempts on a contended bucket. */
const MAX_BACKOFF_MS = 100;

/** A batch's samples for one bucket, waiting to be merged, and how to report its outcome. */
interface PendingMerge {
  readonly samples: readonly Readonly<Record<string, unknown>>[];
  readonly order: OrderKey;
  readonly origin?: DeliveryOrigin;
  settle(outcome: WriteOutcome | Error): void;
}

/** Raised when a bucket stayed contended for the whole `contentionBudgetMs`; the message is retried. */
export class BucketContentionError extends NamedError {}

/** Raised when a bucket's samples no longer fit one DynamoDB item: its resource needs narrower buckets. */
export class BucketTooLargeError extends NamedError {}

/** Raised when a summary object is too large for one DynamoDB item. */
export class SummaryTooLargeError extends NamedError {}

export interface DynamoDbRecordStoreOptions {
  readonly summariesTable: string;
  readonly timeseriesTable: string;
  /**
   * Milliseconds a bucket merge keeps retrying on conflicts before it gives up and lets the queue
   * retry the message (default 20 s: inside the worker's 30 s timeout).
   */
  readonly contentionBudgetMs?: number;
}

/** A stored summary record. */
export interface StoredSummary {
  readonly object: Record<string, unknown>;
  readonly version: string;
  readonly order: OrderKey;
  readonly time?: InstantKey;
  /** The delivery that wrote this version; absent when the backfill fetched it. */
  readonly svixId?: string;
  readonly receivedAt?: string;
}

/** A stored sample with the source and the message it came from. */
export interface StoredSample {
  readonly source: SampleSource;
  readonly order: OrderKey;
  /** The delivery that wrote it; absent when the backfill fetched it. */
  readonly origin?: DeliveryOrigin;
  readonly sample: Record<string, unknown>;
}

/** An inclusive time range of ISO 8601 instants. */
export interface TimeRange {
  readonly from: string;
  readonly to: string;
}

/** The partition key of a user's records of one resource, in both tables: what a read, and an erasure, queries. */
export const partitionKey = (userId: string, resource: string): string => `${userId}#${resource}`;

async function inBatches<T, R>(items: readonly T[], size: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let index = 0; index < items.length; index += size) {
    results.push(...(await Promise.all(items.slice(index, index + size).map(work))));
  }
  return results;
}

export class DynamoDbRecordStore implements RecordStore {
  private readonly contentionBudgetMs: number;
  /** Merges waiting for the next write of their bucket, by table key. */
  private readonly waitingMerges = new Map<string, PendingMerge[]>();
  /** Buckets this process is writing now. */
  private readonly bucketsInFlight = new Set<string>();

  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly options: DynamoDbRecordStoreOptions,
  ) {
    this.contentionBudgetMs = options.contentionBudgetMs ?? 20_000;
  }

  async storeSummary(input: StoreSummaryInput): Promise<WriteOutcome> {
    const identity = summaryRecordIdentity(input.resource, input.object, input.order);
    const item = {
      pk: partitionKey(input.userId, input.resource),
      sk: identity.id,
      layout: STORAGE_LAYOUT_VERSION,
      version: identity.version,
      order: input.order,
      ...(identity.time ? { time: identity.time } : {}),
      ...(input.origin ? { svix_id: input.origin.svixId, received_at: input.origin.receivedAt } : {}),
      data: input.object,
    };
    if (Buffer.byteLength(JSON.stringify(item)) > MAX_ITEM_BYTES) {
      throw new SummaryTooLargeError(`${input.resource} record ${identity.id} exceeds the DynamoDB item size`);
    }
    try {
      const { Attributes: replaced } = await this.documents.send(
        new PutCommand({
          TableName: this.options.summariesTable,
          Item: item,
          ConditionExpression: 'attribute_not_exists(pk) OR version < :version',
          ExpressionAttributeValues: { ':version': identity.version },
          // The replaced item tells created from updated, at no extra cost.
          ReturnValues: 'ALL_OLD',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { written: 1, created: replaced ? 0 : 1, stale: 0, unchanged: 0 };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // Equal version: this very version is stored already (a redelivery); not stale, not written.
      const stored = error.Item?.version?.S;
      const unchanged = stored !== undefined && compareVersions(stored, identity.version) === 0;
      return { written: 0, created: 0, stale: unchanged ? 0 : 1, unchanged: unchanged ? 1 : 0 };
    }
  }

  async storeTimeseries(input: StoreTimeseriesInput): Promise<WriteOutcome> {
    const pk = partitionKey(input.userId, input.resource);
    const groups = [...groupSamplesByBucket(input.resource, input.samples)];
    const outcomes = await inBatches(groups, BUCKET_MERGE_CONCURRENCY, ([bucketStart, samples]) =>
      this.mergeWithOthers(pk, bucketStart, input.source, { samples, order: input.order, origin: input.origin }),
    );
    return outcomes.reduce(
      (total, outcome) => ({
        written: total.written + outcome.written,
        created: total.created + outcome.created,
        stale: total.stale + outcome.stale,
        unchanged: total.unchanged + outcome.unchanged,
      }),
      { written: 0, created: 0, stale: 0, unchanged: 0 },
    );
  }

  /**
   * Merges `merge` into its bucket together with every other merge of that bucket that this process
   * asks for meanwhile: while one write of a bucket is in flight, the merges that arrive wait and
   * then go into the next write as one group. A burst of events for one bucket (a batch of a user's
   * syncs, a backfill page) then costs a write per group, not per event, and meets less contention.
   */
  private mergeWithOthers(pk: string, bucketStart: string, source: SampleSource, merge: Omit<PendingMerge, 'settle'>): Promise<WriteOutcome> {
    const sk = bucketSortKey(bucketStart, source);
    const key = `${pk}\n${sk}`;
    return new Promise<WriteOutcome>((resolve, reject) => {
      const waiting = this.waitingMerges.get(key) ?? [];
      waiting.push({ ...merge, settle: (outcome) => (outcome instanceof Error ? reject(outcome) : resolve(outcome)) });
      this.waitingMerges.set(key, waiting);
      if (waiting.length === 1 && !this.bucketsInFlight.has(key)) void this.writeGroups(key, pk, sk, bucketStart.slice(0, 10));
    });
  }

  /** Writes the waiting merges of one bucket, a group at a time, until none waits. */
  private async writeGroups(key: string, pk: string, sk: string, day: string): Promise<void> {
    this.bucketsInFlight.add(key);
    try {
      for (let group = this.waitingMerges.get(key); group?.length; group = this.waitingMerges.get(key)) {
        this.waitingMerges.delete(key);
        try {
          const outcomes = await this.mergeBucket(pk, sk, day, group);
          group.forEach((merge, index) => merge.settle(outcomes[index]!));
        } catch (error) {
          for (const merge of group) merge.settle(error as Error);
        }
      }
    } finally {
      this.bucketsInFlight.delete(key);
    }
  }

  /** Reads a bucket, applies `group` in memory and writes it back if anything changed; the outcome of each merge. */
  private async mergeBucket(pk: string, sk: string, day: string, group: readonly PendingMerge[]): Promise<WriteOutcome[]> {
    const giveUpAt = Date.now() + this.contentionBudgetMs;
    for (let attempt = 1; ; attempt += 1) {
      const { Item: current } = await this.documents.send(
        new GetCommand({ TableName: this.options.timeseriesTable, Key: { pk, sk }, ConsistentRead: true }),
      );
      let contents = current ? decodeBucket(current as unknown as StoredBucket, day) : undefined;
      const outcomes = group.map(({ samples, order, origin }) => {
        const merged = mergeSamples(contents, samples, order, origin);
        contents = merged.contents;
        return { written: merged.written, created: merged.created, stale: merged.stale, unchanged: merged.unchanged };
      });
      if (outcomes.every((outcome) => outcome.written === 0)) return outcomes;
      const revision = (current?.revision as number | undefined) ?? 0;
      const item = { pk, sk, layout: STORAGE_LAYOUT_VERSION, revision: revision + 1, ...encodeBucket(contents!, day) };
      const bytes = Buffer.byteLength(JSON.stringify(item));
      if (bytes > MAX_ITEM_BYTES) throw new BucketTooLargeError(`bucket ${sk} would be ${bytes} bytes`);
      try {
        await this.documents.send(
          new PutCommand({
            TableName: this.options.timeseriesTable,
            Item: item,
            ConditionExpression: current ? 'revision = :revision' : 'attribute_not_exists(pk)',
            ...(current ? { ExpressionAttributeValues: { ':revision': revision } } : {}),
          }),
        );
        return outcomes;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        // Another process's merge of this bucket succeeded since the read: back off, read again.
        if (Date.now() >= giveUpAt) {
          throw new BucketContentionError(`bucket ${sk} stayed contended for ${attempt} attempts over ${this.contentionBudgetMs} ms`);
        }
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(MAX_BACKOFF_MS, 10 * 2 ** attempt)));
      }
    }
  }

  /** One summary record by id, or `undefined`. */
  async getSummary(userId: string, resource: string, id: string): Promise<StoredSummary | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.options.summariesTable, Key: { pk: partitionKey(userId, resource), sk: id } }),
    );
    return Item ? storedSummary(Item) : undefined;
  }

  /**
   * A user's summary records of one resource whose time lies in `range`, in time order. Summaries
   * come about once a day per resource, so a year of them is one or two Query pages; filtering them
   * costs a few read units, where an index sorted by time would double every write.
   */
  async querySummaries(userId: string, resource: string, range: TimeRange): Promise<StoredSummary[]> {
    const records: StoredSummary[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.options.summariesTable,
          KeyConditionExpression: 'pk = :pk',
          FilterExpression: '#time BETWEEN :from AND :to',
          ExpressionAttributeNames: { '#time': 'time' },
          ExpressionAttributeValues: {
            ':pk': partitionKey(userId, resource),
            ':from': instantBound(range.from),
            ':to': instantBound(range.to),
          },
          ExclusiveStartKey: startKey,
        }),
      );
      records.push(...(page.Items ?? []).map(storedSummary));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return records.sort((a, b) => (a.time ?? '').localeCompare(b.time ?? ''));
  }

  /**
   * A user's samples of one resource in `range`, across providers and source types, in time order,
   * with the number of Query requests it took (the read-cost figure of docs/storage.md).
   */
  async readTimeseries(userId: string, resource: string, range: TimeRange): Promise<{ samples: StoredSample[]; requests: number }> {
    const from = instantBound(range.from);
    const to = instantBound(range.to);
    const samples: (StoredSample & { instant: InstantKey })[] = [];
    let requests = 0;
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.options.timeseriesTable,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: {
            ':pk': partitionKey(userId, resource),
            ':from': bucketStartOf(from, bucketWidthMs(resource)),
            // `~` sorts after `#`, so every provider's bucket that starts at `to` is included.
            ':to': `${bucketStartOf(to, 1000)}~`,
          },
          ExclusiveStartKey: startKey,
        }),
      );
      requests += 1;
      for (const item of page.Items ?? []) {
        const { bucketStart, source } = parseBucketSortKey(item.sk as string);
        const contents = decodeBucket(item as unknown as StoredBucket, bucketStart.slice(0, 10));
        for (const { order, sample } of contents.entries.values()) {
          const instant = sampleInstant(sample);
          const origin = contents.origins.get(order);
          if (instant >= from && instant <= to) {
            samples.push({ source, order, ...(origin ? { origin } : {}), sample: sample as Record<string, unknown>, instant });
          }
        }
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    samples.sort((a, b) => (a.instant < b.instant ? -1 : a.instant > b.instant ? 1 : 0));
    return { samples: samples.map(({ instant: _instant, ...stored }) => stored), requests };
  }
}

const instantBound = (iso: string): InstantKey => requireInstantKey(iso, 'range bound');

function storedSummary(item: Record<string, unknown>): StoredSummary {
  return {
    object: item.data as Record<string, unknown>,
    version: item.version as string,
    order: item.order as OrderKey,
    ...(item.time ? { time: item.time as InstantKey } : {}),
    ...(item.svix_id ? { svixId: item.svix_id as string, receivedAt: item.received_at as string } : {}),
  };
}
