import { SQSClient } from '@aws-sdk/client-sqs';

let client: SQSClient | undefined;

/** The container's SQS client; its endpoint honours `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL`. */
export const sqsClient = (): SQSClient => (client ??= new SQSClient({}));
