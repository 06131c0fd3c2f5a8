import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

let client: DynamoDBClient | undefined;

/** The container's DynamoDB client; its endpoint honours `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL`. */
export const dynamoDbClient = (): DynamoDBClient => (client ??= new DynamoDBClient({}));
