import { resourceNamed, type ResourceDefinition } from './catalogue';
import { orderKeyOfFetch, type OrderKey } from './message-order';
import type { RecordStore } from './record-store';
import { InvalidBackfillRangeError, planBackfill, type BackfillWindow } from './backfill-plan';
import type {
  BackfillCheckpoint,
  BackfillQueue,
  BackfillStatusStore,
  HistoricalJobMessage,
  WorkoutStreamJobMessage,
} from './backfill-job';
import { VitalApiClientError, VitalApiError, type VitalDataSource } from './backfill-source';

/**
 * Runs backfill jobs. A historical job loops over pages from its checkpoint while the invocation has
 * time, writing a checkpoint after every page; out of time, it sends itself to the back of the queue
 * (so jobs take turns) and returns. A crash leaves the message unacknowledged: SQS redelivers it and
 * the job resumes at the last checkpoint, re-fetching at most the page (one window, for summaries)
 * in flight. Checkpoints are optimistic: each expects the step sequence it read, so when a duplicate
 * message or a newer run got there first the invocation stops instead of running a second chain.
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
}

export interface BackfillRunnerDependencies {
  readonly statuses: BackfillStatusStore;
  readonly source: VitalDataSource;
  readonly records: RecordStore;
  readonly streams: WorkoutStreamStore;
  readonly queue: BackfillQueue;
  readonly listener?: BackfillProgressListener;
  readonly now?: () => Date;
}

/** What an invocation did with a historical job message. */
export type HistoricalJobOutcome =
  /** Every window done. */
  | 'completed'
  /** Out of time: a continuation message was sent. */
  | 'continued'
  /** A permanent error: the status says failed, with the reason. */
  | 'failed'
  /** Nothing to do: a newer run replaced this one, another invocation advanced it, or it had finished. */
  | 'stale';

const WORKOUTS = resourceNamed('workouts')!;

/** The resource whose endpoint lists a job's records: a `workout_stream` backfill lists workouts. */
const listingResourceOf = (resource: ResourceDefinition): ResourceDefinition => (resource.kind === 'stream' ? WORKOUTS : resource);

const describe = (error: unknown): string => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

export class BackfillRunner {
  private readonly now: () => Date;

  constructor(private readonly deps: BackfillRunnerDependencies) {
    this.now = deps.now ?? (() => new Date());
  }

  /**
   * Works on a historical job until it completes, fails permanently, or `hasTimeForAnotherPage`
   * says no. Transient errors are noted in the status and rethrown, leaving the checkpoint for the
   * SQS redelivery.
   */
  async runHistorical(message: HistoricalJobMessage, hasTimeForAnotherPage: () => boolean): Promise<HistoricalJobOutcome> {
    const { statuses, queue, listener } = this.deps;
    const status = await statuses.get(message);
    // A failed run is resumed from its checkpoint: its message only comes back when replayed from the DLQ.
    if (!status || status.runId !== message.runId || status.state === 'completed') return 'stale';
    const key = { userId: status.userId, provider: status.provider, resource: status.resource };
    try {
      const resource = resourceNamed(status.resource);
      if (!resource) throw new InvalidBackfillRangeError(`no catalogue entry for resource ${status.resource}`);
      const { windows } = planBackfill(listingResourceOf(resource), status.startDate, status.endDate, status.windowDays);
      await statuses.start(key, status.runId, this.now());
      let checkpoint: BackfillCheckpoint = { windowIndex: status.windowIndex, cursor: status.cursor };
      let seq = status.stepSeq;
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
      const permanent = (error instanceof VitalApiError && error.permanent) || error instanceof InvalidBackfillRangeError;
      if (!permanent) {
        await statuses.noteError(key, status.runId, describe(error), this.now());
        throw error;
      }
      await statuses.fail(key, status.runId, describe(error), this.now());
      listener?.failed?.(status.resource, describe(error));
      return 'failed';
    }
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
   * is stored already (a duplicate notice). Errors propagate: SQS retries, then the DLQ keeps it.
   */
  async runWorkoutStream(message: WorkoutStreamJobMessage): Promise<void> {
    const stored = await this.deps.streams.orderOf(message.userId, message.provider, message.workoutId);
    if (stored !== undefined && stored >= message.order) return;
    await this.fetchAndStoreStreams(message.userId, message.provider, [message.workoutId]);
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
