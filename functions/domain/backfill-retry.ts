import { listingResourceOf, resourceNamed } from './catalogue';
import { InvalidBackfillRangeError, planRun } from './backfill-plan';
import type { BackfillStatus } from './backfill-job';

/**
 * Retrying a failed run (`vital-pipeline backfill retry`): the one rule for which runs may be sent
 * again. A retry puts the run back to `queued` at its checkpoint (conditional on the run id and on
 * the run still being failed) and sends its job message: the windows it had done are not fetched
 * again. It fixes what has been fixed since: the API key, a user reconnected in Vital, a Vital outage
 * that outlasted the redeliveries, a bug fixed by a deploy. It cannot fix an answer that stays the
 * same: a user Vital does not know (404), a refusal (403), a range that cannot be read; such a run
 * fails again with the same reason.
 */

export const RETRY_SCOPE =
  'A retry resumes a failed run from its checkpoint (windows already done are not fetched again). ' +
  'It helps once the cause is gone (API key stored, user reconnected, Vital outage over, fix deployed); ' +
  'a request Vital keeps refusing (404 unknown user, 403, 422) fails again with the same reason.';

/**
 * A retry whose job message may not have been sent (the command stopped between the two steps): the
 * run is queued by a retry and nothing has touched it since. Retrying it again only risks a duplicate
 * job message, which checkpoints make harmless.
 */
export const isUnsentRetry = (status: BackfillStatus): boolean =>
  status.state === 'queued' && status.retriedAt !== undefined && status.retriedAt === status.updatedAt;

export type RetryDecision = { readonly retry: true } | { readonly retry: false; readonly reason: string };

/** Whether `status` may be retried, and if not, why (in words for the operator). */
export function retryDecision(status: BackfillStatus): RetryDecision {
  if (status.state !== 'failed' && !isUnsentRetry(status)) return { retry: false, reason: `it is ${status.state}, not failed` };
  const resource = resourceNamed(status.resource);
  if (!resource) return { retry: false, reason: `no catalogue entry for resource ${status.resource}` };
  try {
    // A workout_stream backfill lists workouts: its plan is theirs.
    planRun(listingResourceOf(resource), status);
  } catch (error) {
    if (!(error instanceof InvalidBackfillRangeError)) throw error;
    return { retry: false, reason: `its announced range cannot be read (${error.message}): a retry would fail the same way; a new historical notice replaces it` };
  }
  return { retry: true };
}
