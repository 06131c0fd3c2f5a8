import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDbRecordStore } from '../functions/adapters/record-store';
import { exampleEvent } from '../functions/domain/example-events';
import { newMessageId, orderKeyOfDelivery } from '../functions/domain/message-order';
import { DEFAULT_BUCKET_MINUTES } from '../functions/domain/timeseries-bucket';

/**
 * Measures what a dense timeseries costs in the real store: a day of 1 Hz heart rate (86,400
 * samples) delivered the way wearables sync, as events of `eventMinutes` of samples each, in order.
 * Write units are what DynamoDB reports (`ReturnConsumedCapacity: TOTAL`, which DynamoDB Local
 * computes as AWS does: one unit per started KB of the larger of the old and new item); the read
 * figure is the number of Query requests that read the day back.
 */

export interface DenseSeriesCost {
  readonly deliveryPattern: string;
  readonly bucketMinutes: number;
  readonly samples: number;
  readonly events: number;
  readonly writeUnits: number;
  readonly writeUnitsPerSample: number;
  readonly readRequestsForDay: number;
  readonly readUnitsForDay: number;
  readonly largestItemBytes: number;
}

export interface DenseSeriesCostOptions {
  readonly documents: DynamoDBDocumentClient;
  readonly summariesTable: string;
  readonly timeseriesTable: string;
  readonly userId?: string;
  /** Minutes of samples per event (default 5). */
  readonly eventMinutes?: number;
  readonly day?: string;
}

/** Writes and reads back one day of 1 Hz heart rate and reports the consumed capacity. */
export async function measureDenseTimeseriesCost(options: DenseSeriesCostOptions): Promise<DenseSeriesCost> {
  const { documents, userId = 'cost-user', eventMinutes = 5, day = '2024-05-14' } = options;
  let writeUnits = 0;
  let readUnits = 0;
  let largestItemBytes = 0;
  const middlewareName = `measure-capacity-${userId}`;
  documents.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { ReturnConsumedCapacity?: string; Item?: { samples?: Uint8Array } };
      input.ReturnConsumedCapacity = 'TOTAL';
      if (input.Item?.samples) largestItemBytes = Math.max(largestItemBytes, input.Item.samples.byteLength);
      const result = await next(args);
      const output = result.output as { ConsumedCapacity?: { CapacityUnits?: number } };
      const units = output.ConsumedCapacity?.CapacityUnits ?? 0;
      if ((args.input as { Item?: unknown }).Item) writeUnits += units;
      else readUnits += units;
      return result;
    },
    { step: 'initialize', name: middlewareName },
  );
  try {
    const store = new DynamoDbRecordStore(documents, options);
    const dayStartMs = Date.parse(`${day}T00:00:00Z`);
    const events = (24 * 60) / eventMinutes;
    for (let index = 0; index < events; index += 1) {
      const at = new Date(dayStartMs + index * eventMinutes * 60_000);
      const event = exampleEvent('daily.data.heartrate.created', {
        userId,
        at,
        seed: index,
        sampleCount: eventMinutes * 60,
        sampleIntervalSeconds: 1,
      });
      // Synced a minute after the last sample, as a device upload would be.
      const sentAt = new Date(at.getTime() + (eventMinutes + 1) * 60_000);
      await store.storeTimeseries({
        userId,
        resource: 'heartrate',
        source: { provider: 'oura', type: 'ring' },
        samples: event.data.data as Record<string, unknown>[],
        order: orderKeyOfDelivery(newMessageId(sentAt), sentAt.getTime()),
      });
    }
    const readUnitsBefore = readUnits;
    const { samples, requests } = await store.readTimeseries(userId, 'heartrate', {
      from: `${day}T00:00:00Z`,
      to: `${day}T23:59:59.999Z`,
    });
    const writtenSamples = events * eventMinutes * 60;
    if (samples.length !== writtenSamples) throw new Error(`read back ${samples.length} of ${writtenSamples} samples`);
    return {
      deliveryPattern: `${events} events of ${eventMinutes} min of 1 Hz samples, in order, one provider`,
      bucketMinutes: DEFAULT_BUCKET_MINUTES,
      samples: writtenSamples,
      events,
      writeUnits,
      writeUnitsPerSample: writeUnits / writtenSamples,
      readRequestsForDay: requests,
      readUnitsForDay: readUnits - readUnitsBefore,
      largestItemBytes,
    };
  } finally {
    documents.middlewareStack.remove(middlewareName);
  }
}
