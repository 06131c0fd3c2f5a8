/**
 * Every SDK client of the pipeline, for tests and tools. Handlers import the one module per client
 * they use instead, so that a cold start loads only those clients.
 */
export { dynamoDbClient } from './dynamodb-client';
export { eventBridgeClient } from './eventbridge-client';
export { s3Client } from './s3-client';
export { sqsClient } from './sqs-client';
