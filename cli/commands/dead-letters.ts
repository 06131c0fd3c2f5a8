import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
  type MessageAttributeValue,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { S3DeliveryFailureStore } from '../../functions/adapters/delivery-failure-store';
import type { DeliveryFailure } from '../../functions/domain/delivery-failure';
import { parseJobMessage, type BackfillJobMessage } from '../../functions/domain/backfill-job';
import { ATTRIBUTE } from '../../functions/domain/queued-event';
import { BUCKET } from '../../functions/shared/resources';
import { readBackfillStatuses } from '../record-queries';
import type { QueueName } from '../../local/local-resources';
import type { PipelineTarget } from '../target';

/**
 * `inspect dlq` and `replay`: what sits in the dead-letter queues, why, and moving it back. Reading a
 * queue means receiving its messages (SQS has no peek), so every read holds the messages briefly and
 * then makes them visible again, and raises SQS's receive count; the attempts shown are therefore the
 * worker's own count from its failure note (functions/domain/delivery-failure.ts), which no look
 * changes, and the reason is the note's (a backfill job's: its run's last error). A replayed message keeps its body and attributes, its `svix-id`
 * above all, so it keeps its place in message order and finds what it already stored unchanged.
 */

/** How long a read holds messages: long enough to walk the whole queue. */
const HOLD_SECONDS = 60;
const MAX_RECEIVE = 10;
const RELEASE_AFTER_SECONDS = 1;

/** Messages read from a DLQ could not be made visible again (they reappear after the hold). */
export class DeadLetterReleaseError extends Error {}

/** `replay --svix-id` named svix-ids no dead letter has (the others were moved). */
export class DeadLetterNotFoundError extends Error {}

/** A dead letter, described without its payload. */
export interface DeadLetter {
  readonly queue: QueueName;
  readonly message_id: string;
  /** The delivery's svix-id; for a backfill job, the svix-id of the historical event that started it. */
  readonly svix_id: string | null;
  /** The event type; for a backfill job, `backfill:<job type>:<provider>/<resource or workout>`. */
  readonly event_type: string | null;
  /** When the verifier accepted the delivery (or SQS first got the message). */
  readonly received_at: string;
  /** The worker's attempts at the delivery before it was dead-lettered; null when no failure was noted. */
  readonly attempts: number | null;
  /** Why it failed (`ErrorName: message`, never a payload value): the last attempt's error, or a backfill run's last error. */
  readonly last_error: string | null;
  readonly failed_at: string | null;
}

/** What a message is, before the reason is looked up. */
type DescribedMessage = Omit<DeadLetter, 'attempts' | 'last_error' | 'failed_at'> & { readonly job?: BackfillJobMessage };

/** The outcome of a replay, per queue. */
export interface ReplayCount {
  readonly queue: QueueName;
  readonly moved: number;
  readonly left: number;
}

/** A replay: its count per queue looked in, and the svix-ids asked for that none of them held. */
export interface DeadLetterReplay {
  readonly counts: ReplayCount[];
  readonly notFound: string[];
}

function describe(queue: QueueName, message: Message): DescribedMessage {
  const attribute = (name: string) => message.MessageAttributes?.[name]?.StringValue;
  let svixId = attribute(ATTRIBUTE.svixId) ?? null;
  let eventType = attribute(ATTRIBUTE.eventType) ?? null;
  let job: BackfillJobMessage | undefined;
  if (!svixId && !eventType) {
    try {
      job = parseJobMessage(message.Body ?? '');
      if (job.type === 'historical') {
        svixId = job.runId;
        eventType = `backfill:historical:${job.provider}/${job.resource}`;
      } else {
        eventType = `backfill:workout_stream:${job.provider}/${job.workoutId}`;
      }
    } catch {
      // Neither a delivery nor a job: shown by its ids only.
    }
  }
  const sentAt = Number(message.Attributes?.SentTimestamp ?? Date.now());
  return {
    queue,
    message_id: message.MessageId!,
    svix_id: svixId,
    event_type: eventType,
    received_at: attribute(ATTRIBUTE.receivedAt) ?? new Date(sentAt).toISOString(),
    ...(job ? { job } : {}),
  };
}

/**
 * Adds why each letter failed: a delivery's failure note, or for a backfill job its run's last
 * error (the run is marked failed with it when its message reaches the DLQ).
 */
async function withReasons(
  target: PipelineTarget,
  described: readonly DescribedMessage[],
  onWarning: (text: string) => void,
): Promise<DeadLetter[]> {
  const deliveries = described.filter((letter) => !letter.job);
  const noteOf = new Map<string, DeliveryFailure | undefined>();
  if (deliveries.length > 0) {
    try {
      const notes = await new S3DeliveryFailureStore(target.s3, target.bucket, BUCKET.prefixes.deliveryFailures).latestOf(
        deliveries.map((letter) => ({ ...(letter.svix_id ? { svixId: letter.svix_id } : {}), messageId: letter.message_id })),
      );
      deliveries.forEach((letter, index) => noteOf.set(letter.message_id, notes[index]));
    } catch (error) {
      // The dead letters are worth showing without their reasons.
      onWarning(`Could not read the failure notes (${(error as Error).name}: needs s3:ListBucket and s3:GetObject on ${BUCKET.prefixes.deliveryFailures} of ${target.bucket}): attempts and errors are not shown`);
    }
  }
  const statusesOf = new Map<string, Awaited<ReturnType<typeof readBackfillStatuses>>>();
  const letters: DeadLetter[] = [];
  for (const { job, ...letter } of described) {
    if (job?.type === 'historical') {
      if (!statusesOf.has(job.userId)) statusesOf.set(job.userId, await readBackfillStatuses(target.dynamodb, target.tables.backfills, { userId: job.userId }));
      // The run this job belongs to; a newer notice's run may have replaced it since.
      const run = statusesOf.get(job.userId)!.find((status) => status.provider === job.provider && status.resource === job.resource && status.runId === job.runId);
      letters.push({ ...letter, attempts: null, last_error: run?.lastError ?? null, failed_at: run?.finishedAt ?? null });
    } else if (job) {
      // A workout-stream job keeps no status: its failures are in the backfill's log only.
      letters.push({ ...letter, attempts: null, last_error: null, failed_at: null });
    } else {
      const note = noteOf.get(letter.message_id);
      letters.push({ ...letter, attempts: note?.attempt ?? null, last_error: note?.reason ?? null, failed_at: note?.failedAt ?? null });
    }
  }
  return letters;
}

/** Receives every message of a queue (holding them for `HOLD_SECONDS`). */
async function receiveAll(sqs: SQSClient, queueUrl: string, onProgress: (count: number) => void): Promise<Message[]> {
  const messages: Message[] = [];
  const seen = new Set<string>();
  for (;;) {
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: MAX_RECEIVE,
        WaitTimeSeconds: 1,
        VisibilityTimeout: HOLD_SECONDS,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    const fresh = (Messages ?? []).filter((message) => !seen.has(message.MessageId!));
    if (fresh.length === 0) return messages;
    for (const message of fresh) seen.add(message.MessageId!);
    messages.push(...fresh);
    onProgress(messages.length);
  }
}

/**
 * Makes held messages visible again, after a second rather than at once: fauxqs with persistence
 * loses a message whose visibility timeout is set to 0 (its SQLite write fails midway).
 */
async function release(sqs: SQSClient, queueUrl: string, messages: readonly Message[]): Promise<void> {
  for (let start = 0; start < messages.length; start += MAX_RECEIVE) {
    const { Failed } = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages.slice(start, start + MAX_RECEIVE).map((message, index) => ({
          Id: String(index),
          ReceiptHandle: message.ReceiptHandle!,
          VisibilityTimeout: RELEASE_AFTER_SECONDS,
        })),
      }),
    );
    if (Failed?.length) throw new DeadLetterReleaseError(`${Failed.length} message(s) stay hidden for ${HOLD_SECONDS} s: ${Failed[0]!.Code}`);
  }
}

/** The attributes to send again: SendMessage takes only the value fields. */
function resendable(attributes: Message['MessageAttributes']): Record<string, MessageAttributeValue> | undefined {
  if (!attributes || Object.keys(attributes).length === 0) return undefined;
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [
      name,
      {
        DataType: value.DataType!,
        ...(value.StringValue !== undefined ? { StringValue: value.StringValue } : {}),
        ...(value.BinaryValue !== undefined ? { BinaryValue: value.BinaryValue } : {}),
      },
    ]),
  );
}

const queueNames = (target: PipelineTarget, only?: QueueName): QueueName[] =>
  only ? [only] : (Object.keys(target.queues) as QueueName[]);

/** Lists the dead letters of every queue (or one), oldest first. */
export async function inspectDeadLetters(
  target: PipelineTarget,
  options: { queue?: QueueName; onProgress?: (text: string) => void; onWarning?: (text: string) => void } = {},
): Promise<DeadLetter[]> {
  const described: DescribedMessage[] = [];
  for (const queue of queueNames(target, options.queue)) {
    const url = target.queues[queue].deadLetterUrl;
    const messages = await receiveAll(target.sqs, url, (count) => options.onProgress?.(`Reading the ${queue} DLQ: ${count}`));
    described.push(...messages.map((message) => describe(queue, message)));
    await release(target.sqs, url, messages);
  }
  const letters = await withReasons(target, described, options.onWarning ?? (() => undefined));
  return letters.sort((a, b) => a.received_at.localeCompare(b.received_at));
}

/**
 * Moves dead letters back to their queues: all of them, or those of the given svix-ids. Each message
 * is sent again before it is deleted from the DLQ, so a failure midway duplicates, never loses.
 */
export async function replayDeadLetters(
  target: PipelineTarget,
  options: { queue?: QueueName; svixIds?: readonly string[]; onProgress?: (text: string) => void } = {},
): Promise<DeadLetterReplay> {
  const wanted = options.svixIds && options.svixIds.length > 0 ? new Set(options.svixIds) : undefined;
  const found = new Set<string>();
  const counts: ReplayCount[] = [];
  for (const queue of queueNames(target, options.queue)) {
    const { url, deadLetterUrl } = target.queues[queue];
    const messages = await receiveAll(target.sqs, deadLetterUrl, (count) => options.onProgress?.(`Reading the ${queue} DLQ: ${count}`));
    const chosen = messages.filter((message) => {
      const svixId = describe(queue, message).svix_id ?? '';
      if (wanted?.has(svixId)) found.add(svixId);
      return !wanted || wanted.has(svixId);
    });
    let moved = 0;
    for (const message of chosen) {
      const attributes = resendable(message.MessageAttributes);
      await target.sqs.send(
        new SendMessageCommand({ QueueUrl: url, MessageBody: message.Body!, ...(attributes ? { MessageAttributes: attributes } : {}) }),
      );
      await target.sqs.send(new DeleteMessageCommand({ QueueUrl: deadLetterUrl, ReceiptHandle: message.ReceiptHandle! }));
      moved += 1;
      options.onProgress?.(`Replaying the ${queue} DLQ: ${moved} of ${chosen.length}`);
    }
    const kept = messages.filter((message) => !chosen.includes(message));
    await release(target.sqs, deadLetterUrl, kept);
    counts.push({ queue, moved, left: kept.length });
  }
  return { counts, notFound: [...(wanted ?? [])].filter((svixId) => !found.has(svixId)) };
}
