import { resourceNamed } from './catalogue';
import type { OrderKey } from './message-order';
import type { SampleSource } from './record-store';
import { NamedError } from './named-error';

/**
 * The identity and version of what the pipeline stores, derived from Vital objects alone (no
 * storage concerns): which summary record an object is, which version of it, where it sits in
 * time, and which sample a timeseries entry is.
 *
 * Vital sends ISO 8601 timestamps with `+00:00`, sometimes with `Z`, sometimes with microseconds, and
 * a few providers send floating local times without any offset. To compare and key them, every
 * instant is normalised to one fixed-width UTC form, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, so that plain
 * string comparison (in code and in DynamoDB conditions) orders them. Floating times are read as UTC:
 * the best available guess, and stable, which is what a key needs. The original strings are kept in
 * the stored objects untouched.
 */

/** A normalised instant: `YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC, fixed width, sortable as a string. */
export type InstantKey = string;

/** Raised when a field that must hold a time holds something that is not an ISO 8601 date or time. */
export class UnreadableTimeError extends NamedError {}

const isoPattern =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

/** An ISO 8601 time as read: its whole seconds (UTC, `YYYY-MM-DDTHH:MM:SS`) and every fraction digit. */
interface ReadInstant {
  readonly wholeSeconds: string;
  readonly fraction: string;
}

/** Normalises an ISO 8601 date or date-time to an `InstantKey`; `undefined` when `text` is not one. */
export function instantKey(text: string): InstantKey | undefined {
  const read = readInstant(text);
  return read && `${read.wholeSeconds}.${read.fraction.slice(0, 6).padEnd(6, '0')}Z`;
}

/** The one strict reading of an ISO 8601 date or date-time that every parse of a time goes through. */
function readInstant(text: string): ReadInstant | undefined {
  const match = isoPattern.exec(text.trim());
  if (!match) return undefined;
  const [, year, month, day, hour = '00', minute = '00', second = '00', fraction = '', offset] = match;
  let offsetMinutes = 0;
  if (offset && offset.toUpperCase() !== 'Z') {
    const digits = offset.replace(':', '');
    offsetMinutes = (digits.startsWith('-') ? -1 : 1) * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5)));
  }
  const fields = [Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second)] as const;
  const wholeMs = Date.UTC(...fields);
  // Date.UTC rolls an impossible date over (2024-13-45 would become 2025-02-14, a phantom future
  // version that then blocks every real update): only a date that reads back as written is one.
  const read = new Date(wholeMs);
  const asRead = [read.getUTCFullYear(), read.getUTCMonth(), read.getUTCDate(), read.getUTCHours(), read.getUTCMinutes(), read.getUTCSeconds()];
  if (Number.isNaN(wholeMs) || asRead.some((value, index) => value !== fields[index]) || Math.abs(offsetMinutes) > 14 * 60) return undefined;
  return { wholeSeconds: new Date(wholeMs - offsetMinutes * 60_000).toISOString().slice(0, 19), fraction };
}

/** `instantKey` for a field that must be a time: throws `UnreadableTimeError` naming the field otherwise. */
export function requireInstantKey(text: string, field: string): InstantKey {
  const key = instantKey(text);
  if (key === undefined) throw new UnreadableTimeError(`${field} is not an ISO 8601 date or time`);
  return key;
}

/** Milliseconds since the epoch of an `InstantKey` (sub-millisecond digits dropped). */
export function instantMs(key: InstantKey): number {
  return Date.parse(`${key.slice(0, 23)}Z`);
}

/** The `InstantKey` of an epoch-milliseconds time. */
export function instantKeyOfMs(ms: number): InstantKey {
  return `${new Date(ms).toISOString().slice(0, 23)}000Z`;
}

/** Raised when a `source` object names no provider, neither as `provider` nor as the older `slug`. */
export class MissingProviderError extends NamedError {}

/** `source` as Vital sends it: `provider` and `type` now, only the deprecated `slug` in older shapes. */
export interface VitalSource {
  readonly provider?: string | null;
  readonly slug?: string | null;
  readonly type?: string | null;
}

/**
 * The provider and source type of a `source` object: provider falls back to `slug`, then to
 * `fallbackProvider` (the provider a backfill asked the API for); type to `unknown`, empty or absent
 * alike. Webhook events and backfilled API groups both go through here, so one sample has one key
 * whichever way it arrives.
 */
export function sampleSourceOf(source: Readonly<Record<string, unknown>> | VitalSource, fallbackProvider?: string): SampleSource {
  const provider = providerNamedBy(source) ?? nonEmptyText(fallbackProvider);
  if (!provider) throw new MissingProviderError('source names no provider');
  return { provider, type: nonEmptyText(source.type) ?? 'unknown' };
}

const nonEmptyText = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/** The provider a `source` object names: its `provider`, else the older `slug`; undefined when it names none. */
export function providerNamedBy(source: Readonly<Record<string, unknown>> | VitalSource): string | undefined {
  return nonEmptyText(source.provider) ?? nonEmptyText(source.slug);
}

/**
 * A summary's version, ordered as a string (byte order, which DynamoDB's `version < :version`
 * condition applies too): a dated version is `YYYY-MM-DDTHH:MM:SS.` and every fraction digit Vital
 * sent, trailing zeros dropped (so 10:00:00.1234567 stays newer than 10:00:00.123456); an undated
 * one is `#` and its message's order key, and `#` sorts below every digit, so a dated version
 * always beats an undated one, in any year.
 */
export type Version = string;

/** The version of an object whose `updated_at` (or `created_at`) is `text`. */
function datedVersion(text: string, field: string): Version {
  const read = readInstant(text);
  if (!read) throw new UnreadableTimeError(`${field} is not an ISO 8601 date or time`);
  return `${read.wholeSeconds}.${read.fraction.replace(/0+$/, '')}`;
}

/** The version of an object without `updated_at` or `created_at`: its message's order. */
const undatedVersion = (order: OrderKey): Version => `#${order}`;

/**
 * The version rule: negative, zero or positive as `a` is older than, the same as, or newer than
 * `b`. A stored record is replaced only by a strictly newer version; the store's condition says the
 * same in DynamoDB's terms.
 */
export function compareVersions(a: Version, b: Version): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Who a summary-family record is and which version of it an object is. */
export interface SummaryRecordIdentity {
  /** `data.id`; `workout_id` for workout streams, whose notices have no id. */
  readonly id: string;
  /** The object's version (`Version`): `updated_at`, else `created_at`, else its message's order. */
  readonly version: Version;
  /** Where the record sits in time (`summaryTime`), when the resource has a natural time. */
  readonly time?: InstantKey;
}

/** Raised when a summary-family object lacks the field that identifies it. */
export class MissingRecordIdError extends NamedError {}

/** The identity, version and time of a summary-family object received in a message with order key `order`. */
export function summaryRecordIdentity(
  resource: string,
  object: Readonly<Record<string, unknown>>,
  order: OrderKey,
): SummaryRecordIdentity {
  const idField = resourceNamed(resource)?.kind === 'stream' ? 'workout_id' : 'id';
  const id = object[idField];
  if (typeof id !== 'string' && typeof id !== 'number') throw new MissingRecordIdError(`${resource} object has no ${idField}`);
  let version = undatedVersion(order);
  for (const field of ['updated_at', 'created_at'] as const) {
    const value = object[field];
    if (typeof value === 'string') {
      version = datedVersion(value, field);
      break;
    }
  }
  const time = summaryTime(resource, object);
  return { id: String(id), version, ...(time ? { time } : {}) };
}

/**
 * Where a summary object sits in time: the first of the catalogue's `timeFields` it carries,
 * normalised (a `calendar_date` becomes midnight UTC of that date). `undefined` for resources without
 * a natural time (profile, workout_stream), which then stay out of the time index.
 */
export function summaryTime(resource: string, object: Readonly<Record<string, unknown>>): InstantKey | undefined {
  for (const field of resourceNamed(resource)?.timeFields ?? []) {
    const value = object[field];
    if (typeof value === 'string' && value !== '') return requireInstantKey(value, field);
  }
  return undefined;
}

/** A sample's instant: `timestamp`, or `start` for interval samples that leave `timestamp` out. */
export function sampleInstant(sample: Readonly<Record<string, unknown>>): InstantKey {
  const { timestamp, start } = sample;
  if (typeof timestamp === 'string') return requireInstantKey(timestamp, 'sample timestamp');
  if (typeof start === 'string') return requireInstantKey(start, 'sample start');
  throw new UnreadableTimeError('sample has neither timestamp nor start');
}

/**
 * A sample's key within its (user, resource, provider, source type): its instant and, where present,
 * its `type` (cholesterol sends ldl, hdl, total and triglycerides at one instant). `null` and `""`
 * mean "no type" alike.
 */
export function sampleKey(sample: Readonly<Record<string, unknown>>): string {
  const type = sample.type;
  return typeof type === 'string' && type !== '' ? `${sampleInstant(sample)}|${type}` : sampleInstant(sample);
}
