import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
  type MessageAttributeValue,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { parseJobMessage } from '../../functions/domain/backfill-job';
import { ATTRIBUTE } from '../../functions/domain/queued-event';
import type { QueueName } from '../../local/local-resources';
import type { PipelineTarget } from '../target';

/**
 * `inspect dlq` and `replay`: what sits in the dead-letter queues, and moving it back. Reading a
 * queue means receiving its messages (SQS has no peek), so every read holds the messages briefly and
 * then makes them visible again. A replayed message keeps its body and attributes, its `svix-id`
 * above all, so it keeps its place in message order and finds what it already stored unchanged.
 */

/** How long a read holds messages: long enough to walk the whole queue. */
const HOLD_SECONDS = 60;
const MAX_RECEIVE = 10;
const RELEASE_AFTER_SECONDS = 1;

/** Messages read from a DLQ could not be made visible again (they reappear after the hold). */
export class DeadLetterReleaseError extends Error {}

/** A dead letter, described without its payload. */
export interface DeadLetter {
  readonly queue: QueueName;
  readonly message_id: string;
  /** The delivery's svix-id; for a backfill job, the svix-id of the historical event that started it. */
  readonly svix_id: string | null;
  /** The event type; for a backfill job, `backfill:<job type>:<provider>/<resource or workout>`. */
  readonly event_type: string | null;
  /** Receives so far, this inspection's excluded. */
  readonly receive_count: number;
  /** When the verifier accepted the delivery (or SQS first got the message). */
  readonly received_at: string;
}

/** The outcome of a replay, per queue. */
export interface ReplayCount {
  readonly queue: QueueName;
  readonly moved: number;
  readonly left: number;
}

function describe(queue: QueueName, message: Message): DeadLetter {
  const attribute = (name: string) => message.MessageAttributes?.[name]?.StringValue;
  let svixId = attribute(ATTRIBUTE.svixId) ?? null;
  let eventType = attribute(ATTRIBUTE.eventType) ?? null;
  if (!svixId && !eventType) {
    try {
      const job = parseJobMessage(message.Body ?? '');
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
    receive_count: Math.max(0, Number(message.Attributes?.ApproximateReceiveCount ?? 1) - 1),
    received_at: attribute(ATTRIBUTE.receivedAt) ?? new Date(sentAt).toISOString(),
  };
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
  options: { queue?: QueueName; onProgress?: (text: string) => void } = {},
): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  for (const queue of queueNames(target, options.queue)) {
    const url = target.queues[queue].deadLetterUrl;
    const messages = await receiveAll(target.sqs, url, (count) => options.onProgress?.(`Reading the ${queue} DLQ: ${count}`));
    letters.push(...messages.map((message) => describe(queue, message)));
    await release(target.sqs, url, messages);
  }
  return letters.sort((a, b) => a.received_at.localeCompare(b.received_at));
}

/**
 * Moves dead letters back to their queues: all of them, or those of the given svix-ids. Each message
 * is sent again before it is deleted from the DLQ, so a failure midway duplicates, never loses.
 */
export async function replayDeadLetters(
  target: PipelineTarget,
  options: { queue?: QueueName; svixIds?: readonly string[]; onProgress?: (text: string) => void } = {},
): Promise<ReplayCount[]> {
  const wanted = options.svixIds && options.svixIds.length > 0 ? new Set(options.svixIds) : undefined;
  const counts: ReplayCount[] = [];
  for (const queue of queueNames(target, options.queue)) {
    const { url, deadLetterUrl } = target.queues[queue];
    const messages = await receiveAll(target.sqs, deadLetterUrl, (count) => options.onProgress?.(`Reading the ${queue} DLQ: ${count}`));
    const chosen = messages.filter((message) => !wanted || wanted.has(describe(queue, message).svix_id ?? ''));
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
  return counts;
}
