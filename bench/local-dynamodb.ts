import { BatchWriteItemCommand, DynamoDBClient, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { createTables } from '../local/provision';
import { LOCAL_AWS, startDynamoDbLocal } from '../local/stand-ins';
import { BUCKET, QUEUES, TABLES } from '../functions/shared/resources';
import type { BenchEventBridge } from './change-events';

/**
 * DynamoDB Local for the storage benchmarks: the project's tables, a client, the environment the
 * worker reads, and a write-unit meter. Every figure of a benchmark and its baseline comes from the
 * same emulator process.
 */

export interface BenchDynamoDb {
  readonly endpoint: string;
  readonly client: DynamoDBClient;
  /** Table names by environment variable, for tables created under `prefix`. */
  createTables(prefix: string): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export async function startBenchDynamoDb(): Promise<BenchDynamoDb> {
  const standIn = await startDynamoDbLocal();
  const client = new DynamoDBClient({ endpoint: standIn.endpoint, ...LOCAL_AWS });
  return {
    endpoint: standIn.endpoint,
    client,
    createTables: (prefix) => createTables(client, prefix),
    stop: async () => {
      client.destroy();
      await standIn.stop();
    },
  };
}

/**
 * The environment a deployed worker (or backfill) gets, pointed at the emulator, and at the
 * EventBridge stand-in for its change events. SQS and S3 get endpoints where nothing listens: the
 * benchmark's events never reach them, and a call would fail.
 */
export function handlerEnvironment(endpoint: string, tables: Record<string, string>, changeEvents: BenchEventBridge): Record<string, string> {
  const nowhere = 'http://127.0.0.1:9';
  return {
    AWS_REGION: LOCAL_AWS.region,
    AWS_ACCESS_KEY_ID: LOCAL_AWS.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_AWS.credentials.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    AWS_ENDPOINT_URL_SQS: nowhere,
    AWS_ENDPOINT_URL_S3: nowhere,
    ...tables,
    ...changeEvents.environment,
    [BUCKET.envVar]: 'bench-raw-bodies',
    ...Object.fromEntries(Object.values(QUEUES).flatMap((queue) => [[queue.envVar, `${nowhere}/000000000000/${queue.id}`], [queue.deadLetterEnvVar, `${nowhere}/000000000000/${queue.id}-dlq`]])),
  };
}

const BATCH_WRITE_LIMIT = 25;

/** Writes `items` with BatchWriteItem, 25 a request, one request at a time, resending unprocessed items. */
export async function batchWriteAll(client: DynamoDBClient, table: string, items: readonly Record<string, AttributeValue>[]): Promise<void> {
  for (let index = 0; index < items.length; index += BATCH_WRITE_LIMIT) {
    let requests = items.slice(index, index + BATCH_WRITE_LIMIT).map((item) => ({ PutRequest: { Item: item } }));
    while (requests.length > 0) {
      const { UnprocessedItems } = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
      requests = (UnprocessedItems?.[table] ?? []) as typeof requests;
    }
  }
}

/** The summaries table's name among the created tables. */
export const summariesTableOf = (tables: Record<string, string>): string => tables[TABLES.summaries.envVar]!;
/** The timeseries table's name among the created tables. */
export const timeseriesTableOf = (tables: Record<string, string>): string => tables[TABLES.timeseries.envVar]!;
