import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueuedBackfillRequests, SqsBackfillQueue, type BackfillRequestListener } from '../../functions/adapters/backfill-requests';
import { DynamoDbBackfillStatusStore } from '../../functions/adapters/backfill-status-store';
import type { BackfillJobKey, BackfillState, BackfillStatus } from '../../functions/domain/backfill-job';
import { resourceNamed } from '../../functions/domain/catalogue';
import { newMessageId, orderKeyOfDelivery } from '../../functions/domain/message-order';
import { apiKeyHint, rangesField, readConnections } from '../record-queries';
import type { PipelineTarget } from '../target';

/**
 * `vital-pipeline backfill --user U --provider P (--resource R | --all) --from ISO --to ISO`: an
 * on-demand resync. It is registered exactly as a historical notice is (`requestHistorical`, the
 * worker's own path), with a run id of its own (`resync_` + a KSUID) and the order of now, so
 * `decideNotice` treats it as the newest notice: a run still unfinished for the key is replaced and
 * its remainder taken over, and the backfill function fetches the range window by window, from
 * checkpoints, at the API's allowed rate. What it fetches is stored through the record store's
 * version rules like every other write, so a resync never overwrites a newer stored version.
 */

/** A resync's run id: `resync_` and the KSUID of a Svix-style id, so it sorts by time and reads as what it is. */
export const RESYNC_RUN_PREFIX = 'resync_';

/** What the resync asks for: one user and provider, the resources, and the range (strict ISO 8601, validated by the caller). */
export interface ResyncRequest {
  readonly userId: string;
  readonly provider: string;
  readonly resources: readonly string[];
  readonly from: string;
  readonly to: string;
}

/**
 * What the resync did for one resource, as `--json` prints it.
 * - `queued`: a run of its own (`run_id`), which also fetches what an unfinished run had left (`took_over`);
 * - `added`: a run newer than the resync (a notice stamped after it) fetches the range too, after its own;
 * - `covered`: a run newer than the resync fetches the whole range already;
 * - `skipped` (with `--all`): not backfilled, `reason` says why.
 */
export interface ResyncResult {
  readonly user_id: string;
  readonly provider: string;
  readonly resource: string;
  readonly outcome: 'queued' | 'added' | 'covered' | 'skipped';
  /** The run that fetches the range: the resync's own for `queued`, the newer run otherwise. */
  readonly run_id?: string;
  /** For `skipped`, why; for `added` and `covered`, which run does the work. */
  readonly reason?: string;
  /** The unfinished run whose remainder the resync's run fetches too. */
  readonly took_over?: string;
  /** What the run fetches: its hull, and its ranges when it has several. */
  readonly start_date?: string;
  readonly end_date?: string;
  readonly ranges?: readonly { readonly start_date: string; readonly end_date: string }[];
  readonly windows_total?: number;
  /** With `--wait`: how the run ended (or `waiting_for_api_key`), what it stored, why it failed. */
  readonly status?: BackfillState;
  readonly records?: number;
  readonly failure_reason?: string;
  /** With `--wait`, when a newer notice replaced the run while it ran: the run that carried its remainder on. */
  readonly continued_in?: string;
}

/** `--all` found no connection of the user with the provider, or one that announced no resources. */
export class NoConnectionError extends Error {}

/** `--all` skipped every resource the connection announced: there is nothing to fetch. */
export class NothingToResyncError extends Error {}

/** With `--wait`: some runs failed or wait for the Vital API key. */
export class ResyncUnfinishedError extends Error {}

/** Which of the connection's resources `--all` resyncs, and which it skips with the reason. */
export interface ConnectionResources {
  readonly resources: readonly string[];
  readonly skipped: readonly ResyncResult[];
}

/**
 * The resources of the user's connection with `provider` (its `resource_availability`, as the
 * latest `provider.connection.created` announced it) that this catalogue can backfill; the others
 * skipped with why: announced but not available, or unknown to the catalogue.
 */
export async function connectionResources(target: PipelineTarget, userId: string, provider: string): Promise<ConnectionResources> {
  const connections = await readConnections(target.dynamodb, target.tables.connections, userId);
  const connection = connections.find((candidate) => candidate.provider === provider);
  const byName = '--all takes the resources from the connection (provider.connection.created); name one with --resource instead';
  if (!connection) {
    const others = connections.map((candidate) => candidate.provider);
    throw new NoConnectionError(
      `no connection of user ${userId} with ${provider} in ${target.description}${others.length ? ` (it has ${others.join(', ')})` : ''}: ${byName}`,
    );
  }
  const availability = connection.resource_availability;
  if (!availability || typeof availability !== 'object' || Object.keys(availability).length === 0) {
    throw new NoConnectionError(`the connection of user ${userId} with ${provider} announced no resources: ${byName}`);
  }
  const resources: string[] = [];
  const skipped: ResyncResult[] = [];
  const skip = (resource: string, reason: string) => skipped.push({ user_id: userId, provider, resource, outcome: 'skipped', reason });
  for (const [resource, announced] of Object.entries(availability as Record<string, unknown>)) {
    const status = (announced as { status?: unknown } | null)?.status;
    if (!resourceNamed(resource)) skip(resource, 'this pipeline\'s catalogue does not know the resource, so it cannot fetch it');
    else if (status !== undefined && status !== 'available') skip(resource, `the connection announced it ${typeof status === 'string' ? status : 'not available'}`);
    else resources.push(resource);
  }
  return { resources, skipped };
}

/** What one run fetches, as a result reports it. */
function fetchedBy(status: BackfillStatus): Pick<ResyncResult, 'start_date' | 'end_date' | 'ranges' | 'windows_total'> {
  return {
    start_date: status.startDate,
    end_date: status.endDate,
    ...rangesField(status),
    windows_total: status.windowsTotal,
  };
}

const statusStoreOf = (target: PipelineTarget) =>
  new DynamoDbBackfillStatusStore(DynamoDBDocumentClient.from(target.dynamodb, { marshallOptions: { removeUndefinedValues: true } }), target.tables.backfills);

/** A run still unfinished: what a newer notice takes over. */
const UNFINISHED: ReadonlySet<BackfillState> = new Set(['queued', 'running', 'waiting_for_api_key', 'failed']);

/**
 * Registers one run per resource, as the worker registers a historical notice, and sends its job.
 * All runs of one resync share one id and one order (a resync is one request).
 */
export async function requestResync(target: PipelineTarget, request: ResyncRequest, now: () => Date = () => new Date()): Promise<ResyncResult[]> {
  const statuses = statusStoreOf(target);
  const added = new Set<string>();
  // The CLI is no function: nothing for its metrics; what a request did is read back below.
  const listener: BackfillRequestListener = { invalidRange: () => undefined, rangesAdded: (resource) => added.add(resource) };
  const requests = new QueuedBackfillRequests({ statuses, queue: new SqsBackfillQueue(target.sqs, target.queues.backfill.url), listener, now });
  const at = now();
  const runId = `${RESYNC_RUN_PREFIX}${newMessageId(at).slice('msg_'.length)}`;
  // Not a KSUID, so ordered by the time given: after every notice Svix created before this second or in it.
  const order = orderKeyOfDelivery(runId, at.getTime());
  const results: ResyncResult[] = [];
  for (const resource of request.resources) {
    const key: BackfillJobKey = { userId: request.userId, provider: request.provider, resource };
    const before = await statuses.get(key);
    await requests.requestHistorical({ ...key, startDate: request.from, endDate: request.to, svixId: runId, order });
    const after = await statuses.get(key);
    const base = { user_id: request.userId, provider: request.provider, resource };
    if (after?.runId === runId) {
      // A profile has no range: its new run is one request, whatever the older one left.
      const ranged = resourceNamed(resource)?.dateParameters !== 'none';
      const tookOver = ranged && before && before.runId !== runId && UNFINISHED.has(before.state) && before.windowsTotal > 0 ? { took_over: before.runId } : {};
      results.push({ ...base, outcome: 'queued', run_id: runId, ...tookOver, ...fetchedBy(after) });
    } else if (after) {
      // Only a notice stamped after the resync (a clock ahead of this one) is newer: its run does the work.
      results.push({
        ...base,
        outcome: added.has(resource) ? 'added' : 'covered',
        run_id: after.runId,
        reason: added.has(resource)
          ? `run ${after.runId}, of a notice newer than this resync, fetches the range after its own`
          : `run ${after.runId}, of a notice newer than this resync, fetches the whole range already`,
        ...fetchedBy(after),
      });
    }
  }
  return results;
}

const WAIT_OVER: ReadonlySet<BackfillState> = new Set(['completed', 'failed', 'waiting_for_api_key']);

export interface FollowOptions {
  /** Called on every look at the runs, with the runs as they are. */
  readonly onProgress?: (runs: readonly BackfillStatus[]) => void;
  /** @default 1000 */
  readonly pollMs?: number;
}

/**
 * Waits until every run of `results` has completed or failed, or waits for the Vital API key (only
 * the operator ends that wait); returns the results with how each ended. A run replaced meanwhile
 * by a newer notice's run is followed into that run, which carries its remainder on.
 */
export async function followResync(target: PipelineTarget, results: readonly ResyncResult[], options: FollowOptions = {}): Promise<ResyncResult[]> {
  const statuses = statusStoreOf(target);
  const followed = results.filter((result) => result.run_id !== undefined);
  for (;;) {
    const seen = await Promise.all(followed.map((result) => statuses.get({ userId: result.user_id, provider: result.provider, resource: result.resource })));
    const runs = seen.filter((status): status is BackfillStatus => status !== undefined);
    options.onProgress?.(runs);
    if (seen.every((status) => status === undefined || WAIT_OVER.has(status.state))) {
      return results.map((result) => {
        const index = followed.indexOf(result);
        const status = index < 0 ? undefined : seen[index];
        if (!status) return result;
        return {
          ...result,
          status: status.state,
          records: status.recordsStored ?? 0,
          ...(status.runId !== result.run_id ? { continued_in: status.runId } : {}),
          ...(status.state === 'failed' ? { failure_reason: status.lastError ?? 'no reason recorded' } : {}),
          ...fetchedBy(status),
        };
      });
    }
    await sleep(options.pollMs ?? 1000);
  }
}

/** One progress line over the runs a resync follows. */
export function describeProgress(runs: readonly BackfillStatus[], total: number): string {
  const finished = runs.filter((run) => WAIT_OVER.has(run.state)).length;
  const windowsDone = runs.reduce((sum, run) => sum + (run.windowsDone ?? 0), 0);
  const windowsTotal = runs.reduce((sum, run) => sum + (run.windowsTotal ?? 0), 0);
  const records = runs.reduce((sum, run) => sum + (run.recordsStored ?? 0), 0);
  return `Resync: ${finished} of ${total} runs finished, ${windowsDone} of ${windowsTotal} windows, ${records} records stored`;
}

/** After `--wait`: an error naming the runs that failed or wait for the API key, with what to do; undefined when all completed. */
export function unfinishedError(results: readonly ResyncResult[], userId: string, sameTarget: string, stack: Parameters<typeof apiKeyHint>[0]): ResyncUnfinishedError | undefined {
  const followed = results.filter((result) => result.status !== undefined);
  const failed = followed.filter((result) => result.status === 'failed');
  const waiting = followed.filter((result) => result.status === 'waiting_for_api_key');
  if (failed.length === 0 && waiting.length === 0) return undefined;
  const parts = [
    ...(failed.length ? [`${failed.length} of ${followed.length} runs failed (${failed.map((result) => `${result.resource}: ${result.failure_reason}`).join('; ')}); once the cause is gone: vital-pipeline backfill retry --user ${userId}${sameTarget}`] : []),
    ...(waiting.length ? [`${waiting.length} of ${followed.length} runs wait for the Vital API key (${waiting.map((result) => result.resource).join(', ')}): ${apiKeyHint(stack)}`] : []),
  ];
  return new ResyncUnfinishedError(parts.join('. '));
}
