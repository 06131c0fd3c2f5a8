import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';

/**
 * The smallest useful DynamoDB writer: the size and module-init baseline of the worker's bundle. It
 * builds its client on first use, as the worker does, so both bundles do the same work at init.
 */
let dynamodb: DynamoDBClient | undefined;

export const handler = async (event: { readonly id: string }): Promise<void> => {
  dynamodb ??= new DynamoDBClient({});
  await dynamodb.send(new PutItemCommand({ TableName: process.env.SUMMARIES_TABLE, Item: { pk: { S: event.id }, sk: { S: event.id } } }));
};
