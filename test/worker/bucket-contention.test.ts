import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createWorkerHandler } from '../../functions/worker';
import { exampleEvent } from '../../functions/domain/example-events';
import { delivery, lambdaContext, sqsRecord, startWorkerHarness, type WorkerHarness } from './harness';

/**
 * Contention never dead-letters a valid message. A burst of events for one user's bucket, spread
 * over as many worker containers as the event source mapping runs at once (`QUEUES.events`:
 * maxConcurrency 10, batches of 10), must all land in one delivery each: no record may be reported
 * failed, since every failure counts toward `maxReceiveCount` and, repeated, ends in the DLQ. (A merge
 * used to give up after 6 conflicts.)
 */

const CONTAINERS = 10;
const BATCH = 10;
const SAMPLES_PER_EVENT = 3;

describe('a burst of events for one bucket', () => {
  let harness: WorkerHarness;
  before(async () => {
    harness = await startWorkerHarness();
  });
  after(() => harness.stop());

  it(`lands all ${CONTAINERS * BATCH} events, from ${CONTAINERS} containers at once, each on its first receive`, async () => {
    const userId = 'user-burst';
    const bucketStartMs = Date.parse('2024-05-14T08:00:00Z');
    // Event n carries seconds 3n..3n+2 of one 5-minute bucket: together they fill it, one sample a second.
    const records = Array.from({ length: CONTAINERS * BATCH }, (_, n) =>
      sqsRecord(
        exampleEvent('daily.data.heartrate.created', {
          userId,
          at: new Date(bucketStartMs + n * SAMPLES_PER_EVENT * 1000),
          sampleCount: SAMPLES_PER_EVENT,
          sampleIntervalSeconds: 1,
          seed: n,
        }),
        delivery(`2024-05-14T08:06:${String(n % 60).padStart(2, '0')}Z`),
      ),
    );
    const responses = await Promise.all(
      Array.from({ length: CONTAINERS }, (_, container) =>
        createWorkerHandler(harness.dependencies({ ports: harness.containerPorts() }))(
          { Records: records.slice(container * BATCH, (container + 1) * BATCH) },
          lambdaContext(),
        ),
      ),
    );
    assert.deepEqual(responses.flatMap((response) => response.batchItemFailures), [], 'no record failed, so none is retried toward the DLQ');
    const { samples } = await harness.records.readTimeseries(userId, 'heartrate', { from: '2024-05-14T08:00:00Z', to: '2024-05-14T08:04:59Z' });
    assert.equal(samples.length, CONTAINERS * BATCH * SAMPLES_PER_EVENT, 'every sample of every event is in the bucket');
    const writers = new Set(samples.map((stored) => stored.origin?.svixId));
    assert.equal(writers.size, CONTAINERS * BATCH, 'each event wrote its own samples');
  });
});
