import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logger, metrics } from '../shared/observability';
import { listingResourceOf, resourceNamed } from '../domain/catalogue';
import type { BackfillRequests, HistoricalNotice, WorkoutStreamNotice } from '../domain/backfill-requests';
import type { BackfillJobMessage, BackfillQueue, BackfillStatus, BackfillStatusStore } from '../domain/backfill-job';
import { DEFAULT_WINDOW_DAYS, InvalidBackfillRangeError, planBackfill } from '../domain/backfill-plan';
import { rangeCoveringRemainder } from '../domain/backfill-supersede';
import { NamedError } from '../domain/named-error';

/** Reads and conditional writes of one notice's status that may lose to other notices before it gives up. */
const MAX_QUEUE_ATTEMPTS = 5;

/** The backfill queue (`BACKFILL_QUEUE_URL`). Messages are small JSON job descriptions, never data. */
export class SqsBackfillQueue implements BackfillQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(message: BackfillJobMessage): Promise<void> {
    await this.sqs.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify(message) }));
  }

  async sendLater(message: BackfillJobMessage, delaySeconds: number): Promise<void> {
    await this.sqs.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify(message), DelaySeconds: delaySeconds }));
  }
}

/** Other notices for the same key kept replacing the status between a read and a write: the worker's SQS retry tries again. */
export class BackfillStatusContentionError extends NamedError {}

/** A notice for a resource the catalogue does not know: the worker classifies events, so this is a bug. */
export class UnknownBackfillResourceError extends NamedError {}

/** Told of notices that fail at once, for metrics and logs: the resource and the reason, never the notice. */
export interface BackfillRequestListener {
  /** A notice's range cannot be read: its run is recorded failed and no job is sent. */
  invalidRange(resource: string, reason: string): void;
}

/**
 * The deployed listener: a run failed at request time counts in `BackfillFailures` (alarm
 * `BackfillsFailed`) and logs an ERROR line, as a run that fails in the backfill function does.
 */
export const OBSERVED_REQUESTS: BackfillRequestListener = {
  invalidRange: (resource, reason) => {
    metrics.addMetric('BackfillFailures', MetricUnit.Count, 1);
    logger.error('Backfill failed: the announced range cannot be read; no job sent', { resource, reason });
  },
};

export interface QueuedBackfillRequestsOptions {
  readonly statuses: BackfillStatusStore;
  readonly queue: BackfillQueue;
  /** @default OBSERVED_REQUESTS (the function's shared metrics and logger) */
  readonly listener?: BackfillRequestListener;
  readonly windowDays?: number;
  readonly now?: () => Date;
}

/**
 * Turns notices into backfill jobs: a historical notice becomes a run (id = the event's `svix-id`)
 * recorded as `queued` in the status store, then one job message; a workout-stream notice becomes one
 * stream message. The status is written before the message is sent, so the backfill function always
 * finds the run it is asked to work on. A redelivered notice for a run still queued sends the message
 * again (the first send may be the one that failed; a duplicate message is harmless); for a run that
 * has started it sends nothing. A run that replaces an unfinished older one takes over what that run
 * had left (`rangeCoveringRemainder`): the status is read, merged, and written only if it is still
 * the run read, so the union of the announced ranges is fetched however notices race.
 */
export class QueuedBackfillRequests implements BackfillRequests {
  private readonly windowDays: number;
  private readonly now: () => Date;

  constructor(private readonly options: QueuedBackfillRequestsOptions) {
    this.windowDays = options.windowDays ?? DEFAULT_WINDOW_DAYS;
    this.now = options.now ?? (() => new Date());
  }

  async requestHistorical(notice: HistoricalNotice): Promise<void> {
    const resource = resourceNamed(notice.resource);
    if (!resource) throw new UnknownBackfillResourceError(`no catalogue entry for resource ${notice.resource}`);
    const at = this.now().toISOString();
    const run = {
      userId: notice.userId,
      provider: notice.provider,
      resource: notice.resource,
      runId: notice.svixId,
      runOrder: notice.order,
      windowIndex: 0,
      cursor: null,
      windowDays: this.windowDays,
      windowsDone: 0,
      pagesDone: 0,
      recordsStored: 0,
      stepSeq: 0,
      queuedAt: at,
      updatedAt: at,
    };
    // A historical workout_stream notice backfills the streams of the workouts in its range.
    const listing = listingResourceOf(resource);
    for (let attempt = 1; ; attempt += 1) {
      const stored = await this.options.statuses.get(run);
      // A run this notice replaces hands over what it had left (functions/domain/backfill-supersede.ts).
      const older = stored && stored.runId !== run.runId && (stored.runOrder ?? '') < run.runOrder ? stored : undefined;
      let status: BackfillStatus;
      let unreadableRange: string | undefined;
      try {
        const range = rangeCoveringRemainder(listing, notice, older);
        const plan = planBackfill(listing, range.startDate, range.endDate, this.windowDays);
        status = { ...run, state: 'queued', startDate: plan.startDate, endDate: plan.endDate, windowsTotal: plan.windows.length };
      } catch (error) {
        if (!(error instanceof InvalidBackfillRangeError)) throw error;
        // An unreadable range can never succeed: record the run as failed with the reason, send nothing.
        unreadableRange = error.message;
        status = { ...run, state: 'failed', startDate: notice.startDate, endDate: notice.endDate, windowsTotal: 0, lastError: error.message, finishedAt: at };
      }
      const outcome = await this.options.statuses.queue(status, stored?.runId ?? null);
      if (outcome === 'changed') {
        // Another notice for the same key was registered between the read and the write: read it and merge again.
        if (attempt >= MAX_QUEUE_ATTEMPTS) throw new BackfillStatusContentionError(`backfill status of ${notice.resource} changed under ${attempt} attempts in a row`);
        continue;
      }
      if (unreadableRange !== undefined) {
        if (outcome === 'queued') (this.options.listener ?? OBSERVED_REQUESTS).invalidRange(notice.resource, unreadableRange);
        return;
      }
      if (outcome === 'already_started' || outcome === 'superseded') return;
      await this.options.queue.send({ type: 'historical', userId: status.userId, provider: status.provider, resource: status.resource, runId: status.runId });
      return;
    }
  }

  async requestWorkoutStream(notice: WorkoutStreamNotice): Promise<void> {
    await this.options.queue.send({
      type: 'workout_stream',
      userId: notice.userId,
      provider: notice.provider,
      workoutId: notice.workoutId,
      order: notice.order,
    });
  }
}
