import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logger, metrics } from '../shared/observability';
import { listingResourceOf, resourceNamed } from '../domain/catalogue';
import type { BackfillRequests, HistoricalNotice, WorkoutStreamNotice } from '../domain/backfill-requests';
import type { BackfillJobMessage, BackfillQueue, BackfillStatus, BackfillStatusStore } from '../domain/backfill-job';
import { DEFAULT_WINDOW_DAYS, rangesOfRun } from '../domain/backfill-plan';
import { decideNotice } from '../domain/backfill-supersede';
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
  /**
   * A notice's range cannot be read: it is recorded failed and no job is sent; `runKept` when a run
   * was stored for its key (then left as it was, the notice recorded on an item of its own).
   */
  invalidRange(resource: string, reason: string, runKept?: boolean): void;
  /** A late, older notice's range reached outside the newer run's: the run also fetches those parts; `reopened` when it had finished. */
  rangesAdded?(resource: string, added: number, reopened: boolean): void;
}

/**
 * The deployed listener: a run failed at request time counts in `BackfillFailures` (alarm
 * `BackfillsFailed`) and logs an ERROR line, as a run that fails in the backfill function does.
 */
export const OBSERVED_REQUESTS: BackfillRequestListener = {
  invalidRange: (resource, reason, runKept = false) => {
    metrics.addMetric('BackfillFailures', MetricUnit.Count, 1);
    logger.error(
      runKept
        ? 'Backfill failed: the announced range cannot be read; no job sent, the stored run left as it was'
        : 'Backfill failed: the announced range cannot be read; no job sent',
      { resource, reason },
    );
  },
  rangesAdded: (resource, added, reopened) => {
    logger.info('Late historical notice: the parts of its range outside the newer run are added to that run', { resource, added, reopened });
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
 * has started it sends nothing. What a notice does to the run stored for its key is `decideNotice`'s
 * rule (functions/domain/backfill-supersede.ts): a newer notice's run takes over what the older run
 * had left, a late, older notice adds to the newer run the parts of its range outside it, and a
 * notice whose range cannot be read never touches a run. The status is read, decided on, and written
 * only if it is still the run read, so the union of the announced ranges is fetched however notices race.
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
    const listener = this.options.listener ?? OBSERVED_REQUESTS;
    const send = (of: Pick<BackfillStatus, 'userId' | 'provider' | 'resource' | 'runId'> = run) =>
      this.options.queue.send({ type: 'historical', userId: of.userId, provider: of.provider, resource: of.resource, runId: of.runId });
    for (let attempt = 1; ; attempt += 1) {
      if (attempt > MAX_QUEUE_ATTEMPTS) throw new BackfillStatusContentionError(`backfill status of ${notice.resource} changed under ${MAX_QUEUE_ATTEMPTS} attempts in a row`);
      const stored = await this.options.statuses.get(run);
      const decision = decideNotice(listing, notice, stored, this.windowDays);
      switch (decision.kind) {
        case 'duplicate':
          // A redelivery: the run's message may be the one whose send failed, while it is still queued.
          if (stored?.state === 'queued' && stored.windowsTotal > 0) await send();
          return;
        case 'covered':
          return;
        case 'unreadable': {
          // An unreadable range can never succeed: recorded as failed with the reason, nothing sent.
          const failed: BackfillStatus = { ...run, state: 'failed', startDate: notice.startDate, endDate: notice.endDate, windowsTotal: 0, lastError: decision.reason, finishedAt: at };
          if (decision.ownItem) {
            const kept = `${decision.reason}: notice ${run.runId} ignored, run ${stored!.runId} of this backfill left as it was`;
            if (await this.options.statuses.recordRejected({ ...failed, lastError: kept })) listener.invalidRange(notice.resource, decision.reason, true);
            return;
          }
          const outcome = await this.options.statuses.queue(failed, null);
          if (outcome === 'changed') continue;
          if (outcome === 'queued') listener.invalidRange(notice.resource, decision.reason);
          return;
        }
        case 'new_run': {
          // The failed record of an unreadable notice in the run's place stays listed, on an item of its own.
          if (decision.keepRejected) await this.options.statuses.recordRejected({ ...stored!, lastError: `${stored!.lastError ?? 'the announced range cannot be read'}: notice ${stored!.runId} ignored, run ${run.runId} of this backfill took its place` });
          const status: BackfillStatus = { ...run, state: 'queued', ...decision.plan };
          const outcome = await this.options.statuses.queue(status, stored ?? null);
          // Another notice for the same key was registered between the read and the write: read it and decide again.
          if (outcome === 'changed') continue;
          if (outcome !== 'already_started') await send();
          return;
        }
        case 'extend': {
          if (!(await this.options.statuses.extend(run, stored!, decision.plan, decision.reopen, this.now()))) continue;
          listener.rangesAdded?.(notice.resource, decision.plan.ranges.length - rangesOfRun(stored!).length, decision.reopen);
          // An unfinished run's job goes on into the windows added; a finished one needs its job again.
          if (decision.reopen) await send(stored!);
          return;
        }
      }
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
