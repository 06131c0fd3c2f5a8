import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { OrderKey } from '../domain/message-order';
import { requireInstantKey, sampleInstant, summaryRecordIdentity, type InstantKey } from '../domain/record-identity';
import type { RecordStore, SampleSource, StoreSummaryInput, StoreTimeseriesInput, WriteOutcome } from '../domain/record-store';
import {
  bucketSortKey,
  bucketStartOf,
  bucketWidthMs,
  decodeBucket,
  encodeBucket,
  groupSamplesByBucket,
  mergeSamples,
  parseBucketSortKey,
} from '../domain/timeseries-bucket';

/**
 * The record store on DynamoDB (layout and measurements in docs/storage.md).
 *
 * Summaries: one item per record, pk `${userId}#${resource}`, sk = record id, the object as JSON text
 * (`body`: strings and numbers as Vital sent them, no DynamoDB marshalling), `version` and the
 * normalised `time` by which range queries filter and sort. A write is one conditional put:
 * `attribute_not_exists(pk) OR version < :version`, so an older or equal version never replaces a
 * newer one, whatever order they arrive in, and no read precedes it.
 *
 * Timeseries: one item per (user, resource, bucket, provider, source type), pk
 * `${userId}#${resource}`, sk `${bucketStart}#${provider}#${sourceType}`, the samples as a gzip
 * `Binary` (see timeseries-bucket.ts). A merge reads the bucket, merges in memory and writes it back
 * on the condition that its `revision` is unchanged; on a conflict it reads again, a bounded number
 * of times, then throws so that the queue retries the whole message later.
 */

/** DynamoDB's item size limit, less headroom for keys and attribute names. */
const MAX_ENCODED_BUCKET_BYTES = 390 * 1024;
/** Buckets merged at once for one batch (a backfill page can span a hundred buckets). */
const BUCKET_MERGE_CONCURRENCY = 8;

/** Raised when a bucket stayed contended through every merge attempt; the message is retried. */
export class BucketContentionError extends Error {}

/** Raised when a bucket's samples no longer fit one DynamoDB item: its resource needs narrower buckets. */
export class BucketTooLargeError extends Error {}

/** Raised when a summary object is too large for one DynamoDB item. */
export class SummaryTooLargeError extends Error {}

export interface DynamoDbRecordStoreOptions {
  readonly summariesTable: string;
  readonly timeseriesTable: string;
  /** Read-merge-write attempts on one bucket before giving up (default 6). */
  readonly maxMergeAttempts?: number;
}

/** A stored summary record. */
export interface StoredSummary {
  readonly object: Record<string, unknown>;
  readonly version: string;
  readonly order: OrderKey;
  readonly time?: InstantKey;
}

/** A stored sample with the source it came from. */
export interface StoredSample {
  readonly source: SampleSource;
  readonly order: OrderKey;
  readonly sample: Record<string, unknown>;
}

/** An inclusive time range of ISO 8601 instants. */
export interface TimeRange {
  readonly from: string;
  readonly to: string;
}

const partitionKey = (userId: string, resource: string): string => `${userId}#${resource}`;

function isConditionFailure(error: unknown): error is ConditionalCheckFailedException {
  return error instanceof ConditionalCheckFailedException || (error as Error | undefined)?.name === 'ConditionalCheckFailedException';
}

async function inBatches<T, R>(items: readonly T[], size: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let index = 0; index < items.length; index += size) {
    results.push(...(await Promise.all(items.slice(index, index + size).map(work))));
  }
  return results;
}

export class DynamoDbRecordStore implements RecordStore {
  private readonly maxMergeAttempts: number;

  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly options: DynamoDbRecordStoreOptions,
  ) {
    this.maxMergeAttempts = options.maxMergeAttempts ?? 6;
  }

  async storeSummary(input: StoreSummaryInput): Promise<WriteOutcome> {
    const identity = summaryRecordIdentity(input.resource, input.object, input.order);
    const body = JSON.stringify(input.object);
    if (Buffer.byteLength(body) > MAX_ENCODED_BUCKET_BYTES) {
      throw new SummaryTooLargeError(`${input.resource} record ${identity.id} exceeds the DynamoDB item size`);
    }
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.options.summariesTable,
          Item: {
            pk: partitionKey(input.userId, input.resource),
            sk: identity.id,
            version: identity.version,
            order: input.order,
            body,
            ...(identity.time ? { time: identity.time } : {}),
          },
          ConditionExpression: 'attribute_not_exists(pk) OR version < :version',
          ExpressionAttributeValues: { ':version': identity.version },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { written: 1, stale: 0 };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // Equal version: this very version is stored already (a redelivery); not stale, not written.
      return error.Item?.version?.S === identity.version ? { written: 0, stale: 0 } : { written: 0, stale: 1 };
    }
  }

  async storeTimeseries(input: StoreTimeseriesInput): Promise<WriteOutcome> {
    const pk = partitionKey(input.userId, input.resource);
    const groups = [...groupSamplesByBucket(input.resource, input.samples)];
    const outcomes = await inBatches(groups, BUCKET_MERGE_CONCURRENCY, ([bucketStart, samples]) =>
      this.mergeBucket(pk, bucketSortKey(bucketStart, input.source), samples, input.order),
    );
    return outcomes.reduce((total, outcome) => ({ written: total.written + outcome.written, stale: total.stale + outcome.stale }), {
      written: 0,
      stale: 0,
    });
  }

  private async mergeBucket(
    pk: string,
    sk: string,
    samples: readonly Readonly<Record<string, unknown>>[],
    order: OrderKey,
  ): Promise<WriteOutcome> {
    for (let attempt = 1; attempt <= this.maxMergeAttempts; attempt += 1) {
      const { Item: current } = await this.documents.send(
        new GetCommand({ TableName: this.options.timeseriesTable, Key: { pk, sk }, ConsistentRead: true }),
      );
      const merge = mergeSamples(current ? decodeBucket(current.samples as Uint8Array) : undefined, samples, order);
      if (!merge.changed) return { written: 0, stale: merge.stale };
      const encoded = encodeBucket(merge.contents);
      if (encoded.byteLength > MAX_ENCODED_BUCKET_BYTES) {
        throw new BucketTooLargeError(`bucket ${sk} would be ${encoded.byteLength} bytes compressed`);
      }
      const revision = (current?.revision as number | undefined) ?? 0;
      try {
        await this.documents.send(
          new PutCommand({
            TableName: this.options.timeseriesTable,
            Item: { pk, sk, revision: revision + 1, count: merge.contents.size, samples: encoded },
            ConditionExpression: current ? 'revision = :revision' : 'attribute_not_exists(pk)',
            ...(current ? { ExpressionAttributeValues: { ':revision': revision } } : {}),
          }),
        );
        return { written: merge.written, stale: merge.stale };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        // Another writer changed the bucket since the read: back off a little, read again.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
      }
    }
    throw new BucketContentionError(`bucket ${sk} stayed contended for ${this.maxMergeAttempts} attempts`);
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
            ':to': `${to.slice(0, 16)}Z~`,
          },
          ExclusiveStartKey: startKey,
        }),
      );
      requests += 1;
      for (const item of page.Items ?? []) {
        const { source } = parseBucketSortKey(item.sk as string);
        for (const { order, sample } of decodeBucket(item.samples as Uint8Array).values()) {
          const instant = sampleInstant(sample);
          if (instant >= from && instant <= to) samples.push({ source, order, sample: sample as Record<string, unknown>, instant });
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
    object: JSON.parse(item.body as string) as Record<string, unknown>,
    version: item.version as string,
    order: item.order as OrderKey,
    ...(item.time ? { time: item.time as InstantKey } : {}),
  };
}
