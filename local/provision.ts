import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  type AttributeDefinition,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { TABLES, type TableDefinition } from '../functions/shared/resources';

/**
 * Creates the pipeline's tables on a DynamoDB stand-in, exactly as `TABLES` describes them (keys,
 * local secondary indexes), so the local pipeline and the tests run on the same
 * layout the CDK stack deploys. Tables only: queues and the bucket are set up elsewhere.
 */

/** The table name a definition gets under a prefix (the prefix keeps parallel test files apart). */
export function localTableName(namePrefix: string, table: TableDefinition): string {
  return `${namePrefix}${table.id}`;
}

function attributeDefinitions(table: TableDefinition): AttributeDefinition[] {
  const keys = [table.partitionKey, table.sortKey, ...(table.localSecondaryIndexes ?? []).map((index) => index.sortKey)];
  const byName = new Map<string, AttributeDefinition>();
  for (const key of keys) if (key) byName.set(key.name, { AttributeName: key.name, AttributeType: key.type });
  return [...byName.values()];
}

async function createTable(client: DynamoDBClient, name: string, table: TableDefinition): Promise<void> {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: attributeDefinitions(table),
        KeySchema: [
          { AttributeName: table.partitionKey.name, KeyType: 'HASH' },
          ...(table.sortKey ? [{ AttributeName: table.sortKey.name, KeyType: 'RANGE' as const }] : []),
        ],
        LocalSecondaryIndexes: table.localSecondaryIndexes?.map((index) => ({
          IndexName: index.indexName,
          KeySchema: [
            { AttributeName: table.partitionKey.name, KeyType: 'HASH' },
            { AttributeName: index.sortKey.name, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        })),
      }),
    );
  } catch (error) {
    // An existing table (a persisted local database, a second start) is what we want already.
    if (error instanceof ResourceInUseException) return;
    throw error;
  }
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    if (Table?.TableStatus === 'ACTIVE') break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Creates every table of `TABLES` under `namePrefix` (idempotent) and returns the environment the
 * handlers read their table names from, e.g. `{ SUMMARIES_TABLE: '<prefix>Summaries', ... }`.
 */
export async function createTables(client: DynamoDBClient, namePrefix: string): Promise<Record<string, string>> {
  const environment: Record<string, string> = {};
  await Promise.all(
    Object.values(TABLES).map(async (table: TableDefinition) => {
      const name = localTableName(namePrefix, table);
      await createTable(client, name, table);
      environment[table.envVar] = name;
    }),
  );
  return environment;
}
