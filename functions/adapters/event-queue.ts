import { SendMessageCommand, type MessageAttributeValue, type SQSClient } from '@aws-sdk/client-sqs';
import {
  claimCheckKey,
  encodeAttributes,
  fitsOneMessage,
  SQS_MAX_MESSAGE_BYTES,
  type ClaimCheck,
  type QueuedEventAttributes,
} from '../domain/queued-event';

/** Makes a verified delivery durable. Resolves only once the event is stored; rejects otherwise. */
export interface EventQueue {
  /** `userId`: the user the body's envelope names, which labels a claim-checked body. */
  enqueue(event: QueuedEventAttributes & { readonly body: string; readonly userId?: string }): Promise<{ readonly claimChecked: boolean }>;
}

/** Keeps bodies too large for a queue message. */
export interface ClaimCheckStore {
  /** Keeps `body` under `key`, labelled with the user it belongs to (`ownerMetadata`), so an erasure finds it unread. */
  put(key: string, body: string, userId?: string): Promise<ClaimCheck>;
  get(claimCheck: ClaimCheck): Promise<string>;
}

export interface SqsEventQueueOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly claimChecks: ClaimCheckStore;
  /** Key prefix of claim-checked bodies. */
  readonly claimCheckPrefix?: string;
  /** Largest message sent inline; the SQS limit unless a test wants a smaller one. */
  readonly maxMessageBytes?: number;
}

function asMessageAttributes(attributes: Record<string, string>): Record<string, MessageAttributeValue> {
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [name, { DataType: 'String', StringValue: value }]),
  );
}

/** The SQS queue of the pipeline, with S3 claim checks for bodies that do not fit a message. */
export class SqsEventQueue implements EventQueue {
  constructor(private readonly options: SqsEventQueueOptions) {}

  async enqueue(event: QueuedEventAttributes & { readonly body: string; readonly userId?: string }): Promise<{ readonly claimChecked: boolean }> {
    const { sqs, queueUrl, claimChecks, claimCheckPrefix = 'raw-bodies/', maxMessageBytes = SQS_MAX_MESSAGE_BYTES } =
      this.options;
    const inline = encodeAttributes(event);
    if (fitsOneMessage(event.body, inline, maxMessageBytes)) {
      await sqs.send(
        new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: event.body, MessageAttributes: asMessageAttributes(inline) }),
      );
      return { claimChecked: false };
    }
    const claimCheck = await claimChecks.put(claimCheckKey(claimCheckPrefix, event.svixId, event.receivedAt), event.body, event.userId);
    const attributes = encodeAttributes(event, claimCheck);
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: attributes['claim-check']!,
        MessageAttributes: asMessageAttributes(attributes),
      }),
    );
    return { claimChecked: true };
  }
}
