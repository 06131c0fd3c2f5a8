import { randomUUID } from 'node:crypto';
import type { SQSEvent } from 'aws-lambda';
import { exampleEvent } from '../functions/domain/example-events';
import { newMessageId } from '../functions/domain/message-order';
import { encodeAttributes } from '../functions/domain/queued-event';
import { toSqsRecord } from '../local/event-source-mapping';
import { LOCAL_AWS } from '../local/stand-ins';

/**
 * Webhook bodies for the benchmarks, from the project's own realistic examples (heart-rate batches
 * of a chosen size, summary records), and the SQS events that carry them to the worker.
 * `test/support/signing.ts` signs bodies for the verifier.
 */

/** A `daily.data.heartrate.created` body of `sampleCount` samples, one a second from `at`. */
export function heartRateEventBody(sampleCount: number, options: { readonly at?: string; readonly seed?: number } = {}): string {
  return JSON.stringify(exampleEvent('daily.data.heartrate.created', { sampleCount, sampleIntervalSeconds: 1, ...options }));
}

/** The heart-rate body whose length is closest to `bytes` (within half a sample). */
export function heartRateEventBodyOfSize(bytes: number): string {
  const oneSample = heartRateEventBody(1).length;
  const perSample = heartRateEventBody(2).length - oneSample;
  return heartRateEventBody(Math.max(1, 1 + Math.round((bytes - oneSample) / perSample)));
}

/** Summary resources a day of data typically brings, one record each. */
export const DAILY_SUMMARY_RESOURCES = ['sleep', 'activity', 'workouts', 'body'] as const;

/** `count` distinct summary events (distinct record ids), cycling through `DAILY_SUMMARY_RESOURCES`. */
export function summaryEventBodies(count: number, seedOffset = 0): string[] {
  return Array.from({ length: count }, (_, index) =>
    JSON.stringify(
      exampleEvent(`daily.data.${DAILY_SUMMARY_RESOURCES[index % DAILY_SUMMARY_RESOURCES.length]}.created`, {
        seed: seedOffset + index + 1,
      }),
    ),
  );
}

/**
 * SQS events as the worker's event source mapping hands them over: the bodies in batches of
 * `batchSize`, each record carrying the attributes the verifier writes and a fresh svix-id, created
 * now or at the time given for its body (`createdAt`, which orders the messages).
 */
export function sqsEventsOf(bodies: readonly string[], batchSize: number, createdAt?: readonly Date[]): SQSEvent[] {
  const receivedAt = new Date();
  const records = bodies.map((body, index) => {
    const attributes = encodeAttributes({
      svixId: newMessageId(createdAt?.[index] ?? receivedAt),
      svixTimestamp: String(Math.floor(receivedAt.getTime() / 1000)),
      eventType: (JSON.parse(body) as { event_type: string }).event_type,
      receivedAt: receivedAt.toISOString(),
    });
    return toSqsRecord(
      {
        MessageId: `bench-${index}-${randomUUID()}`,
        ReceiptHandle: `bench-${index}`,
        Body: body,
        MessageAttributes: Object.fromEntries(Object.entries(attributes).map(([name, value]) => [name, { DataType: 'String', StringValue: value }])),
      },
      `arn:aws:sqs:${LOCAL_AWS.region}:000000000000:bench-events`,
    );
  });
  const events: SQSEvent[] = [];
  for (let index = 0; index < records.length; index += batchSize) events.push({ Records: records.slice(index, index + batchSize) });
  return events;
}
