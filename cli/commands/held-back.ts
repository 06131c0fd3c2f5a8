import { S3HeldBackStore, type HeldBackEntry } from '../../functions/adapters/held-back-store';
import { BUCKET } from '../../functions/shared/resources';
import type { PipelineTarget } from '../target';

/**
 * `inspect held-back`: the records of Data Access API responses the backfill held back because they
 * break the schema (`held-back/` in the raw-body bucket, `functions/domain/held-back.ts`). Each is
 * described by where it sat and why, from its object key and metadata; the record itself is health
 * data and is never read, let alone printed. Whoever needs it reads the one object named by `key`
 * with their own access to the bucket (and its KMS key, in AWS).
 */

/** A held-back record, described without its values. */
export interface HeldBackItem {
  readonly user_id: string;
  readonly provider: string;
  readonly resource: string;
  readonly run_id: string;
  /** The run's window and page, 0-based, as in the key and the backfill's log line; null for a key not in the layout. */
  readonly window: number | null;
  readonly page: number | null;
  /** The record's place in the page: `3` (a summary), `g0.s17` (group 0, sample 17). */
  readonly index: string;
  /** Which rule it breaks: field names, never values. */
  readonly reason: string;
  /** When the backfill kept it (last wrote the object). */
  readonly kept_at: string;
  /** The object in the raw-body bucket. */
  readonly key: string;
}

const describe = ({ key, location, reason, keptAt }: HeldBackEntry): HeldBackItem => ({
  user_id: location?.userId ?? '',
  provider: location?.provider ?? '',
  resource: location?.resource ?? '',
  run_id: location?.runId ?? '',
  window: location?.windowIndex ?? null,
  page: location?.page ?? null,
  index: location?.index ?? '',
  reason,
  kept_at: keptAt,
  key,
});

/** Lists the held-back records of the target (of `userId` alone, when given), by user, resource and run. */
export async function inspectHeldBack(target: PipelineTarget, options: { userId?: string } = {}): Promise<HeldBackItem[]> {
  return (await new S3HeldBackStore(target.s3, target.bucket, BUCKET.prefixes.heldBack).list(options.userId)).map(describe);
}
