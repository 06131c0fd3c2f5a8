import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { resourceNamed } from '../domain/catalogue';
import type { BackfillRequests, HistoricalNotice, WorkoutStreamNotice } from '../domain/backfill-requests';
import type { BackfillJobMessage, BackfillQueue, BackfillStatus, BackfillStatusStore } from '../domain/backfill-job';
import { DEFAULT_WINDOW_DAYS, InvalidBackfillRangeError, planBackfill } from '../domain/backfill-plan';

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

/** A notice for a resource the catalogue does not know: the worker classifies events, so this is a bug. */
export class UnknownBackfillResourceError extends Error {
  override readonly name = 'UnknownBackfillResourceError';
}

export interface QueuedBackfillRequestsOptions {
  readonly statuses: BackfillStatusStore;
  readonly queue: BackfillQueue;
  readonly windowDays?: number;
  readonly now?: () => Date;
}

/**
 * Turns notices into backfill jobs: a historical notice becomes a run (id = the event's `svix-id`)
 * recorded as `queued` in the status store, then one job message; a workout-stream notice becomes one
 * stream message. The status is written before the message is sent, so the backfill function always
 * finds the run it is asked to work on. A redelivered notice for a run still queued sends the message
 * again (the first send may be the one that failed; a duplicate message is harmless); for a run that
 * has started it sends nothing.
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
    let status: BackfillStatus;
    try {
      // A historical workout_stream notice backfills the streams of the workouts in its range.
      const plan = planBackfill(resource.kind === 'stream' ? resourceNamed('workouts')! : resource, notice.startDate, notice.endDate, this.windowDays);
      status = { ...run, state: 'queued', startDate: plan.startDate, endDate: plan.endDate, windowsTotal: plan.windows.length };
    } catch (error) {
      if (!(error instanceof InvalidBackfillRangeError)) throw error;
      // An unreadable range can never succeed: record the run as failed with the reason, send nothing.
      await this.options.statuses.queue({
        ...run,
        state: 'failed',
        startDate: notice.startDate,
        endDate: notice.endDate,
        windowsTotal: 0,
        lastError: error.message,
        finishedAt: at,
      });
      return;
    }
    const outcome = await this.options.statuses.queue(status);
    if (outcome === 'already_started' || outcome === 'superseded') return;
    await this.options.queue.send({ type: 'historical', userId: status.userId, provider: status.provider, resource: status.resource, runId: status.runId });
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
