import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';

/**
 * The smallest useful SQS producer: the size and module-init baseline of the verifier's bundle. It
 * builds its client on first use, as the verifier does, so both bundles do the same work at init.
 */
let sqs: SQSClient | undefined;

export const handler = async (event: { readonly body?: string }): Promise<{ statusCode: number }> => {
  sqs ??= new SQSClient({});
  await sqs.send(new SendMessageCommand({ QueueUrl: process.env.EVENTS_QUEUE_URL, MessageBody: event.body }));
  return { statusCode: 202 };
};
