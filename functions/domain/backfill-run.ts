import { resourceNamed, type ResourceDefinition } from './catalogue';
import { orderKeyOfFetch, type OrderKey } from './message-order';
import type { RecordStore } from './record-store';
import { InvalidBackfillRangeError, planBackfill, type BackfillWindow } from './backfill-plan';
import type {
  BackfillCheckpoint,
  BackfillQueue,
  BackfillStatus,
  BackfillStatusStore,
  HistoricalJobMessage,
  WorkoutStreamJobMessage,
} from './backfill-job';
import { VitalApiClientError, type VitalDataSource } from './backfill-source';
import { API_KEY_MAX_WAIT_MS, API_KEY_NEVER_SET, API_KEY_RETRY_DELAY_SECONDS, classifyBackfillError } from './backfill-failure';

/**
 * Runs backfill jobs. A historical job loops over pages from its checkpoint while the invocation has
 * time, writing a checkpoint after every page; out of time, it sends itself to the back of the queue
 * (so jobs take turns) and returns. A crash leaves the message unacknowledged: SQS redelivers it and
 * the job resumes at the last checkpoint, re-fetching at most the page (one window, for summaries)
 * in flight. Checkpoints are optimistic: each expects the step sequence it read, so when a duplicate
 * message or a newer run got there first the invocation stops instead of running a second chain.
 *
 * A job whose API key is missing or rejected (`classifyBackfillError`) neither fails nor spends the
 * receives of its message: the status says `waiting_for_api_key` (an optimistic step like a
 * checkpoint, so the checkpoint and the run id stay), the job is sent again with a long delay and the
 * current message is acknowledged. It goes on by itself at the first page the key fetches, and fails
 * with `api_key_never_set` only when no key worked for `apiKeyMaxWaitMs`.
 */

/** Where fetched workout streams are kept. */
export interface WorkoutStreamStore {
  /** The order key of the stored stream of a workout, undefined when none is stored. */
  orderOf(userId: string, provider: string, workoutId: string): Promise<OrderKey | undefined>;
  /**
   * Stores the stream body verbatim unless a stream of a later (or the same) order is stored: an
   * older fetch never replaces a newer one, however they race. Resolves whether it stored.
   */
  put(input: { userId: string; provider: string; workoutId: string; body: string; order: OrderKey }): Promise<boolean>;
}

/** Progress reports for metrics and logs: counts and reasons, never data. */
export interface BackfillProgressListener {
  page?(resource: string, records: number): void;
  streams?(count: number): void;
  failed?(resource: string, reason: string): void;
  /** A job found the API key missing or rejected and was sent again, to try after `retryInSeconds`. */
  waitingForApiKey?(resource: string, reason: string, waitedMs: number, retryInSeconds: number): void;
}

export interface BackfillRunnerDependencies {
  readonly statuses: BackfillStatusStore;
  readonly source: VitalDataSource;
  readonly records: RecordStore;
  readonly streams: WorkoutStreamStore;
  readonly queue: BackfillQueue;
  readonly listener?: BackfillProgressListener;
  readonly now?: () => Date;
  /**
   * Seconds a job waiting for the API key sleeps before it tries again (SQS `DelaySeconds`, 1 to
   * 900): `apiKeyRetryDelaySeconds(timeScale)` scales it like the time reserve; tests pass 1.
   * @default API_KEY_RETRY_DELAY_SECONDS (900)
   */
  readonly apiKeyRetryDelaySeconds?: number;
  /** How long a job waits for a working API key before it fails with `api_key_never_set`. @default API_KEY_MAX_WAIT_MS (14 days) */
  readonly apiKeyMaxWaitMs?: number;
}

/** What an invocation did with a historical job message. */
export type HistoricalJobOutcome =
  /** Every window done. */
  | 'completed'
  /** Out of time: a continuation message was sent. */
  | 'continued'
  /** A permanent error: the status says failed, with the reason. */
  | 'failed'
  /** The API key is missing or rejected: the status says waiting_for_api_key and the job was sent again, delayed. */
  | 'waiting_for_api_key'
  /**
   * No key worked for the whole wait: the status says failed (`api_key_never_set`). The message must
   * be left to SQS (a batch item failure), which keeps it in the DLQ for a replay once the key is stored.
   */
  | 'api_key_never_set'
  /** Nothing to do: a newer run replaced this one, another invocation advanced it, or it had finished. */
  | 'stale';

const WORKOUTS = resourceNamed('workouts')!;

/** What an invocation did with a workout stream job message. */
export type WorkoutStreamJobOutcome = 'stored' | 'skipped' | 'waiting_for_api_key' | 'api_key_never_set';

/** The resource whose endpoint lists a job's records: a `workout_stream` backfill lists workouts. */
const listingResourceOf = (resource: ResourceDefinition): ResourceDefinition => (resource.kind === 'stream' ? WORKOUTS : resource);

const describe = (error: unknown): string => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

export class BackfillRunner {
  private readonly now: () => Date;
  private readonly apiKeyRetryDelaySeconds: number;
  private readonly apiKeyMaxWaitMs: number;

  constructor(private readonly deps: BackfillRunnerDependencies) {
    this.now = deps.now ?? (() => new Date());
    this.apiKeyRetryDelaySeconds = deps.apiKeyRetryDelaySeconds ?? API_KEY_RETRY_DELAY_SECONDS;
    if (!Number.isInteger(this.apiKeyRetryDelaySeconds) || this.apiKeyRetryDelaySeconds < 1 || this.apiKeyRetryDelaySeconds > 900) {
      throw new RangeError(`apiKeyRetryDelaySeconds must be a whole number from 1 to 900 (SQS DelaySeconds), got ${this.apiKeyRetryDelaySeconds}`);
    }
    this.apiKeyMaxWaitMs = deps.apiKeyMaxWaitMs ?? API_KEY_MAX_WAIT_MS;
  }

  /**
   * Works on a historical job until it completes, fails permanently, waits for the API key, or
   * `hasTimeForAnotherPage` says no. What a failure means is `classifyBackfillError`'s to say:
   * transient errors are noted in the status and rethrown, leaving the checkpoint for the SQS
   * redelivery; a missing or rejected key parks the job (`waitForApiKey`); a permanent one fails it.
   */
  async runHistorical(message: HistoricalJobMessage, hasTimeForAnotherPage: () => boolean): Promise<HistoricalJobOutcome> {
    const { statuses, queue, listener } = this.deps;
    const status = await statuses.get(message);
    // A failed run is resumed from its checkpoint: its message only comes back when replayed from the DLQ.
    if (!status || status.runId !== message.runId || status.state === 'completed') return 'stale';
    const key = { userId: status.userId, provider: status.provider, resource: status.resource };
    let seq = status.stepSeq;
    try {
      const resource = resourceNamed(status.resource);
      if (!resource) throw new InvalidBackfillRangeError(`no catalogue entry for resource ${status.resource}`);
      const { windows } = planBackfill(listingResourceOf(resource), status.startDate, status.endDate, status.windowDays);
      // A waiting run stays waiting until a page is stored: trying the key is not running.
      await statuses.start(key, status.runId, this.now());
      let checkpoint: BackfillCheckpoint = { windowIndex: status.windowIndex, cursor: status.cursor };
      while (checkpoint.windowIndex < windows.length) {
        if (!hasTimeForAnotherPage()) {
          await queue.send(message);
          return 'continued';
        }
        const page = await this.fetchAndStorePage(resource, key.userId, key.provider, windows[checkpoint.windowIndex]!, checkpoint.cursor);
        const next = page.nextCursor === null ? { windowIndex: checkpoint.windowIndex + 1, cursor: null } : { windowIndex: checkpoint.windowIndex, cursor: page.nextCursor };
        const completed = next.windowIndex >= windows.length;
        const advanced = await statuses.advance(
          key,
          status.runId,
          seq,
          { next, windowsDone: next.windowIndex, pagesAdded: 1, recordsAdded: page.records, completed },
          this.now(),
        );
        if (!advanced) return 'stale';
        listener?.page?.(resource.name, page.records);
        seq += 1;
        checkpoint = next;
      }
      return 'completed';
    } catch (error) {
      switch (classifyBackfillError(error)) {
        case 'waiting_for_api_key':
          return await this.waitForApiKey(message, status, seq, describe(error));
        case 'transient':
          await statuses.noteError(key, status.runId, describe(error), this.now());
          throw error;
        case 'permanent':
          await statuses.fail(key, status.runId, describe(error), this.now());
          listener?.failed?.(status.resource, describe(error));
          return 'failed';
      }
    }
  }

  /**
   * Parks a historical job whose API key is missing or rejected: marks the run waiting (expecting
   * the step sequence `seq`, so a duplicate message stops here), then sends the job again with a
   * delay; the caller acknowledges the current message. After `apiKeyMaxWaitMs` of waiting the run
   * fails with `api_key_never_set` instead.
   */
  private async waitForApiKey(message: HistoricalJobMessage, status: BackfillStatus, seq: number, reason: string): Promise<HistoricalJobOutcome> {
    const { statuses, queue, listener } = this.deps;
    const key = { userId: status.userId, provider: status.provider, resource: status.resource };
    const now = this.now();
    const since = this.waitingSinceMs(status.waitingSince, now);
    if (now.getTime() - since >= this.apiKeyMaxWaitMs) {
      const failure = `${API_KEY_NEVER_SET}: no working Vital API key since ${new Date(since).toISOString()} (${reason}); store the key, then replay the job from the backfill DLQ`;
      if (await statuses.fail(key, status.runId, failure, now)) listener?.failed?.(status.resource, failure);
      return 'api_key_never_set';
    }
    const nextAttemptAt = new Date(now.getTime() + this.apiKeyRetryDelaySeconds * 1000);
    if (!(await statuses.waitForApiKey(key, status.runId, seq, { reason, nextAttemptAt }, now))) return 'stale';
    await queue.sendLater(message, this.apiKeyRetryDelaySeconds);
    listener?.waitingForApiKey?.(status.resource, reason, now.getTime() - since, this.apiKeyRetryDelaySeconds);
    return 'waiting_for_api_key';
  }

  /** When a wait began: the recorded instant, or now for a first wait (or an unreadable record). */
  private waitingSinceMs(recorded: string | undefined, now: Date): number {
    const ms = recorded === undefined ? Number.NaN : Date.parse(recorded);
    return Number.isNaN(ms) ? now.getTime() : Math.min(ms, now.getTime());
  }

  /**
   * Called on the last delivery SQS makes before the job moves to the dead-letter queue: marks the
   * run failed with the reason, so the status tells the truth while the message waits for a replay.
   */
  async giveUp(message: HistoricalJobMessage, reason: string): Promise<void> {
    const status = await this.deps.statuses.get(message);
    if (!status || status.runId !== message.runId) return;
    const key = { userId: status.userId, provider: status.provider, resource: status.resource };
    const failed = await this.deps.statuses.fail(key, status.runId, `gave up after repeated failures (replay it from the backfill DLQ to resume): ${reason}`, this.now());
    if (failed) this.deps.listener?.failed?.(status.resource, reason);
  }

  /**
   * Fetches and stores the stream of one workout, unless a stream fetched after the notice was sent
   * is stored already (a duplicate notice). A missing or rejected API key parks the job as for a
   * historical one, its wait carried in the message (a stream job has no status item); other errors
   * propagate: SQS retries, then the DLQ keeps it.
   */
  async runWorkoutStream(message: WorkoutStreamJobMessage): Promise<WorkoutStreamJobOutcome> {
    const stored = await this.deps.streams.orderOf(message.userId, message.provider, message.workoutId);
    if (stored !== undefined && stored >= message.order) return 'skipped';
    try {
      await this.fetchAndStoreStreams(message.userId, message.provider, [message.workoutId]);
      return 'stored';
    } catch (error) {
      const { queue, listener } = this.deps;
      if (classifyBackfillError(error) !== 'waiting_for_api_key') throw error;
      const now = this.now();
      const since = this.waitingSinceMs(message.waitingSince, now);
      if (now.getTime() - since >= this.apiKeyMaxWaitMs) return 'api_key_never_set';
      await queue.sendLater({ ...message, waitingSince: new Date(since).toISOString() }, this.apiKeyRetryDelaySeconds);
      listener?.waitingForApiKey?.('workout_stream', describe(error), now.getTime() - since, this.apiKeyRetryDelaySeconds);
      return 'waiting_for_api_key';
    }
  }

  private async fetchAndStorePage(
    resource: ResourceDefinition,
    userId: string,
    provider: string,
    window: BackfillWindow,
    cursor: string | null,
  ): Promise<{ records: number; nextCursor: string | null }> {
    const { source, records } = this.deps;
    if (resource.kind === 'timeseries') {
      const page = await source.fetchTimeseriesPage(resource, userId, provider, window, cursor);
      const order = orderKeyOfFetch(page.fetchedAtMs);
      let stored = 0;
      for (const group of page.groups) {
        if (group.samples.length === 0) continue;
        const sampleSource = {
          provider: typeof group.source.provider === 'string' ? group.source.provider : provider,
          type: typeof group.source.type === 'string' ? group.source.type : 'unknown',
        };
        await records.storeTimeseries({ userId, resource: resource.name, source: sampleSource, samples: group.samples, order });
        stored += group.samples.length;
      }
      return { records: stored, nextCursor: page.nextCursor };
    }
    const listing = listingResourceOf(resource);
    const fetched = await source.fetchSummaries(listing, userId, provider, window);
    const workoutIds = listing === WORKOUTS ? fetched.objects.map((workout) => workout.id).filter((id): id is string => typeof id === 'string') : [];
    if (resource.kind === 'stream') return { records: await this.fetchAndStoreStreams(userId, provider, workoutIds), nextCursor: null };
    const order = orderKeyOfFetch(fetched.fetchedAtMs);
    for (const object of fetched.objects) await records.storeSummary({ userId, resource: resource.name, object, order });
    await this.fetchAndStoreStreams(userId, provider, workoutIds);
    return { records: fetched.objects.length, nextCursor: null };
  }

  /** Fetches and stores each workout's stream; a workout without one (404: manual entries, some providers) is skipped. */
  private async fetchAndStoreStreams(userId: string, provider: string, workoutIds: readonly string[]): Promise<number> {
    let stored = 0;
    for (const workoutId of workoutIds) {
      let stream: Awaited<ReturnType<VitalDataSource['fetchWorkoutStream']>>;
      try {
        stream = await this.deps.source.fetchWorkoutStream(workoutId);
      } catch (error) {
        if (error instanceof VitalApiClientError && error.status === 404) continue;
        throw error;
      }
      await this.deps.streams.put({ userId, provider, workoutId, body: stream.body, order: orderKeyOfFetch(stream.fetchedAtMs) });
      stored += 1;
    }
    if (stored > 0) this.deps.listener?.streams?.(stored);
    return stored;
  }
}
