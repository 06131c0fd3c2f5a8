import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { setTimeout as sleep } from 'node:timers/promises';
import { VISIBILITY_TIMEOUT_RATIO, type QueueDefinition } from '../functions/shared/resources';
import { invokeLocally, type LocalFunction } from './lambda-invocation';
import { LOCAL_AWS } from './stand-ins';

/**
 * A local stand-in for Lambda's SQS event source mapping with `ReportBatchItemFailures`, which no
 * emulator provides. Like the real one it receives up to `batchSize` messages (waiting up to the
 * batching window to fill a batch), runs at most `maxConcurrency` invocations at once, deletes every
 * message the handler did not report as failed, and leaves failed ones alone: they reappear after
 * the queue's visibility timeout, and the queue's redrive policy moves a message that keeps failing
 * to its dead-letter queue. fauxqs applies the redrive policy on receive, as SQS does, so the
 * mapping needs no DLQ logic of its own.
 *
 * Where Lambda refuses a mapping whose queue's visibility timeout is shorter than the function's
 * timeout, this one holds the stack's stricter rule (`VISIBILITY_TIMEOUT_RATIO`), so no runner (the
 * local pipeline, a test harness) can hand a message to a second invocation while the first runs.
 */

/** A function consuming an SQS queue: returns the failed items, or nothing when all succeeded. */
export type SqsFunction = LocalFunction<SQSEvent, SQSBatchResponse | void | undefined>;

/** The settings of a mapping, taken from the queue's definition. */
export type MappingSettings = Pick<
  QueueDefinition,
  'batchSize' | 'maxBatchingWindowSeconds' | 'maxConcurrency' | 'maxReceiveCount'
>;

/** What became of one message in one invocation. */
export interface MessageOutcome {
  readonly record: SQSRecord;
  readonly functionName: string;
  /** How often the message has been received, this time included. */
  readonly receiveCount: number;
  readonly maxReceiveCount: number;
  /** `processed` messages are deleted; `failed` ones reappear after the visibility timeout. */
  readonly result: 'processed' | 'failed';
  /** Why the whole batch failed (the handler threw, timed out, or answered nonsense). */
  readonly batchError?: Error;
}

export interface EventSourceMappingOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly settings: MappingSettings;
  readonly function: SqsFunction;
  /** Called once per message per invocation; the local pipeline prints one line from it. */
  readonly onOutcome?: (outcome: MessageOutcome) => void;
  /** Called when receiving or deleting fails (a stand-in went away); polling goes on. */
  readonly onPollError?: (error: Error) => void;
}

/** The handler answered with an item identifier that was not in its batch. */
export class InvalidBatchResponseError extends Error {}

/** The queue's visibility timeout is shorter than `VISIBILITY_TIMEOUT_RATIO` times the function's timeout. */
export class UnsafeVisibilityTimeoutError extends Error {}

/** SQS hands out at most 10 messages per ReceiveMessage. */
const SQS_MAX_RECEIVE = 10;
/** Long-poll wait for the first message of a batch. */
const LONG_POLL_SECONDS = 5;
const BATCHING_POLL_INTERVAL_MS = 50;
const POLL_ERROR_BACKOFF_MS = 1_000;

/** A message as Lambda hands it to the function. */
export function toSqsRecord(message: Message, queueArn: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  const messageAttributes: SQSRecord['messageAttributes'] = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    messageAttributes[name] = {
      dataType: value.DataType ?? 'String',
      ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
      ...(value.BinaryValue !== undefined ? { binaryValue: Buffer.from(value.BinaryValue).toString('base64') } : {}),
      stringListValues: [],
      binaryListValues: [],
    };
  }
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes,
    md5OfBody: message.MD5OfBody ?? '',
    ...(message.MD5OfMessageAttributes ? { md5OfMessageAttributes: message.MD5OfMessageAttributes } : {}),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: LOCAL_AWS.region,
  };
}

/**
 * The message ids to keep on the queue, as Lambda reads the response: nothing means success;
 * an identifier that is empty or not in the batch fails the whole batch.
 */
function failedMessageIds(response: SQSBatchResponse | void | undefined, batch: readonly SQSRecord[]): Set<string> {
  const failures = response?.batchItemFailures ?? [];
  const inBatch = new Set(batch.map((record) => record.messageId));
  for (const failure of failures) {
    if (!failure?.itemIdentifier || !inBatch.has(failure.itemIdentifier)) {
      throw new InvalidBatchResponseError('The handler reported a batch item failure that is not in its batch');
    }
  }
  return new Set(failures.map((failure) => failure.itemIdentifier));
}

/** A running mapping; `stop()` ends polling and waits for invocations in flight. */
export class SqsEventSourceMapping {
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];

  constructor(private readonly options: EventSourceMappingOptions) {}

  /** Checks the queue's visibility timeout against the function's timeout, then starts `maxConcurrency` pollers. */
  async start(): Promise<this> {
    const { sqs, queueUrl, function: fn } = this.options;
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['VisibilityTimeout'] }));
    const visibilityTimeoutSeconds = Number(Attributes?.VisibilityTimeout);
    if (!(visibilityTimeoutSeconds >= VISIBILITY_TIMEOUT_RATIO * fn.timeoutSeconds)) {
      throw new UnsafeVisibilityTimeoutError(
        `The queue's visibility timeout (${Attributes?.VisibilityTimeout} s) is under ${VISIBILITY_TIMEOUT_RATIO} times ` +
          `the ${fn.name} function's timeout (${fn.timeoutSeconds} s): a message could reach a second invocation while the first still runs`,
      );
    }
    for (let i = 0; i < this.options.settings.maxConcurrency; i += 1) this.loops.push(this.poll());
    return this;
  }

  /**
   * Stops polling and waits up to `graceMs` for invocations in flight. One still running after that
   * is abandoned: its messages were not deleted, so they reappear after the visibility timeout.
   */
  async stop(graceMs = 5_000): Promise<void> {
    this.abort.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.loops),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private async poll(): Promise<void> {
    while (!this.stopped) {
      try {
        const batch = await this.gatherBatch();
        if (batch.length > 0) await this.invoke(batch);
      } catch (error) {
        if (this.stopped) return;
        this.options.onPollError?.(error as Error);
        await sleep(POLL_ERROR_BACKOFF_MS, undefined, { signal: this.abort.signal }).catch(() => undefined);
      }
    }
  }

  private async receive(maxMessages: number, waitSeconds: number): Promise<Message[]> {
    const { Messages } = await this.options.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.options.queueUrl,
        MaxNumberOfMessages: Math.min(maxMessages, SQS_MAX_RECEIVE),
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
      { abortSignal: this.abort.signal },
    );
    return Messages ?? [];
  }

  /** Long-polls for a first message, then fills the batch until it is full or the window closes. */
  private async gatherBatch(): Promise<Message[]> {
    const { batchSize, maxBatchingWindowSeconds } = this.options.settings;
    const batch = await this.receive(batchSize, LONG_POLL_SECONDS);
    if (batch.length === 0) return batch;
    const windowEnds = Date.now() + maxBatchingWindowSeconds * 1000;
    while (batch.length < batchSize && Date.now() < windowEnds && !this.stopped) {
      const more = await this.receive(batchSize - batch.length, 0);
      if (more.length === 0) await sleep(BATCHING_POLL_INTERVAL_MS);
      batch.push(...more);
    }
    return batch;
  }

  private async invoke(messages: Message[]): Promise<void> {
    const { function: fn, settings, onOutcome } = this.options;
    const records = messages.map((message) => toSqsRecord(message, this.options.queueArn));
    let failed: Set<string>;
    let batchError: Error | undefined;
    try {
      failed = failedMessageIds(await invokeLocally(fn, { Records: records }), records);
    } catch (error) {
      batchError = error as Error;
      failed = new Set(records.map((record) => record.messageId));
    }
    const processed = records.filter((record) => !failed.has(record.messageId));
    await this.delete(processed);
    for (const record of records) {
      onOutcome?.({
        record,
        functionName: fn.name,
        receiveCount: Number(record.attributes.ApproximateReceiveCount),
        maxReceiveCount: settings.maxReceiveCount,
        result: failed.has(record.messageId) ? 'failed' : 'processed',
        ...(batchError ? { batchError } : {}),
      });
    }
  }

  private async delete(records: readonly SQSRecord[]): Promise<void> {
    for (let start = 0; start < records.length; start += SQS_MAX_RECEIVE) {
      const chunk = records.slice(start, start + SQS_MAX_RECEIVE);
      const { Failed } = await this.options.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.options.queueUrl,
          Entries: chunk.map((record, index) => ({ Id: String(index), ReceiptHandle: record.receiptHandle })),
        }),
      );
      if (Failed?.length) throw new Error(`Could not delete ${Failed.length} processed message(s): ${Failed[0]!.Code}`);
    }
  }
}
