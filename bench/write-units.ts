import { PutItemCommand, ScanCommand, type AttributeValue, type ConsumedCapacity, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { measureDenseTimeseriesCost } from '../local/storage-cost';
import { QUEUES, TABLES } from '../functions/shared/resources';
import { DAILY_SUMMARY_RESOURCES, heartRateEventBody, sqsEventsOf, summaryEventBodies } from './fixtures';
import { handlerEnvironment, startBenchDynamoDb, summariesTableOf, timeseriesTableOf, type BenchDynamoDb } from './local-dynamodb';
import { formatNumber, type Row } from './report';

/**
 * DynamoDB write units the worker spends per stored record, counted by DynamoDB Local itself
 * (`ReturnConsumedCapacity` on every write the worker's client sends, indexes included), against the
 * physical minimum: the units it takes to write each finally stored item exactly once, again as the
 * emulator counts them (one per started KB, base table only).
 */

const SECONDS_PER_DAY = 86_400;
/** Heart rate arrives in 5-minute batches: 300 samples per webhook, 288 webhooks a day. */
const HEART_RATE_BATCH_SECONDS = 300;
const SUMMARY_RECORDS = 40;
const DAY_START = '2024-05-14T00:00:00+00:00';

const WRITE_COMMANDS = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand', 'TransactWriteItemsCommand']);

/** Write units per table, base table and indexes apart. */
type UnitsByTable = Map<string, { table: number; indexes: number }>;

/** Makes every write `client` sends report its consumed capacity, and adds it up in `totals`. */
function meterWriteUnits(client: DynamoDBClient, totals: UnitsByTable): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (!WRITE_COMMANDS.has(context.commandName ?? '')) return next(args);
      (args.input as { ReturnConsumedCapacity?: string }).ReturnConsumedCapacity = 'INDEXES';
      const result = await next(args);
      const consumed = (result.output as { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] }).ConsumedCapacity;
      for (const entry of [consumed ?? []].flat()) {
        const total = totals.get(entry.TableName!) ?? { table: 0, indexes: 0 };
        total.table += entry.Table?.CapacityUnits ?? entry.CapacityUnits ?? 0;
        total.indexes += Object.values({ ...entry.LocalSecondaryIndexes, ...entry.GlobalSecondaryIndexes }).reduce((sum, index) => sum + (index.CapacityUnits ?? 0), 0);
        totals.set(entry.TableName!, total);
      }
      return result;
    },
    { step: 'initialize', name: 'benchWriteUnitMeter' },
  );
}

async function scanAll(client: DynamoDBClient, table: string): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey: startKey }));
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/** Base-table units to write every item of `source` once into `twin` (an empty table of the same schema). */
async function unitsToWriteOnce(client: DynamoDBClient, source: string, twin: string): Promise<{ units: number; items: Record<string, AttributeValue>[] }> {
  const items = await scanAll(client, source);
  let units = 0;
  for (const item of items) {
    const { ConsumedCapacity } = await client.send(new PutItemCommand({ TableName: twin, Item: item, ReturnConsumedCapacity: 'INDEXES' }));
    units += ConsumedCapacity?.Table?.CapacityUnits ?? 0;
  }
  return { units, items };
}

const unitsOf = (totals: UnitsByTable, table: string) => totals.get(table) ?? { table: 0, indexes: 0 };

function describeUnits(totals: UnitsByTable, tables: Record<string, string>, per: number): string {
  return Object.values(TABLES)
    .map((definition) => ({ name: definition.id, units: unitsOf(totals, tables[definition.envVar]!) }))
    .filter(({ units }) => units.table + units.indexes > 0)
    .map(({ name, units }) => `${name} ${formatNumber(units.table / per)}${units.indexes ? ` + index ${formatNumber(units.indexes / per)}` : ''}`)
    .join(', ');
}

const totalOf = (totals: UnitsByTable): number => [...totals.values()].reduce((sum, units) => sum + units.table + units.indexes, 0);

async function invokeAll(handler: (event: SQSEvent) => Promise<unknown>, events: readonly SQSEvent[]): Promise<void> {
  for (const event of events) {
    const response = (await handler(event)) as { batchItemFailures?: unknown[] } | undefined;
    if (response?.batchItemFailures?.length) throw new Error(`the worker failed ${response.batchItemFailures.length} records`);
  }
}

async function measure(db: BenchDynamoDb): Promise<Row[]> {
  const tables = await db.createTables('units-');
  const twins = await db.createTables('units-once-');
  Object.assign(process.env, handlerEnvironment(db.endpoint, tables));
  // Imported only now: the worker's clients read their endpoints from the environment when built.
  const { dynamoDbClient } = await import('../functions/adapters/aws-clients');
  const { createWorkerHandler, workerFromEnvironment } = await import('../functions/worker');
  const handler = createWorkerHandler(workerFromEnvironment());
  const totals: UnitsByTable = new Map();
  meterWriteUnits(dynamoDbClient(), totals);

  const dayStart = Date.parse(DAY_START);
  const heartRateBodies = Array.from({ length: SECONDS_PER_DAY / HEART_RATE_BATCH_SECONDS }, (_, index) =>
    heartRateEventBody(HEART_RATE_BATCH_SECONDS, { at: new Date(dayStart + index * HEART_RATE_BATCH_SECONDS * 1000).toISOString() }),
  );
  await invokeAll(handler, sqsEventsOf(heartRateBodies, QUEUES.events.batchSize));
  const heartRateTotals: UnitsByTable = new Map(totals);
  totals.clear();
  const timeseries = await unitsToWriteOnce(db.client, timeseriesTableOf(tables), timeseriesTableOf(twins));
  const storedSamples = timeseries.items.reduce((sum, item) => sum + Number(item.count?.N ?? 0), 0);
  if (storedSamples !== SECONDS_PER_DAY) throw new Error(`stored ${storedSamples} samples of ${SECONDS_PER_DAY}`);

  await invokeAll(handler, sqsEventsOf(summaryEventBodies(SUMMARY_RECORDS), QUEUES.events.batchSize));
  const summaries = await unitsToWriteOnce(db.client, summariesTableOf(tables), summariesTableOf(twins));
  if (summaries.items.length !== SUMMARY_RECORDS) throw new Error(`stored ${summaries.items.length} summaries of ${SUMMARY_RECORDS}`);

  // The record store's own figure (local/storage-cost.ts, no delivery dedupe), as a cross-check.
  const storeTables = await db.createTables('units-store-');
  const storeOnly = await measureDenseTimeseriesCost({
    documents: DynamoDBDocumentClient.from(db.client),
    summariesTable: summariesTableOf(storeTables),
    timeseriesTable: timeseriesTableOf(storeTables),
    eventMinutes: HEART_RATE_BATCH_SECONDS / 60,
  });

  const heartRateUnits = totalOf(heartRateTotals);
  const summaryUnits = totalOf(totals);
  return [
    {
      figure: `write units per sample, 1 Hz heart rate for a day (${SECONDS_PER_DAY / HEART_RATE_BATCH_SECONDS} webhooks of ${HEART_RATE_BATCH_SECONDS})`,
      measured: { value: heartRateUnits / SECONDS_PER_DAY, unit: 'WCU' },
      baseline: { value: timeseries.units / SECONDS_PER_DAY, unit: 'WCU', label: `each of the ${timeseries.items.length} stored items written once` },
      target: { on: 'value', bound: 'atMost', limit: 0.1 },
      limitedBy:
        `${formatNumber(heartRateUnits)} units a day: ${describeUnits(heartRateTotals, tables, SECONDS_PER_DAY)} per sample; ` +
        `the record store alone (local/storage-cost.ts) ${formatNumber(storeOnly.writeUnitsPerSample)}; ` +
        `a webhook that adds to a bucket rewrites the whole bucket, and every webhook costs its dedupe record`,
    },
    {
      figure: `write units per summary record (${DAILY_SUMMARY_RESOURCES.join(', ')})`,
      measured: { value: summaryUnits / SUMMARY_RECORDS, unit: 'WCU' },
      baseline: { value: summaries.units / SUMMARY_RECORDS, unit: 'WCU', label: 'the stored item written once' },
      target: { on: 'ratio', bound: 'atMost', limit: 1.2 },
      limitedBy: `per record: ${describeUnits(totals, tables, SUMMARY_RECORDS)} (delivery dedupe record and the record)`,
    },
  ];
}

/** Write units per heart-rate sample over a day, and per summary record. */
export async function run(): Promise<Row[]> {
  const db = await startBenchDynamoDb();
  try {
    return await measure(db);
  } finally {
    await db.stop();
  }
}
