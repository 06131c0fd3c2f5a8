import { isDeepStrictEqual } from 'node:util';
import { orderKeyOfDelivery, type OrderKey } from './message-order';
import { instantKeyOfMs, instantMs, sampleInstant, sampleKey, type InstantKey } from './record-identity';
import type { DeliveryOrigin, SampleSource } from './record-store';

/**
 * Timeseries samples are stored packed, in plain attributes a person can read: one item per (user,
 * resource, time bucket, provider, source type) holding every sample of that window in a map keyed
 * by the sample's UTC time of day (`"08:00:05"`, `"08:00:05|cholesterol/ldl"` for typed samples),
 * whose value is the sample's `value` as a plain number or string. One item per sample cannot meet
 * the cost targets (a write costs at least one unit, a day of 1 Hz heart rate is 86,400 samples);
 * one item per bucket costs one unit per KB of samples. Layout and measurements: docs/storage.md.
 *
 * What makes it compact without compression: fields every sample of the bucket shares (`unit`,
 * `timezone_offset`, `type`) are kept once, in `shared`; `timestamp` and `start` are left out where
 * they are the usual text of the key's instant (`timed`); whatever else a sample carries (an
 * interval's `end`, blood pressure's `systolic`/`diastolic`, `tags`, a different `unit`) stays on
 * the sample, which is then a map of those fields. Decoding puts every field back as received.
 *
 * Newer message wins per sample: the item names the messages whose samples it holds (`messages`,
 * oldest first, each with its svix-id, when it was received and the ranges of sample keys it
 * wrote), so no id is repeated per sample, and "which message wrote this sample, and when" is
 * answered from the item itself.
 */

/** Default bucket width: a 5-minute sync of 1 Hz data fills one item of about 4 KB (docs/storage.md). */
export const DEFAULT_BUCKET_SECONDS = 300;

/**
 * Narrower buckets for resources whose sample rate would overflow a 400 KB item in the default
 * window: an ECG voltage recording is 512 samples a second (about 20 bytes each when stored).
 */
const bucketSecondsByResource: Readonly<Record<string, number>> = { electrocardiogram_voltage: 10 };

/** The width of a resource's buckets, in milliseconds. */
export function bucketWidthMs(resource: string): number {
  return (bucketSecondsByResource[resource] ?? DEFAULT_BUCKET_SECONDS) * 1000;
}

/** The start of the bucket holding `instant`, as `YYYY-MM-DDTHH:MM:SSZ` (sortable). */
export function bucketStartOf(instant: InstantKey, widthMs: number): string {
  const ms = instantMs(instant);
  return `${instantKeyOfMs(ms - (((ms % widthMs) + widthMs) % widthMs)).slice(0, 19)}Z`;
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

type Sample = Readonly<Record<string, unknown>>;

/**
 * A sample's key within its bucket: its identity (`sampleKey`: instant and, where present, type)
 * with the instant shortened to its UTC time of day, fraction without trailing zeros
 * (`08:00:05`, `08:00:05.5|cholesterol/ldl`). Buckets never cross midnight UTC, so the time of day
 * is unique within one.
 */
export function bucketSampleKey(sample: Sample): string {
  const key = sampleKey(sample);
  const fraction = key.slice(20, 26).replace(/0+$/, '');
  return `${key.slice(11, 19)}${fraction ? `.${fraction}` : ''}${key.slice(27)}`;
}

/** The text Vital usually sends for the instant of a key in a bucket of `day`: `YYYY-MM-DDTHH:MM:SS[.f]+00:00`. */
const usualTimeText = (day: string, key: string): string => `${day}T${key.split('|')[0]}+00:00`;

/** One stored sample: as received, with the order key of the message that brought it. */
export interface BucketEntry {
  readonly order: OrderKey;
  readonly sample: Sample;
}

/** What a bucket holds: its samples by key, and the deliveries that brought them by order key. */
export interface BucketContents {
  readonly entries: ReadonlyMap<string, BucketEntry>;
  readonly origins: ReadonlyMap<OrderKey, DeliveryOrigin>;
}

const EMPTY: BucketContents = { entries: new Map(), origins: new Map() };

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
  /** Of `written`, the samples that added an entry. */
  readonly created: number;
  /** Samples of the batch kept out because the bucket holds that key from a newer message. */
  readonly stale: number;
  /** Samples of the batch the bucket holds already, from this very message. */
  readonly unchanged: number;
}

/**
 * Merges samples from the message with order key `order` into a bucket. A sample replaces the
 * stored one of the same key when its message is newer; an older message's sample is stale; the same
 * message's identical sample (a redelivery) is unchanged, and an equal order with different content
 * (the same message re-read after a fix) replaces, so a replay can repair. A bucket to which a merge
 * wrote nothing need not be written at all.
 */
export function mergeSamples(
  current: BucketContents | undefined,
  samples: readonly Sample[],
  order: OrderKey,
  origin?: DeliveryOrigin,
): BucketMerge {
  const entries = new Map((current ?? EMPTY).entries);
  let written = 0;
  let created = 0;
  let stale = 0;
  let unchanged = 0;
  for (const sample of samples) {
    const key = bucketSampleKey(sample);
    const existing = entries.get(key);
    if (existing && existing.order > order) stale += 1;
    else if (existing && existing.order === order && isDeepStrictEqual(existing.sample, sample)) unchanged += 1;
    else {
      entries.set(key, { order, sample });
      written += 1;
      if (!existing) created += 1;
    }
  }
  const origins = new Map((current ?? EMPTY).origins);
  if (origin && written > 0) origins.set(order, origin);
  return { contents: { entries, origins }, written, created, stale, unchanged };
}

/** Fields stored once per bucket when every sample carries the same value. */
const SHAREABLE_FIELDS = ['unit', 'timezone_offset', 'type'] as const;
/** Fields left out when every sample carries them as the usual text of its instant. */
const TIMED_FIELDS = ['timestamp', 'start'] as const;

/**
 * A message whose samples a bucket holds, as stored (`messages`): a webhook delivery by its svix-id
 * and the time it was received (its order key follows from them), data fetched from the API by its
 * order key.
 */
export interface StoredMessage {
  readonly svix_id?: string;
  readonly received_at?: string;
  /** Present only where it does not follow from `svix_id` and `received_at` (API fetches). */
  readonly order?: OrderKey;
  /** Inclusive ranges `[first, last]` of the sample keys (sorted as strings) this message wrote. */
  readonly sample_ranges: [string, string][];
}

/** The order key of a delivery, as `processDelivery` gives it: one rule, in message-order.ts. */
const orderOfOrigin = (origin: DeliveryOrigin): OrderKey => orderKeyOfDelivery(origin.svixId, Date.parse(origin.receivedAt));

/** The stored attributes of a bucket item besides its key (docs/storage.md). */
export interface StoredBucket {
  readonly count: number;
  readonly shared: Record<string, unknown>;
  readonly timed: string[];
  /** By sample key: the sample's `value`, or a map of the fields it keeps itself. */
  readonly samples: Record<string, unknown>;
  readonly messages: StoredMessage[];
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The stored form of a bucket starting on `day` (`YYYY-MM-DD`). Deterministic: the same contents
 * always give the same attributes.
 */
export function encodeBucket(contents: BucketContents, day: string): StoredBucket {
  const keys = [...contents.entries.keys()].sort();
  const all = keys.map((key) => contents.entries.get(key)!.sample);
  const shared: Record<string, unknown> = {};
  for (const field of SHAREABLE_FIELDS) {
    if (all.length > 0 && all.every((sample) => field in sample && isDeepStrictEqual(sample[field], all[0]![field]))) shared[field] = all[0]![field];
  }
  const timed = TIMED_FIELDS.filter((field) => keys.length > 0 && keys.every((key, index) => all[index]![field] === usualTimeText(day, key)));
  const samples: Record<string, unknown> = {};
  const messages = new Map<OrderKey, [string, string][]>();
  let previousOrder: OrderKey | undefined;
  keys.forEach((key) => {
    const { order, sample } = contents.entries.get(key)!;
    const own = Object.fromEntries(Object.entries(sample).filter(([field]) => !(field in shared) && !(timed as string[]).includes(field)));
    const ownFields = Object.keys(own);
    samples[key] = ownFields.length === 1 && ownFields[0] === 'value' && !isPlainObject(own.value) ? own.value : own;
    let ranges = messages.get(order);
    if (!ranges) messages.set(order, (ranges = []));
    // A run of consecutive keys written by one message is one range.
    if (previousOrder === order) ranges.at(-1)![1] = key;
    else ranges.push([key, key]);
    previousOrder = order;
  });
  return {
    count: keys.length,
    shared,
    timed,
    samples,
    messages: [...messages.keys()].sort().map((order) => {
      const origin = contents.origins.get(order);
      return {
        ...(origin ? { svix_id: origin.svixId, received_at: origin.receivedAt } : {}),
        ...(origin && orderOfOrigin(origin) === order ? {} : { order }),
        sample_ranges: messages.get(order)!,
      };
    }),
  };
}

/** Reads a stored bucket starting on `day` back: every sample exactly as received, with its message. */
export function decodeBucket(stored: StoredBucket, day: string): BucketContents {
  const origins = new Map<OrderKey, DeliveryOrigin>();
  const ranges = stored.messages.flatMap((message) => {
    const origin = message.svix_id ? { svixId: message.svix_id, receivedAt: message.received_at ?? '' } : undefined;
    const order = message.order ?? orderOfOrigin(origin!);
    if (origin) origins.set(order, origin);
    return message.sample_ranges.map(([first, last]) => ({ first, last, order }));
  });
  const entries = new Map<string, BucketEntry>();
  for (const [key, value] of Object.entries(stored.samples)) {
    const owner = ranges.find((range) => range.first <= key && key <= range.last);
    if (!owner) throw new Error(`sample ${key} of a stored bucket belongs to no message`);
    const sample: Record<string, unknown> = { ...stored.shared };
    for (const field of stored.timed) sample[field] = usualTimeText(day, key);
    Object.assign(sample, isPlainObject(value) ? value : { value });
    entries.set(key, { order: owner.order, sample });
  }
  return { entries, origins };
}
