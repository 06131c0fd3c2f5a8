import { listingResourceOf, resourceNamed, type ResourceDefinition } from './catalogue';
import { orderKeyOfFetch, type OrderKey } from './message-order';
import { recordsChanged, type ChangeEvent, type ChangeEventPublisher, type RecordCounts } from './change-events';
import type { RecordStore, SampleSource, WriteOutcome } from './record-store';
import { sampleInstant, sampleSourceOf, summaryTime } from './record-identity';
import { InvalidBackfillRangeError, planRun, type BackfillWindow } from './backfill-plan';
import type {
  BackfillCheckpoint,
  BackfillJobKey,
  BackfillQueue,
  BackfillStatus,
  BackfillStatusStore,
  HistoricalJobMessage,
  WorkoutStreamJobMessage,
} from './backfill-job';
import { VitalApiClientError, type SummaryFetch, type TimeseriesPage, type VitalDataSource } from './backfill-source';
import { checkpointAfter, PagesAhead } from './backfill-pages';
import { API_KEY_MAX_WAIT_MS, API_KEY_NEVER_SET, API_KEY_RETRY_DELAY_SECONDS, classifyBackfillError, deadLetterReason } from './backfill-failure';
import { sortSamples, sortSummaries, type HeldBackLocation, type HeldBackStore, type SortedRecords } from './held-back';
import { erasedBy, orderOfRun, type ErasureRegister } from './erasure';
import { NamedError } from './named-error';

/**
 * Runs backfill jobs. A historical job loops over pages from its checkpoint while the invocation has
 * time, writing a checkpoint after every page; out of time, it sends itself to the back of the queue
 * (so jobs take turns) and returns. The next timeseries page is fetched as soon as its cursor
 * arrives, while the current one is stored (`PagesAhead`); requests, stores and checkpoints each stay
 * one at a time and in page order, a checkpoint after the page it covers is stored. Other pages go
 * one after another. A crash leaves the message unacknowledged: SQS redelivers it and the job
 * resumes at the last checkpoint, re-fetching at most the pages in flight (one window, for
 * summaries; the page being stored and the one fetched ahead, for a timeseries). Checkpoints are
 * optimistic: each expects the step sequence it read, so when a duplicate
 * message or a newer run got there first the invocation stops instead of running a second chain.
 * A workouts page (the listing plus one stream request per workout) is bounded too: the time is
 * asked before each stream, and a page done again skips the streams the run stored
 * (`streamIsCurrent`). Records that break the schema are held back, never retried (`held-back.ts`).
 *
 * A job whose API key is missing or rejected (`classifyBackfillError`) neither fails nor spends the
 * receives of its message: the status says `waiting_for_api_key` (an optimistic step like a
 * checkpoint, so the checkpoint and the run id stay), the job is sent again with a long delay and the
 * current message is acknowledged. It goes on by itself at the first page the key fetches, and fails
 * with `api_key_never_set` only when no key worked for `apiKeyMaxWaitMs`.
 *
 * A run queued before its user was erased stores nothing from then on: the erasure is read before
 * each page is stored, and such a run is marked failed (`erased`) at its next page; a workout-stream
 * job of a notice created before the erasure fetches nothing (functions/domain/erasure.ts).
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
  /** A workout announced or listed has no stream (404): skipped, but said. `reason` is status and path. */
  streamMissing?(workoutId: string, reason: string): void;
  failed?(resource: string, reason: string): void;
  /** A record that breaks the schema was kept under `held-back/` instead of stored: where, and why (never its values). */
  heldBack?(location: HeldBackLocation, reason: string): void;
  /** A job found the API key missing or rejected and was sent again, to try after `retryInSeconds`. */
  waitingForApiKey?(resource: string, reason: string, waitedMs: number, retryInSeconds: number): void;
  /** Progress or finish events could not be published (the status, which they only echo, is written). */
  changeEventsNotPublished?(reason: string): void;
  /** A run or stream job of an erased user, queued before the erasure, was stopped without storing anything more. */
  erased?(resource: string): void;
}

export interface BackfillRunnerDependencies {
  readonly statuses: BackfillStatusStore;
  readonly source: VitalDataSource;
  readonly records: RecordStore;
  readonly streams: WorkoutStreamStore;
  /** Where records that break the schema are kept (`functions/domain/held-back.ts`). */
  readonly heldBack: HeldBackStore;
  readonly queue: BackfillQueue;
  /** Where change events go: records stored, progress and the end of each run (`change-events.ts`). */
  readonly changes: ChangeEventPublisher;
  /** The erasures in force: a run queued before its user's erasure stops at its next page. */
  readonly erasures: ErasureRegister;
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
  /**
   * Timeseries pages one run may have begun and not yet checkpointed (`PagesAhead`): 2 fetches the
   * next page while the current one is stored, 1 fetches each page once the one before it is
   * checkpointed. Summary windows and workouts pages always go one by one: a workouts page makes
   * requests while it is stored (its streams), and the kill test holds summaries to at most one
   * window fetched twice.
   * @default TIMESERIES_PAGES_IN_FLIGHT (2)
   */
  readonly timeseriesPagesInFlight?: number;
}

/**
 * Timeseries pages begun and not yet checkpointed, by default: the page being stored and the next,
 * fetched meanwhile. Stores go one at a time, so more would only fetch further ahead of them
 * (docs/performance.md, backfill request rate).
 */
export const TIMESERIES_PAGES_IN_FLIGHT = 2;

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
  | 'stale'
  /** The user was erased after the run was queued: the status says failed (`erased`), nothing more was stored. */
  | 'erased';

const WORKOUTS = resourceNamed('workouts')!;

/** The streams of a page: which count as stored already, and the invocation's budget. */
interface StreamBudget {
  readonly since: OrderKey;
  readonly budget: InvocationBudget;
}

/** Where a page sits in a run: the held-back location of its records, less their index. */
type PageLocation = Omit<HeldBackLocation, 'index'>;

/** A page as fetched, not yet stored: a timeseries page with its next cursor, or a window's summaries (no cursor). */
type FetchedPage =
  | { readonly kind: 'timeseries'; readonly page: TimeseriesPage; readonly nextCursor: string | null }
  | { readonly kind: 'summaries'; readonly fetched: SummaryFetch; readonly nextCursor: null };

/** What storing a page did: counts for its checkpoint; `out_of_time` for a workouts page cut short between two streams. */
type StoredPage = { readonly records: number; readonly heldBack: number; readonly nextCursor: string | null } | 'out_of_time';

/** What an invocation did with a workout stream job message. */
export type WorkoutStreamJobOutcome = 'stored' | 'skipped' | 'missing' | 'waiting_for_api_key' | 'api_key_never_set' | 'erased';

/** How much work one invocation may still start. */
export interface InvocationBudget {
  /** Whether to start another page (a page started counts against the invocation's page limit). */
  anotherPage(): boolean;
  /** Whether there is time for one more request inside a page: a workouts page asks one per stream. */
  hasTime(): boolean;
}

/**
 * The one rule for "this workout's stream need not be fetched": a stream is stored whose fetch is
 * not older than `since` (the notice of a stream job; the queueing of a historical run, so a run that
 * resumes a page, after a continuation, a redelivery or a retry, never fetches a stream it stored).
 */
export const streamIsCurrent = (stored: OrderKey | undefined, since: OrderKey): boolean => stored !== undefined && stored >= since;

/** What became of one workout's stream. */
type StreamOutcome = 'stored' | 'current' | 'missing';


const describe = (error: unknown): string => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

/** A page of a run queued before its user's erasure was about to be stored: the run stops there. */
class RunErasedError extends NamedError {}

/** How far a run is, after a page's checkpoint. */
interface RunProgress extends BackfillJobKey {
  readonly runId: string;
  readonly windowsDone: number;
  readonly windowsTotal: number;
  readonly pagesDone: number;
  readonly recordsStored: number;
}

const progressEvent = (progress: RunProgress): ChangeEvent => ({
  detailType: 'Backfill Progress',
  detail: {
    user_id: progress.userId,
    provider: progress.provider,
    resource: progress.resource,
    backfill_run: progress.runId,
    windows_done: progress.windowsDone,
    windows_total: progress.windowsTotal,
    pages_done: progress.pagesDone,
    records_stored: progress.recordsStored,
  },
});

const finishedEvent = (run: BackfillStatus, state: 'completed' | 'failed', reason?: string): ChangeEvent => ({
  detailType: 'Backfill Finished',
  detail: {
    user_id: run.userId,
    provider: run.provider,
    resource: run.resource,
    backfill_run: run.runId,
    state,
    start_date: run.startDate,
    end_date: run.endDate,
    records_stored: run.recordsStored,
    ...(reason ? { reason } : {}),
  },
});

/** Records of a page held back because they break the schema, as one event (none for none). */
const heldBackEvents = (at: PageLocation, resource: ResourceDefinition, count: number): ChangeEvent[] =>
  count === 0
    ? []
    : [{ detailType: 'Events Held Back', detail: { reason: 'schema_violation', count, user_id: at.userId, provider: at.provider, resource: resource.name, backfill_run: at.runId } }];

/** What a page's stores did, summed, and the instants of the records they were given. */
class PageWrites implements RecordCounts {
  created = 0;
  written = 0;
  unchanged = 0;
  private readonly instants: string[] = [];

  add(outcome: WriteOutcome, instants: readonly string[]): void {
    this.created += outcome.created;
    this.written += outcome.written;
    this.unchanged += outcome.unchanged;
    if (outcome.written + outcome.unchanged > 0) this.instants.push(...instants);
  }

  /** The page's Records Changed event, or none when every record was stale (or there were none). */
  event(at: PageLocation, resource: ResourceDefinition, source?: SampleSource): ChangeEvent[] {
    return recordsChanged(
      {
        user_id: at.userId,
        provider: at.provider,
        ...(source ? { source_type: source.type } : {}),
        resource: resource.name,
        kind: resource.kind === 'timeseries' ? 'timeseries' : 'summary',
        backfill_run: at.runId,
      },
      this,
      this.instants,
    );
  }
}

export class BackfillRunner {
  private readonly now: () => Date;
  private readonly apiKeyRetryDelaySeconds: number;
  private readonly apiKeyMaxWaitMs: number;
  private readonly timeseriesPagesInFlight: number;

  constructor(private readonly deps: BackfillRunnerDependencies) {
    this.now = deps.now ?? (() => new Date());
    this.apiKeyRetryDelaySeconds = deps.apiKeyRetryDelaySeconds ?? API_KEY_RETRY_DELAY_SECONDS;
    if (!Number.isInteger(this.apiKeyRetryDelaySeconds) || this.apiKeyRetryDelaySeconds < 1 || this.apiKeyRetryDelaySeconds > 900) {
      throw new RangeError(`apiKeyRetryDelaySeconds must be a whole number from 1 to 900 (SQS DelaySeconds), got ${this.apiKeyRetryDelaySeconds}`);
    }
    this.apiKeyMaxWaitMs = deps.apiKeyMaxWaitMs ?? API_KEY_MAX_WAIT_MS;
    this.timeseriesPagesInFlight = deps.timeseriesPagesInFlight ?? TIMESERIES_PAGES_IN_FLIGHT;
    if (!Number.isInteger(this.timeseriesPagesInFlight) || this.timeseriesPagesInFlight < 1) {
      throw new RangeError(`timeseriesPagesInFlight must be a whole number of at least 1, got ${this.timeseriesPagesInFlight}`);
    }
  }

  /**
   * Works on a historical job until it completes, fails permanently, waits for the API key, or the
   * `budget` says no (asked before each page and, inside a workouts page, before each stream: out of
   * time mid-page, the page is left unfinished at its checkpoint and done again by the continuation).
   * What a failure means is `classifyBackfillError`'s to say:
   * transient errors are noted in the status and rethrown, leaving the checkpoint for the SQS
   * redelivery; a missing or rejected key parks the job (`waitForApiKey`); a permanent one fails it.
   */
  async runHistorical(message: HistoricalJobMessage, budget: InvocationBudget): Promise<HistoricalJobOutcome> {
    const { statuses, queue, listener } = this.deps;
    const status = await statuses.get(message);
    if (status?.runId === message.runId && status.state === 'completed') {
      // A copy of the job of a completed run: its finish may be what failed to publish, so say it again.
      await this.announce([finishedEvent(status, 'completed')]);
      return 'stale';
    }
    // A failed run is resumed from its checkpoint: its message only comes back when replayed from the DLQ.
    if (!status || status.runId !== message.runId) return 'stale';
    const key = { userId: status.userId, provider: status.provider, resource: status.resource };
    let seq = status.stepSeq;
    try {
      const resource = resourceNamed(status.resource);
      if (!resource) throw new InvalidBackfillRangeError(`no catalogue entry for resource ${status.resource}`);
      const listing = listingResourceOf(resource);
      let windows = planRun(listing, status);
      // What the status said the run's windows were: ranges added to it since change that (`extend`).
      let windowsTotal = status.windowsTotal;
      // A waiting run stays waiting until a page is stored: trying the key is not running.
      await statuses.start(key, status.runId, this.now());
      let checkpoint: BackfillCheckpoint = { windowIndex: status.windowIndex, cursor: status.cursor };
      // The run as last read: a late notice may have widened its range (`windowsAdded`).
      let run = status;
      let pagesDone = status.pagesDone;
      let recordsStored = status.recordsStored;
      // Streams stored since the run was queued are this run's: a resumed page does not fetch them again.
      const streamsSince = orderKeyOfFetch(Date.parse(status.queuedAt));
      const pages = new PagesAhead<FetchedPage, StoredPage>({
        windowCount: windows.length,
        limit: resource.kind === 'timeseries' ? this.timeseriesPagesInFlight : 1,
        anotherPage: () => budget.anotherPage(),
        firstPageNumber: status.pagesDone,
        fetch: (from) => this.fetchPage(resource, key.userId, key.provider, windows[from.windowIndex]!, from.cursor),
        store: async (fetched, from, page) => {
          // Read before every page: the erasure may come at any point of a long run.
          const erasure = await this.deps.erasures.latest(key.userId);
          if (erasedBy(erasure, orderOfRun(status))) throw new RunErasedError(`the user was erased at ${erasure!.erasedAt}, after this run was queued; it stores nothing more`);
          return this.storePage(resource, { ...key, runId: status.runId, windowIndex: from.windowIndex, page }, fetched, { since: streamsSince, budget });
        },
      });
      try {
        pages.offer(checkpoint);
        while (checkpoint.windowIndex < windows.length) {
          // Undefined when the budget said no before this page was begun.
          const current = pages.current();
          if (!current) {
            await queue.send(message);
            return 'continued';
          }
          const page = await current;
          if (page === 'out_of_time') {
            // Mid-page, between two streams: the checkpoint stays at this page; the streams stored are current, so not fetched again.
            await queue.send(message);
            return 'continued';
          }
          const next = checkpointAfter(checkpoint, page.nextCursor);
          for (;;) {
            const completed = next.windowIndex >= windows.length;
            const advanced = await statuses.advance(
              key,
              status.runId,
              seq,
              { next, windowsDone: next.windowIndex, pagesAdded: 1, recordsAdded: page.records, heldBackAdded: page.heldBack, completed, windowsTotal },
              this.now(),
            );
            if (advanced) break;
            // Completing, the run may have been given more windows by a late notice meanwhile: go on into them.
            const more = completed ? await this.windowsAdded(key, status.runId, seq, windowsTotal) : undefined;
            if (!more) return 'stale';
            windows = planRun(listing, more);
            windowsTotal = more.windowsTotal;
            run = more;
          }
          listener?.page?.(resource.name, page.records);
          pagesDone += 1;
          recordsStored += page.records;
          const progress = { ...key, runId: status.runId, windowsDone: next.windowIndex, windowsTotal, pagesDone, recordsStored };
          await this.announce(next.windowIndex >= windows.length
            ? [progressEvent(progress), finishedEvent({ ...run, recordsStored }, 'completed')]
            : [progressEvent(progress)]);
          seq += 1;
          checkpoint = next;
          pages.checkpointed(next, windows.length);
        }
      } finally {
        // Pages begun past the last checkpoint are dropped (fetched again from it): none outlives the invocation.
        await pages.stop();
      }
      return 'completed';
    } catch (error) {
      if (error instanceof RunErasedError) {
        // Not a failure to alarm on or announce: the status says why the run stopped, until the erasure removes it.
        await statuses.fail(key, status.runId, `erased: ${error.message}`, this.now());
        listener?.erased?.(status.resource);
        return 'erased';
      }
      switch (classifyBackfillError(error)) {
        case 'waiting_for_api_key':
          return await this.waitForApiKey(message, status, seq, describe(error));
        case 'transient':
          await statuses.noteError(key, status.runId, describe(error), this.now());
          throw error;
        case 'permanent':
          if (await statuses.fail(key, status.runId, describe(error), this.now())) await this.announceFailure(status, describe(error));
          listener?.failed?.(status.resource, describe(error));
          return 'failed';
      }
    }
  }

  /**
   * The run as stored now when, since the runner read it with `windowsTotal` windows, ranges were
   * added to it (`extend`) and nothing else happened to it (same run, same step); undefined otherwise.
   */
  private async windowsAdded(key: BackfillJobKey, runId: string, seq: number, windowsTotal: number): Promise<BackfillStatus | undefined> {
    const now = await this.deps.statuses.get(key);
    if (!now || now.runId !== runId || now.stepSeq !== seq || now.windowsTotal === windowsTotal) return undefined;
    return ['queued', 'running', 'waiting_for_api_key'].includes(now.state) ? now : undefined;
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
      if (await statuses.fail(key, status.runId, failure, now)) {
        listener?.failed?.(status.resource, failure);
        await this.announceFailure(status, failure);
      }
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
   * Called, instead of working, on the last delivery SQS makes before the job moves to the
   * dead-letter queue: marks the run failed with `deadLetterReason` (the last error the earlier
   * deliveries noted), so the status tells the truth while the message waits in the DLQ. Working
   * first could not promise it: a delivery that runs out of time is stopped mid-page and reports
   * nothing. A run no longer unfinished (completed, failed, superseded) is left as it is.
   */
  async giveUp(message: HistoricalJobMessage, receives: number): Promise<void> {
    const status = await this.deps.statuses.get(message);
    if (!status || status.runId !== message.runId) return;
    const key = { userId: status.userId, provider: status.provider, resource: status.resource };
    const reason = deadLetterReason(receives, status.lastError);
    if (await this.deps.statuses.fail(key, status.runId, reason, this.now())) {
      this.deps.listener?.failed?.(status.resource, reason);
      await this.announceFailure(status, reason);
    }
  }

  /**
   * Publishes progress and finish events, which echo a status already written: one that cannot be
   * published is reported to the listener (logged and counted, `ChangeEventsNotPublished`), never
   * allowed to fail or re-run the job. (Records are published strictly, before their checkpoint.)
   */
  private async announce(events: readonly ChangeEvent[]): Promise<void> {
    try {
      await this.deps.changes.publish(events);
    } catch (error) {
      this.deps.listener?.changeEventsNotPublished?.(describe(error));
    }
  }

  private announceFailure(status: BackfillStatus, reason: string): Promise<void> {
    return this.announce([finishedEvent(status, 'failed', reason)]);
  }

  /**
   * Fetches and stores the stream of one workout, unless a stream fetched after the notice was sent
   * is stored already (a duplicate notice) or the user was erased after the notice was created. A missing or rejected API key parks the job as for a
   * historical one, its wait carried in the message (a stream job has no status item); other errors
   * propagate: SQS retries, then the DLQ keeps it.
   */
  async runWorkoutStream(message: WorkoutStreamJobMessage): Promise<WorkoutStreamJobOutcome> {
    if (erasedBy(await this.deps.erasures.latest(message.userId), message.order)) {
      this.deps.listener?.erased?.('workout_stream');
      return 'erased';
    }
    try {
      const outcome = await this.fetchAndStoreStream(message.userId, message.provider, message.workoutId, message.order);
      if (outcome === 'stored') this.deps.listener?.streams?.(1);
      return outcome === 'current' ? 'skipped' : outcome;
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

  /** Fetches one page: a timeseries page at `cursor`, or the window's summaries (the listing, for a workout_stream run). */
  private async fetchPage(resource: ResourceDefinition, userId: string, provider: string, window: BackfillWindow, cursor: string | null): Promise<FetchedPage> {
    const { source } = this.deps;
    if (resource.kind === 'timeseries') {
      const page = await source.fetchTimeseriesPage(resource, userId, provider, window, cursor);
      return { kind: 'timeseries', page, nextCursor: page.nextCursor };
    }
    return { kind: 'summaries', fetched: await source.fetchSummaries(listingResourceOf(resource), userId, provider, window), nextCursor: null };
  }

  /**
   * Stores a fetched page: every record the store can identify, the others held back
   * (`functions/domain/held-back.ts`) with their location, so one bad record neither fails the run
   * nor is retried for ever; then, for workouts, the stream of each one.
   */
  private async storePage(resource: ResourceDefinition, at: PageLocation, fetched: FetchedPage, streamBudget: StreamBudget): Promise<StoredPage> {
    const { records, changes } = this.deps;
    const { userId, provider } = at;
    if (fetched.kind === 'timeseries') {
      const { page } = fetched;
      const order = orderKeyOfFetch(page.fetchedAtMs);
      let stored = 0;
      let heldBack = 0;
      const events: ChangeEvent[] = [];
      for (const [index, group] of page.groups.entries()) {
        const { readable, unreadable } = sortSamples(index, group.samples);
        heldBack += await this.holdBack(at, unreadable);
        if (readable.length === 0) continue;
        const source = sampleSourceOf(group.source, provider);
        const writes = new PageWrites();
        writes.add(await records.storeTimeseries({ userId, resource: resource.name, source, samples: readable, order }), readable.map(sampleInstant));
        events.push(...writes.event(at, resource, source));
        stored += readable.length;
      }
      // Before the checkpoint: a page whose events fail is stored again (unchanged) and published again.
      await changes.publish([...events, ...heldBackEvents(at, resource, heldBack)]);
      return { records: stored, heldBack, nextCursor: page.nextCursor };
    }
    const listing = listingResourceOf(resource);
    const order = orderKeyOfFetch(fetched.fetched.fetchedAtMs);
    const { objects } = fetched.fetched;
    // A workout_stream backfill stores no workouts (so sorts none out): a workout without an id simply has no stream to fetch.
    let heldBack = 0;
    let stored = 0;
    if (resource.kind !== 'stream') {
      const { readable, unreadable } = sortSummaries(listing.name, objects, order);
      heldBack = await this.holdBack(at, unreadable);
      const writes = new PageWrites();
      for (const object of readable) {
        const time = summaryTime(resource.name, object);
        writes.add(await records.storeSummary({ userId, resource: resource.name, object, order }), time ? [time] : []);
      }
      stored = readable.length;
      await changes.publish([...writes.event(at, resource), ...heldBackEvents(at, resource, heldBack)]);
    }
    // Every listed workout with an id has a stream to fetch, a held-back one (unreadable updated_at) included.
    const workoutIds = listing === WORKOUTS ? objects.map((workout) => workout.id).filter((id): id is string => typeof id === 'string') : [];
    const streams = await this.fetchAndStoreStreams(userId, provider, workoutIds, streamBudget, at.runId);
    if (streams === 'out_of_time') return streams;
    return { records: resource.kind === 'stream' ? streams : stored, heldBack, nextCursor: null };
  }

  /** Keeps a page's unreadable records under `held-back/`, each with its location; resolves how many. */
  private async holdBack(at: PageLocation, unreadable: SortedRecords<Readonly<Record<string, unknown>>>['unreadable']): Promise<number> {
    for (const { index, reason, record } of unreadable) {
      const location = { ...at, index };
      await this.deps.heldBack.put({ location, reason, record });
      this.deps.listener?.heldBack?.(location, reason);
    }
    return unreadable.length;
  }

  /**
   * Fetches and stores the streams of a page's workouts, one request each, checking the budget
   * before each: out of time, it stops between two streams (`out_of_time`) and the page is done
   * again later, skipping every stream stored since `since`. Resolves the number of workouts whose
   * stream is stored (now or before).
   */
  private async fetchAndStoreStreams(
    userId: string,
    provider: string,
    workoutIds: readonly string[],
    { since, budget }: StreamBudget,
    runId: string,
  ): Promise<number | 'out_of_time'> {
    let fetched = 0;
    let present = 0;
    try {
      for (const workoutId of workoutIds) {
        if (!budget.hasTime()) return 'out_of_time';
        const outcome = await this.fetchAndStoreStream(userId, provider, workoutId, since, runId);
        if (outcome === 'stored') fetched += 1;
        if (outcome !== 'missing') present += 1;
      }
      return present;
    } finally {
      if (fetched > 0) this.deps.listener?.streams?.(fetched);
    }
  }

  /**
   * One workout's stream: nothing to do when a stream fetched since `since` is stored
   * (`streamIsCurrent`); a 404 (manual entries, some providers) is counted and logged as missing.
   * `runId`: the backfill run whose page listed the workout (none for a stream notice's job).
   */
  private async fetchAndStoreStream(userId: string, provider: string, workoutId: string, since: OrderKey, runId?: string): Promise<StreamOutcome> {
    const { streams, source, listener } = this.deps;
    const storedOrder = await streams.orderOf(userId, provider, workoutId);
    if (streamIsCurrent(storedOrder, since)) return 'current';
    let stream: Awaited<ReturnType<VitalDataSource['fetchWorkoutStream']>>;
    try {
      stream = await source.fetchWorkoutStream(workoutId);
    } catch (error) {
      if (!(error instanceof VitalApiClientError && error.status === 404)) throw error;
      listener?.streamMissing?.(workoutId, error.message);
      return 'missing';
    }
    if (await streams.put({ userId, provider, workoutId, body: stream.body, order: orderKeyOfFetch(stream.fetchedAtMs) })) {
      // After the put, best effort (`announce`): a retry finds the stream current and would not publish again.
      await this.announce(recordsChanged(
        { user_id: userId, provider, resource: 'workout_stream', kind: 'workout_stream', workout_id: workoutId, ...(runId ? { backfill_run: runId } : {}) },
        { written: 1, created: storedOrder === undefined ? 1 : 0, unchanged: 0 },
        [],
      ));
    }
    return 'stored';
  }
}
