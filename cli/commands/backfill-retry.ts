import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SqsBackfillQueue } from '../../functions/adapters/backfill-requests';
import { DynamoDbBackfillStatusStore } from '../../functions/adapters/backfill-status-store';
import type { BackfillStatus } from '../../functions/domain/backfill-job';
import { isUnsentRetry, retryDecision } from '../../functions/domain/backfill-retry';
import { readBackfillStatuses } from '../record-queries';
import type { PipelineTarget } from '../target';

/**
 * `vital-pipeline backfill retry`: resumes failed backfill runs from their checkpoints. For each
 * chosen run, `retryDecision` says whether it may be retried; the status is then put back to
 * `queued` conditionally (same run, still failed: a run retried, replayed or superseded meanwhile is
 * left alone) and only then is its job message sent, as the worker does for a new run. A copy of the
 * job left in the backfill DLQ (a run that failed there) is harmless: replayed later, it finds the
 * run done or racing a checkpoint it cannot win.
 */

/** Which runs: one (user, provider, resource), every failed run of a user, or of the deployment. */
export type RetrySelection =
  | { readonly kind: 'run'; readonly userId: string; readonly provider: string; readonly resource: string }
  | { readonly kind: 'user'; readonly userId: string }
  | { readonly kind: 'deployment' };

/** What `retry` did with one run, as `--json` prints it. */
export interface RetryResult {
  readonly user_id: string;
  readonly provider: string;
  readonly resource: string;
  readonly run_id: string;
  /** `retried`: back to queued and its job sent; `skipped`: not retryable (see `reason`). */
  readonly outcome: 'retried' | 'skipped';
  /** For `retried`, the failure it had; for `skipped`, why it was not retried. */
  readonly reason: string;
  /** Where the run resumes: window index (0-based) of windows total. */
  readonly resumes_at_window?: number;
  readonly windows_total?: number;
}

/** `--user/--provider/--resource` name a run that has no status item. */
export class BackfillRunNotFoundError extends Error {}

const retryable = (status: BackfillStatus): boolean => status.state === 'failed' || isUnsentRetry(status);

async function chosenStatuses(target: PipelineTarget, selection: RetrySelection): Promise<BackfillStatus[]> {
  const table = target.tables.backfills;
  switch (selection.kind) {
    case 'run': {
      const statuses = await readBackfillStatuses(target.dynamodb, table, { userId: selection.userId });
      const run = statuses.find((status) => status.provider === selection.provider && status.resource === selection.resource);
      if (!run) {
        throw new BackfillRunNotFoundError(
          `no backfill for user ${selection.userId}, provider ${selection.provider}, resource ${selection.resource} in ${target.description}`,
        );
      }
      return [run];
    }
    case 'user':
      return (await readBackfillStatuses(target.dynamodb, table, { userId: selection.userId })).filter(retryable);
    case 'deployment':
      return (await readBackfillStatuses(target.dynamodb, table, {})).filter(retryable);
  }
}

/** Retries the chosen failed runs of `target`; one result per run considered. */
export async function retryBackfills(target: PipelineTarget, selection: RetrySelection, now: () => Date = () => new Date()): Promise<RetryResult[]> {
  const statuses = new DynamoDbBackfillStatusStore(
    DynamoDBDocumentClient.from(target.dynamodb, { marshallOptions: { removeUndefinedValues: true } }),
    target.tables.backfills,
  );
  const queue = new SqsBackfillQueue(target.sqs, target.queues.backfill.url);
  const results: RetryResult[] = [];
  for (const status of await chosenStatuses(target, selection)) {
    const key = { userId: status.userId, provider: status.provider, resource: status.resource };
    const base = { user_id: status.userId, provider: status.provider, resource: status.resource, run_id: status.runId };
    const decision = retryDecision(status);
    if (!decision.retry) {
      results.push({ ...base, outcome: 'skipped', reason: decision.reason });
      continue;
    }
    if (!(await statuses.retry(key, status.runId, now()))) {
      results.push({ ...base, outcome: 'skipped', reason: 'it changed meanwhile (retried, replayed or replaced by a newer notice)' });
      continue;
    }
    await queue.send({ type: 'historical', ...key, runId: status.runId });
    results.push({
      ...base,
      outcome: 'retried',
      reason: status.lastError ?? 'no reason recorded',
      resumes_at_window: status.windowIndex,
      windows_total: status.windowsTotal,
    });
  }
  return results;
}
