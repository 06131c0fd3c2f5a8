import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDbRecordStore } from '../functions/adapters/record-store';
import { exampleEvent } from '../functions/domain/example-events';
import { newMessageId, orderKeyOfDelivery } from '../functions/domain/message-order';
import { DEFAULT_BUCKET_SECONDS } from '../functions/domain/timeseries-bucket';

/**
 * Measures what a dense timeseries costs in the real store: a day of 1 Hz heart rate (86,400
 * samples), delivered in one of the two patterns of docs/storage.md. Write units are what DynamoDB
 * reports (`ReturnConsumedCapacity: TOTAL`, which DynamoDB Local computes as AWS does: one unit per
 * started KB of the larger of the old and new item); the read figures are the Query requests that
 * read the day back, and those that read the samples at one instant.
 */

const SECONDS_PER_DAY = 86_400;

/** How a day of 1 Hz heart rate reaches the pipeline. */
export type DeliveryPattern =
  /** 288 events of 5 minutes of samples, in order (a wearable syncing every 5 minutes). */
  | 'five-minute batches'
  /**
   * 24 events of an hour of samples, in order, then a re-send, in newer messages, of every tenth
   * 5-minute window with changed values (HealthKit re-sending partly filled buckets).
   */
  | 'hourly batches and 10% re-sent';

export const DELIVERY_PATTERNS: readonly DeliveryPattern[] = ['five-minute batches', 'hourly batches and 10% re-sent'];

/** One webhook of a pattern: its body and when Svix created the message (which orders it). */
export interface PatternDelivery {
  readonly body: ReturnType<typeof exampleEvent>;
  readonly createdAt: Date;
}

/** The webhooks of a day of 1 Hz heart rate for `userId` in `pattern`, in the order they are sent. */
export function denseDayDeliveries(pattern: DeliveryPattern, userId: string, day = '2024-05-14'): PatternDelivery[] {
  const dayStartMs = Date.parse(`${day}T00:00:00Z`);
  const batch = (startSecond: number, seconds: number, seed: number): PatternDelivery => ({
    body: exampleEvent('daily.data.heartrate.created', {
      userId,
      at: new Date(dayStartMs + startSecond * 1000),
      seed,
      sampleCount: seconds,
      sampleIntervalSeconds: 1,
    }),
    // Synced a minute after the last sample, as a device upload would be.
    createdAt: new Date(dayStartMs + (startSecond + seconds + 60) * 1000),
  });
  if (pattern === 'five-minute batches') {
    return Array.from({ length: SECONDS_PER_DAY / 300 }, (_, index) => batch(index * 300, 300, index));
  }
  const hours = Array.from({ length: 24 }, (_, index) => batch(index * 3600, 3600, index));
  // Re-sent a day later, so every re-send is a newer message than the hour it changes.
  const resends = Array.from({ length: SECONDS_PER_DAY / 300 / 10 }, (_, index) => {
    const resend = batch(index * 3000, 300, 1000 + index);
    return { ...resend, createdAt: new Date(resend.createdAt.getTime() + SECONDS_PER_DAY * 1000) };
  });
  return [...hours, ...resends];
}

export interface DenseSeriesCost {
  readonly deliveryPattern: DeliveryPattern;
  readonly bucketSeconds: number;
  readonly samples: number;
  readonly events: number;
  readonly writeUnits: number;
  readonly writeUnitsPerSample: number;
  readonly readRequestsForDay: number;
  readonly readUnitsForDay: number;
  readonly readRequestsForInstant: number;
  readonly largestItemBytes: number;
}

export interface DenseSeriesCostOptions {
  readonly documents: DynamoDBDocumentClient;
  readonly summariesTable: string;
  readonly timeseriesTable: string;
  readonly pattern: DeliveryPattern;
  readonly userId?: string;
  readonly day?: string;
}

/** Writes and reads back one day of 1 Hz heart rate in `pattern` and reports the consumed capacity. */
export async function measureDenseTimeseriesCost(options: DenseSeriesCostOptions): Promise<DenseSeriesCost> {
  const { documents, pattern, userId = 'cost-user', day = '2024-05-14' } = options;
  let writeUnits = 0;
  let readUnits = 0;
  let largestItemBytes = 0;
  const middlewareName = `measure-capacity-${userId}`;
  documents.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { ReturnConsumedCapacity?: string; Item?: unknown };
      input.ReturnConsumedCapacity = 'TOTAL';
      if (input.Item) largestItemBytes = Math.max(largestItemBytes, Buffer.byteLength(JSON.stringify(input.Item)));
      const result = await next(args);
      const units = (result.output as { ConsumedCapacity?: { CapacityUnits?: number } }).ConsumedCapacity?.CapacityUnits ?? 0;
      if (input.Item) writeUnits += units;
      else readUnits += units;
      return result;
    },
    { step: 'initialize', name: middlewareName },
  );
  try {
    const store = new DynamoDbRecordStore(documents, options);
    const deliveries = denseDayDeliveries(pattern, userId, day);
    for (const { body, createdAt } of deliveries) {
      const svixId = newMessageId(createdAt);
      await store.storeTimeseries({
        userId,
        resource: 'heartrate',
        source: { provider: 'oura', type: 'ring' },
        samples: body.data.data as Record<string, unknown>[],
        order: orderKeyOfDelivery(svixId, createdAt.getTime()),
        origin: { svixId, receivedAt: createdAt.toISOString() },
      });
    }
    const readUnitsBefore = readUnits;
    const { samples, requests } = await store.readTimeseries(userId, 'heartrate', { from: `${day}T00:00:00Z`, to: `${day}T23:59:59.999Z` });
    if (samples.length !== SECONDS_PER_DAY) throw new Error(`read back ${samples.length} of ${SECONDS_PER_DAY} samples`);
    const readUnitsForDay = readUnits - readUnitsBefore;
    const instant = `${day}T10:00:00Z`;
    const atInstant = await store.readTimeseries(userId, 'heartrate', { from: instant, to: instant });
    if (atInstant.samples.length !== 1) throw new Error(`read ${atInstant.samples.length} samples at ${instant}`);
    return {
      deliveryPattern: pattern,
      bucketSeconds: DEFAULT_BUCKET_SECONDS,
      samples: SECONDS_PER_DAY,
      events: deliveries.length,
      writeUnits,
      writeUnitsPerSample: writeUnits / SECONDS_PER_DAY,
      readRequestsForDay: requests,
      readUnitsForDay,
      readRequestsForInstant: atInstant.requests,
      largestItemBytes,
    };
  } finally {
    documents.middlewareStack.remove(middlewareName);
  }
}
