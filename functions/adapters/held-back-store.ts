import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { HeldBackLocation, HeldBackRecord, HeldBackStore } from '../domain/held-back';
import { BUCKET } from '../shared/resources';
import { listKeptObjects } from './kept-objects';

/** A held-back record as listed: where it sat, why, and when it was kept; never the record. */
export interface HeldBackEntry {
  readonly key: string;
  /** Read from the key; undefined for an object under the prefix that `put` did not write. */
  readonly location: HeldBackLocation | undefined;
  /** The object metadata `reason` (field names, never values); empty when absent. */
  readonly reason: string;
  /** When the object was last written: a page fetched again writes it again. */
  readonly keptAt: string;
}

/** The part of a key after the prefix: `{user}/{provider}/{resource}/{run}/w{window}-p{page}-{index}.json`. */
const LOCATION_KEY = /^([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)\/w(\d+)-p(\d+)-([^/]+)\.json$/;

/**
 * Held-back backfill records in the raw-body bucket, one object per record under
 * `held-back/{user}/{provider}/{resource}/{run}/w{window}-p{page}-{index}.json`: the record as the API
 * sent it, the reason in the object metadata. The key is the location, so fetching the same page again
 * writes the same object. Kept as long as quarantined bodies (`rawBodyRetentionDays`). The backfill
 * only puts; the CLI lists (`vital-pipeline inspect held-back`), from the keys and metadata alone.
 */
export class S3HeldBackStore implements HeldBackStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly prefix: string = BUCKET.prefixes.heldBack,
  ) {}

  /** Where every held-back record of a user is kept: the prefix `list` and an erasure read. */
  prefixOf(userId: string): string {
    return `${this.prefix}${encodeURIComponent(userId)}/`;
  }

  keyOf({ location }: Pick<HeldBackRecord, 'location'>): string {
    const part = encodeURIComponent;
    return (
      `${this.prefixOf(location.userId)}${part(location.provider)}/${part(location.resource)}/${part(location.runId)}/` +
      `w${location.windowIndex}-p${location.page}-${part(location.index)}.json`
    );
  }

  async put(heldBack: HeldBackRecord): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.keyOf(heldBack),
        Body: JSON.stringify(heldBack.record),
        ContentType: 'application/json',
        Metadata: { reason: heldBack.reason },
      }),
    );
  }

  /** The location a key names (the inverse of `keyOf`); undefined for a key not in that layout. */
  locationOf(key: string): HeldBackLocation | undefined {
    const match = key.startsWith(this.prefix) ? LOCATION_KEY.exec(key.slice(this.prefix.length)) : null;
    if (!match) return undefined;
    let parts: string[];
    try {
      parts = match.slice(1).map((part) => decodeURIComponent(part));
    } catch {
      return undefined; // not percent-encoded as `keyOf` encodes
    }
    const [userId, provider, resource, runId, windowIndex, page, index] = parts as [string, string, string, string, string, string, string];
    return { userId, provider, resource, runId, windowIndex: Number(windowIndex), page: Number(page), index };
  }

  /**
   * Every held-back record (of `userId` alone, when given) by location, reason and time kept: by
   * user, provider, resource, run (oldest first: run ids are svix-ids, time-ordered), window, page
   * and index; objects not in the key layout last. Reads keys and metadata only, never a record.
   */
  async list(userId?: string): Promise<HeldBackEntry[]> {
    const prefix = userId === undefined ? this.prefix : this.prefixOf(userId);
    const entries = (await listKeptObjects(this.s3, this.bucket, prefix)).map(({ key, metadata, lastModified }) => ({
      key,
      location: this.locationOf(key),
      reason: metadata.reason ?? '',
      keptAt: lastModified,
    }));
    return entries.sort(byLocation);
  }
}

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Listing order: by location (window, page and the numbers of an index as numbers), then by key. */
function byLocation(a: HeldBackEntry, b: HeldBackEntry): number {
  if (!a.location || !b.location) return a.location ? -1 : b.location ? 1 : compareText(a.key, b.key);
  const [x, y] = [a.location, b.location];
  const indexNumbers = (index: string) => (index.match(/\d+/g) ?? []).map(Number);
  const [ix, iy] = [indexNumbers(x.index), indexNumbers(y.index)];
  return (
    compareText(x.userId, y.userId) ||
    compareText(x.provider, y.provider) ||
    compareText(x.resource, y.resource) ||
    compareText(x.runId, y.runId) ||
    x.windowIndex - y.windowIndex ||
    x.page - y.page ||
    ix.reduce((order, n, i) => order || n - (iy[i] ?? -1), 0) ||
    compareText(a.key, b.key)
  );
}
