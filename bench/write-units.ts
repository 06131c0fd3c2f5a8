import { PutItemCommand, ScanCommand, type AttributeValue, type ConsumedCapacity, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { DynamoDbRecordStore } from '../functions/adapters/record-store';
import { DELIVERY_PATTERNS, denseDayDeliveries } from '../local/storage-cost';
import { QUEUES, TABLES } from '../functions/shared/resources';
import { describePublished, PUT_EVENTS_BILLING_CHUNK, startBenchEventBridge, type BenchEventBridge, type PublishedChangeEvents } from './change-events';
import { DAILY_SUMMARY_RESOURCES, sqsEventsOf, summaryEventBodies } from './fixtures';
import { handlerEnvironment, startBenchDynamoDb, summariesTableOf, timeseriesTableOf, type BenchDynamoDb } from './local-dynamodb';
import { formatNumber, type Row } from './report';

/**
 * DynamoDB write units the worker spends per stored record, counted by DynamoDB Local itself
 * (`ReturnConsumedCapacity` on every write the worker's client sends, indexes included), against the
 * physical minimum: the units it takes to write each finally stored item exactly once, again as the
 * emulator counts them (one per started KB, base table only). A day of 1 Hz heart rate goes through
 * the real worker handler in both delivery patterns of docs/storage.md (`local/storage-cost.ts`),
 * and is then read back: the requests for the day and for one instant are figures too. So are the
 * change events the worker publishes meanwhile, as EventBridge bills them (docs/cost.md).
 */

const SECONDS_PER_DAY = 86_400;
const SUMMARY_RECORDS = 40;
/** The day `denseDayDeliveries` fills, and an instant in it. */
const DAY_START = '2024-05-14T00:00:00Z';
const DAY_END = '2024-05-14T23:59:59.999Z';
const INSTANT = '2024-05-14T10:00:00Z';

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

/**
 * Base-table units to write every item of `source` whose pk starts with `pkPrefix` once into `twin`
 * (an empty table of the same schema), and those items.
 */
async function unitsToWriteOnce(
  client: DynamoDBClient,
  source: string,
  twin: string,
  pkPrefix = '',
): Promise<{ units: number; items: Record<string, AttributeValue>[] }> {
  const items = (await scanAll(client, source)).filter((item) => item.pk?.S?.startsWith(pkPrefix));
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

/** PutEvents entries billed per webhook: one change event for the resource a webhook touches, under 64 KB. */
function changeEventsRow(subject: string, webhooks: number, published: PublishedChangeEvents, why: string): Row {
  return {
    figure: `change events billed per webhook (PutEvents entries of 64 KB), ${subject}`,
    measured: { value: published.billed / webhooks, unit: 'entries' },
    target: { on: 'value', bound: 'atMost', limit: 1 },
    limitedBy:
      `${published.entries} entries (${describePublished(published)}) in ${published.calls} PutEvents calls for ${webhooks} webhooks; ` +
      `the largest ${formatNumber(published.largest)} bytes, billed per started ${PUT_EVENTS_BILLING_CHUNK / 1024} KB; ${why}`,
  };
}

async function measure(db: BenchDynamoDb, changeEvents: BenchEventBridge): Promise<Row[]> {
  const tables = await db.createTables('units-');
  const twins = await db.createTables('units-once-');
  Object.assign(process.env, handlerEnvironment(db.endpoint, tables, changeEvents));
  // Imported only now: the worker's clients read their endpoints from the environment when built.
  const { dynamoDbClient } = await import('../functions/adapters/aws-clients');
  const { createWorkerHandler, workerFromEnvironment } = await import('../functions/worker');
  const handler = createWorkerHandler(workerFromEnvironment());
  const totals: UnitsByTable = new Map();
  meterWriteUnits(dynamoDbClient(), totals);
  const rows: Row[] = [];

  for (const [index, pattern] of DELIVERY_PATTERNS.entries()) {
    const userId = `bench-user-${index}`;
    const deliveries = denseDayDeliveries(pattern, userId);
    totals.clear();
    changeEvents.reset();
    await invokeAll(
      handler,
      sqsEventsOf(deliveries.map(({ body }) => JSON.stringify(body)), QUEUES.events.batchSize, deliveries.map(({ createdAt }) => createdAt)),
    );
    const patternTotals: UnitsByTable = new Map(totals);
    const published = changeEvents.published();
    const stored = await unitsToWriteOnce(db.client, timeseriesTableOf(tables), timeseriesTableOf(twins), `${userId}#`);
    const storedSamples = stored.items.reduce((sum, item) => sum + Number(item.count?.N ?? 0), 0);
    if (storedSamples !== SECONDS_PER_DAY) throw new Error(`stored ${storedSamples} samples of ${SECONDS_PER_DAY}`);
    const units = totalOf(patternTotals);
    const store = new DynamoDbRecordStore(DynamoDBDocumentClient.from(db.client), {
      summariesTable: summariesTableOf(tables),
      timeseriesTable: timeseriesTableOf(tables),
    });
    const day = await store.readTimeseries(userId, 'heartrate', { from: DAY_START, to: DAY_END });
    const instant = await store.readTimeseries(userId, 'heartrate', { from: INSTANT, to: INSTANT });
    if (day.samples.length !== SECONDS_PER_DAY || instant.samples.length !== 1) throw new Error(`read ${day.samples.length} samples of the day, ${instant.samples.length} at ${INSTANT}`);
    // One write unit per started KB: the items' own sizes, rounded up per item.
    const dayKilobytes = stored.units;
    rows.push(
      {
        figure: `write units per stored sample, 1 Hz heart rate for a day, ${pattern} (${deliveries.length} webhooks)`,
        measured: { value: units / SECONDS_PER_DAY, unit: 'WCU' },
        baseline: { value: stored.units / SECONDS_PER_DAY, unit: 'WCU', label: `each of the ${stored.items.length} stored items written once` },
        target: { on: 'value', bound: 'atMost', limit: 0.05 },
        limitedBy:
          `${formatNumber(units)} units a day: ${describeUnits(patternTotals, tables, SECONDS_PER_DAY)} per sample; ` +
          `items of at most ${formatNumber(dayKilobytes / stored.items.length)} KB on average (at most ${formatNumber((dayKilobytes * 1024) / SECONDS_PER_DAY)} bytes a sample in plain attributes); ` +
          `every merge rewrites its whole bucket, so a re-sent window pays its bucket again`,
      },
      {
        figure: `requests to read one day of one resource (1 Hz heart rate, ${pattern})`,
        measured: { value: day.requests, unit: 'requests' },
        target: { on: 'value', bound: 'atMost', limit: 10 },
        limitedBy: `one Query over the day's sort-key range, paged by DynamoDB at 1 MB: at most ${formatNumber(dayKilobytes)} KB in ${stored.items.length} items`,
      },
      {
        figure: `requests to read the sample at one instant (${pattern})`,
        measured: { value: instant.requests, unit: 'requests' },
        target: { on: 'value', bound: 'atMost', limit: 1 },
        limitedBy: 'one Query for the sort keys of the bucket holding the instant (one per provider and source type)',
      },
      changeEventsRow(`1 Hz heart rate for a day, ${pattern}`, deliveries.length, published, 'one per webhook: a re-sent window publishes again, its records counted unchanged'),
    );
  }

  totals.clear();
  changeEvents.reset();
  await invokeAll(handler, sqsEventsOf(summaryEventBodies(SUMMARY_RECORDS), QUEUES.events.batchSize));
  const summaries = await unitsToWriteOnce(db.client, summariesTableOf(tables), summariesTableOf(twins));
  if (summaries.items.length !== SUMMARY_RECORDS) throw new Error(`stored ${summaries.items.length} summaries of ${SUMMARY_RECORDS}`);
  const summaryUnits = totalOf(totals);
  rows.push({
    figure: `write units per summary record (${DAILY_SUMMARY_RESOURCES.join(', ')})`,
    measured: { value: summaryUnits / SUMMARY_RECORDS, unit: 'WCU' },
    baseline: { value: summaries.units / SUMMARY_RECORDS, unit: 'WCU', label: 'the stored item written once' },
    target: { on: 'ratio', bound: 'atMost', limit: 1.2 },
    limitedBy: `per record: ${describeUnits(totals, tables, SUMMARY_RECORDS)}: one conditional put of the record, nothing else`,
  });
  rows.push(changeEventsRow(`one summary record each (${DAILY_SUMMARY_RESOURCES.join(', ')})`, SUMMARY_RECORDS, changeEvents.published(), 'one per record'));
  return rows;
}

/** Write units per heart-rate sample over a day in both delivery patterns, read requests, units per summary record, and change events per webhook. */
export async function run(): Promise<Row[]> {
  const [db, changeEvents] = await Promise.all([startBenchDynamoDb(), startBenchEventBridge()]);
  try {
    return await measure(db, changeEvents);
  } finally {
    await Promise.all([db.stop(), changeEvents.stop()]);
  }
}
