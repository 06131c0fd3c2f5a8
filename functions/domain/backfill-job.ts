import type { OrderKey } from './message-order';
import type { BackfillRange } from './backfill-plan';
import { NamedError } from './named-error';

/**
 * Backfill jobs: the messages on the backfill queue and the status record (with its checkpoint) of
 * each job. A job is one run of a historical backfill for a (user, provider, resource); its run id
 * is the `svix-id` of the historical event that started it, so a redelivery of that event is the
 * same run and a second historical event is a new run that supersedes the first.
 */

/** Identifies a backfill's status record. */
export interface BackfillJobKey {
  readonly userId: string;
  readonly provider: string;
  readonly resource: string;
}

/** "Work on run `runId` of this job, from its checkpoint." */
export interface HistoricalJobMessage extends BackfillJobKey {
  readonly type: 'historical';
  readonly runId: string;
}

/** "Fetch and store the stream of this workout." */
export interface WorkoutStreamJobMessage {
  readonly type: 'workout_stream';
  readonly userId: string;
  readonly provider: string;
  readonly workoutId: string;
  readonly order: OrderKey;
  /**
   * Set on a job sent again while it waits for the API key: when the waiting began (ISO). A stream
   * job has no status item, so its message carries the start of its wait.
   */
  readonly waitingSince?: string;
}

export type BackfillJobMessage = HistoricalJobMessage | WorkoutStreamJobMessage;

/** A backfill-queue message body that is not a job message: a bug or a foreign sender, never retried. */
export class InvalidJobMessageError extends NamedError {}

const isText = (value: unknown): value is string => typeof value === 'string' && value.length > 0;

/** Reads a queue message body; throws InvalidJobMessageError (without echoing the body) when it is not one. */
export function parseJobMessage(body: string): BackfillJobMessage {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(body) as Record<string, unknown>;
  } catch {
    throw new InvalidJobMessageError('backfill message is not JSON');
  }
  if (value?.type === 'historical' && [value.userId, value.provider, value.resource, value.runId].every(isText)) {
    const { userId, provider, resource, runId } = value as unknown as HistoricalJobMessage;
    return { type: 'historical', userId, provider, resource, runId };
  }
  if (value?.type === 'workout_stream' && [value.userId, value.provider, value.workoutId, value.order].every(isText)) {
    const { userId, provider, workoutId, order, waitingSince } = value as unknown as WorkoutStreamJobMessage;
    return { type: 'workout_stream', userId, provider, workoutId, order, ...(isText(waitingSince) && !Number.isNaN(Date.parse(waitingSince)) ? { waitingSince } : {}) };
  }
  throw new InvalidJobMessageError('backfill message has no valid type and fields');
}

/**
 * queued → running → completed, or → failed with a reason. A run whose API key is missing or
 * rejected is `waiting_for_api_key` (from queued or running, checkpoint kept) and goes on by itself,
 * back to running, at its first page that the key fetches; after `API_KEY_MAX_WAIT_MS` it fails
 * (`api_key_never_set`). See functions/domain/backfill-failure.ts.
 */
export type BackfillState = 'queued' | 'running' | 'waiting_for_api_key' | 'completed' | 'failed';

/** Where a run continues: the window to fetch next and, inside it, the page cursor (null = first page). */
export interface BackfillCheckpoint {
  readonly windowIndex: number;
  readonly cursor: string | null;
}

/** The status record of a job, which is also its checkpoint. Times are ISO strings. */
export interface BackfillStatus extends BackfillJobKey, BackfillCheckpoint {
  readonly runId: string;
  /**
   * The message order of the notice that started the run. Notices arrive in any order: a run is
   * replaced only by the run of a newer notice, so a late, older notice cannot cut a newer range short.
   * Absent on statuses written before it existed.
   */
  readonly runOrder?: OrderKey;
  readonly state: BackfillState;
  /** The normalised range (dates for date-only resources); the hull of `ranges` when the run has several. */
  readonly startDate: string;
  readonly endDate: string;
  /**
   * Present when the run fetches more than one range, in the order it fetches them (`planRun`): a
   * newer notice took over an older run's remainder disjoint from its own range, or a late, older
   * notice announced a range outside the run's (`decideNotice`, functions/domain/backfill-supersede.ts).
   */
  readonly ranges?: readonly BackfillRange[];
  readonly windowDays: number;
  readonly windowsTotal: number;
  readonly windowsDone: number;
  readonly pagesDone: number;
  /**
   * Records fetched and handed to the idempotent store (streams, for a workout_stream backfill);
   * a record on the shared boundary of two datetime windows counts twice.
   */
  readonly recordsStored: number;
  /**
   * Records the API sent that break the schema (no `id`, an unreadable `updated_at`, a sample
   * without a timestamp), kept aside under `held-back/` instead of stored. Absent until the first.
   */
  readonly heldBack?: number;
  /** How many times `vital-pipeline backfill retry` sent this run again after it had failed. */
  readonly retries?: number;
  /** When the last retry was sent. */
  readonly retriedAt?: string;
  /** Optimistic-concurrency version: every checkpoint write expects it and increments it. */
  readonly stepSeq: number;
  readonly lastError?: string;
  /** While `waiting_for_api_key` (and kept when the wait ends in failure): when the wait began. */
  readonly waitingSince?: string;
  /** While `waiting_for_api_key`: why (status and path, never the key). */
  readonly waitingReason?: string;
  /** While `waiting_for_api_key`: when the job tries again by itself. */
  readonly nextAttemptAt?: string;
  readonly queuedAt: string;
  readonly startedAt?: string;
  readonly updatedAt: string;
  readonly finishedAt?: string;
}

/** What the backfill function records after each page. */
export interface CheckpointAdvance {
  readonly next: BackfillCheckpoint;
  readonly windowsDone: number;
  readonly pagesAdded: number;
  readonly recordsAdded: number;
  /** Records of the page kept aside as unreadable (`held-back/`), not stored. */
  readonly heldBackAdded: number;
  /** True when this page was the last of the last window. */
  readonly completed: boolean;
  /**
   * The run's `windowsTotal` as the runner read it. A completing advance holds only while the run
   * still has that many: a late notice may have added ranges (`extend`) since the runner read it.
   */
  readonly windowsTotal: number;
}

/** What the backfill records when a run starts or goes on waiting for the API key. */
export interface ApiKeyWait {
  readonly reason: string;
  /** When the job message sent to try again becomes visible. */
  readonly nextAttemptAt: Date;
}

/**
 * The outcome of registering a run: whether a message must be sent for it, or (`changed`) whether
 * the stored run is no longer the one read before, so the caller must read it again.
 */
export type QueueOutcome = 'queued' | 'already_queued' | 'already_started' | 'changed';

/** The stored run a write was decided on: its id and its number of windows (which only `extend` changes). */
export interface ReadRun {
  readonly runId: string;
  readonly windowsTotal: number;
}

/** The ranges `extend` gives a run: its own, then those added (`planRun`), with their hull and windows. */
export interface ExtendedRanges {
  readonly startDate: string;
  readonly endDate: string;
  readonly ranges: readonly BackfillRange[];
  readonly windowsTotal: number;
}

/** Persistence of job status and checkpoints (the backfills table in AWS). */
export interface BackfillStatusStore {
  /**
   * Registers a run where the stored run is still `replacing` (the run read before, same id and
   * windows; null when none was stored): whether it may replace that run is `decideNotice`'s to say,
   * before. Says `changed` (and changes nothing) when the stored run is no longer the one read. A
   * second call for the same run id changes nothing and says whether the run has started.
   */
  queue(status: BackfillStatus, replacing: ReadRun | null): Promise<QueueOutcome>;
  /**
   * Adds ranges after a run's own, where the stored run is still `run` (same id and windows): its
   * windows and checkpoint stay. An unfinished run (`reopen` false: queued, running or waiting)
   * keeps its state, its job goes on into the new windows; a finished one (`reopen` true: completed
   * or failed) is put back to `queued` at its checkpoint, the first added window for a completed
   * run, and the caller sends its job message. False when the stored run is no longer `run` in that
   * state: read it again.
   */
  extend(key: BackfillJobKey, run: ReadRun, ranges: ExtendedRanges, reopen: boolean, at: Date): Promise<boolean>;
  /**
   * Records a notice whose range cannot be read on an item of its own (`failed`, with the reason),
   * next to the run it leaves alone; false when it was recorded already (a redelivery).
   */
  recordRejected(status: BackfillStatus): Promise<boolean>;
  get(key: BackfillJobKey): Promise<BackfillStatus | undefined>;
  /** Moves a queued run to `running` (no-op when it already runs or was superseded). */
  start(key: BackfillJobKey, runId: string, at: Date): Promise<void>;
  /**
   * Records progress if the stored run is `runId` at `expectedSeq`; false when another invocation
   * (a duplicate message) or a newer run got there first, which means this invocation must stop.
   */
  advance(key: BackfillJobKey, runId: string, expectedSeq: number, advance: CheckpointAdvance, at: Date): Promise<boolean>;
  /**
   * Marks the run `waiting_for_api_key` (from queued, running or waiting), keeping its checkpoint;
   * `waitingSince` is set by the first wait and kept by the next. Like `advance` it expects the step
   * sequence it read and increments it, so of two copies of a job only one goes on waiting; false
   * when another invocation or a newer run got there first.
   */
  waitForApiKey(key: BackfillJobKey, runId: string, expectedSeq: number, wait: ApiKeyWait, at: Date): Promise<boolean>;
  /** Notes a transient error on an unfinished job, keeping its checkpoint. */
  noteError(key: BackfillJobKey, runId: string, reason: string, at: Date): Promise<void>;
  /** Marks the run failed with a reason; false when the run was superseded. */
  fail(key: BackfillJobKey, runId: string, reason: string, at: Date): Promise<boolean>;
  /**
   * Puts a failed run (or one `isUnsentRetry`) back to `queued` (checkpoint, counters and `waitingSince` kept, `lastError`
   * and `finishedAt` removed, `retries` incremented), if it is still run `runId` and still failed;
   * false otherwise (it was retried, replayed or superseded meanwhile). The caller then sends its
   * job message: see `retryDecision` (functions/domain/backfill-retry.ts).
   */
  retry(key: BackfillJobKey, runId: string, at: Date): Promise<boolean>;
}

/** Sends job messages to the backfill queue. */
export interface BackfillQueue {
  send(message: BackfillJobMessage): Promise<void>;
  /**
   * Sends a job message that becomes visible after `delaySeconds` (1 to 900, SQS's limit): how a job
   * waiting for the API key sleeps without spending receives of its message.
   */
  sendLater(message: BackfillJobMessage, delaySeconds: number): Promise<void>;
}
