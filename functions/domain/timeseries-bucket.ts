import { gunzipSync, gzipSync } from 'node:zlib';
import type { OrderKey } from './message-order';
import { instantKeyOfMs, instantMs, sampleInstant, sampleKey, type InstantKey } from './record-identity';
import type { SampleSource } from './record-store';

/**
 * Timeseries samples are stored packed: one item per (user, resource, time bucket, provider, source
 * type) holding every sample of that window. One item per sample cannot meet the cost targets: a
 * write costs at least one unit and a day of 1 Hz heart rate is 86,400 samples, whereas a 15-minute
 * bucket of them compresses to under 2 KB. See `docs/storage.md` for the measurements behind the width.
 *
 * A bucket records, for every sample key, the sample exactly as received and the order key of the
 * message it came from, so that a sample is replaced only by one from a newer message, whatever
 * order the messages arrive in. Order keys repeat across thousands of samples, so the item keeps the
 * distinct ones in a list and each entry refers to its key by index.
 */

/** Default bucket width: measured as the best write cost for dense series (docs/storage.md). */
export const DEFAULT_BUCKET_MINUTES = 5;

/**
 * Narrower buckets for resources whose sample rate would overflow a 400 KB item in the default
 * window: an ECG voltage recording is about 15,000 samples in 30 seconds.
 */
const bucketMinutesByResource: Readonly<Record<string, number>> = { electrocardiogram_voltage: 1 };

/** The width of a resource's buckets, in milliseconds. */
export function bucketWidthMs(resource: string): number {
  return (bucketMinutesByResource[resource] ?? DEFAULT_BUCKET_MINUTES) * 60_000;
}

/** The start of the bucket holding `instant`, as `YYYY-MM-DDTHH:MMZ` (sortable, minute precision). */
export function bucketStartOf(instant: InstantKey, widthMs: number): string {
  const ms = instantMs(instant);
  return `${instantKeyOfMs(ms - (((ms % widthMs) + widthMs) % widthMs)).slice(0, 16)}Z`;
}

/**
 * The sort key of a bucket item: time first, so that one Query over a sort-key range reads a user's
 * resource over a time range across every provider and source type.
 */
export function bucketSortKey(bucketStart: string, source: SampleSource): string {
  return `${bucketStart}#${source.provider}#${source.type}`;
}

/** The parts of a bucket sort key. */
export function parseBucketSortKey(sortKey: string): { bucketStart: string; source: SampleSource } {
  const [bucketStart = '', provider = '', ...type] = sortKey.split('#');
  return { bucketStart, source: { provider, type: type.join('#') } };
}

/** One stored sample: as received, with the order key of the message that brought it. */
export interface BucketEntry {
  readonly order: OrderKey;
  readonly sample: Readonly<Record<string, unknown>>;
}

/** The samples of one bucket, by sample key. */
export type BucketContents = ReadonlyMap<string, BucketEntry>;

type Sample = Readonly<Record<string, unknown>>;

/** Splits a batch into the buckets its samples fall in, keyed by bucket start. */
export function groupSamplesByBucket(resource: string, samples: readonly Sample[]): Map<string, Sample[]> {
  const widthMs = bucketWidthMs(resource);
  const groups = new Map<string, Sample[]>();
  for (const sample of samples) {
    const start = bucketStartOf(sampleInstant(sample), widthMs);
    let group = groups.get(start);
    if (!group) groups.set(start, (group = []));
    group.push(sample);
  }
  return groups;
}

/** What merging a batch into a bucket did. */
export interface BucketMerge {
  readonly contents: BucketContents;
  /** Samples of the batch that replaced or added an entry. */
  readonly written: number;
  /** Samples of the batch kept out because the bucket holds that key from a newer message. */
  readonly stale: number;
  /** Whether the bucket differs from before, i.e. whether it must be written at all. */
  readonly changed: boolean;
}

/**
 * Merges samples from the message with order key `order` into a bucket. A sample replaces the
 * stored one of the same key when its message is newer; an older message's sample is stale; the same
 * message's identical sample (a redelivery) changes nothing, and an equal order with different
 * content (the same message re-read after a fix) replaces, so a replay can repair.
 */
export function mergeSamples(current: BucketContents | undefined, samples: readonly Sample[], order: OrderKey): BucketMerge {
  const entries = new Map(current ?? []);
  let written = 0;
  let stale = 0;
  for (const sample of samples) {
    const key = sampleKey(sample);
    const existing = entries.get(key);
    if (existing && existing.order > order) {
      stale += 1;
    } else if (!existing || existing.order < order || JSON.stringify(existing.sample) !== JSON.stringify(sample)) {
      entries.set(key, { order, sample });
      written += 1;
    }
  }
  return { contents: entries, written, stale, changed: written > 0 };
}

/** The serialised form: distinct order keys, then `[orderIndex, sample]` per entry in key order. */
interface EncodedBucket {
  readonly orders: OrderKey[];
  readonly entries: [number, Sample][];
}

/**
 * Serialises a bucket as gzip-compressed JSON. Sample keys are not stored: they are derived from the
 * samples again on decoding, which saves a fifth of the size. Entries are sorted by key so the same
 * contents always encode to the same bytes.
 */
export function encodeBucket(contents: BucketContents): Uint8Array {
  const orders: OrderKey[] = [];
  const orderIndex = new Map<OrderKey, number>();
  const entries: [number, Sample][] = [];
  for (const key of [...contents.keys()].sort()) {
    const entry = contents.get(key)!;
    let index = orderIndex.get(entry.order);
    if (index === undefined) {
      index = orders.push(entry.order) - 1;
      orderIndex.set(entry.order, index);
    }
    entries.push([index, entry.sample]);
  }
  return gzipSync(JSON.stringify({ orders, entries } satisfies EncodedBucket), { level: 9 });
}

/** Reads an encoded bucket back. */
export function decodeBucket(bytes: Uint8Array): BucketContents {
  const { orders, entries } = JSON.parse(gunzipSync(bytes).toString('utf8')) as EncodedBucket;
  return new Map(entries.map(([index, sample]) => [sampleKey(sample), { order: orders[index]!, sample }]));
}
