import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
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
  enqueue(event: QueuedEventAttributes & { readonly body: string }): Promise<{ readonly claimChecked: boolean }>;
}

/** Keeps bodies too large for a queue message. */
export interface ClaimCheckStore {
  put(key: string, body: string): Promise<ClaimCheck>;
  get(claimCheck: ClaimCheck): Promise<string>;
}

/** Claim-check bodies in an S3 bucket, under one prefix so that IAM can grant exactly that prefix. */
export class S3ClaimCheckStore implements ClaimCheckStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async put(key: string, body: string): Promise<ClaimCheck> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/json' }),
    );
    return { bucket: this.bucket, key };
  }

  async get(claimCheck: ClaimCheck): Promise<string> {
    const object = await this.s3.send(new GetObjectCommand({ Bucket: claimCheck.bucket, Key: claimCheck.key }));
    if (!object.Body) throw new Error(`claim-check object ${claimCheck.key} has no body`);
    return object.Body.transformToString('utf8');
  }
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

  async enqueue(event: QueuedEventAttributes & { readonly body: string }): Promise<{ readonly claimChecked: boolean }> {
    const { sqs, queueUrl, claimChecks, claimCheckPrefix = 'raw-bodies/', maxMessageBytes = SQS_MAX_MESSAGE_BYTES } =
      this.options;
    const inline = encodeAttributes(event);
    if (fitsOneMessage(event.body, inline, maxMessageBytes)) {
      await sqs.send(
        new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: event.body, MessageAttributes: asMessageAttributes(inline) }),
      );
      return { claimChecked: false };
    }
    const claimCheck = await claimChecks.put(claimCheckKey(claimCheckPrefix, event.svixId, event.receivedAt), event.body);
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
