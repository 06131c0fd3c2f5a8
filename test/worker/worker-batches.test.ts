import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { createWorkerHandler } from '../../functions/worker';
import { exampleEvent } from '../../functions/domain/example-events';
import { BUCKET, TABLES } from '../../functions/shared/resources';
import { S3DeliveryFailureStore } from '../../functions/adapters/delivery-failure-store';
import { delivery, lambdaContext, sqsRecord, startWorkerHarness, type WorkerHarness } from './harness';

describe('worker batches', () => {
  let harness: WorkerHarness;
  before(async () => {
    harness = await startWorkerHarness();
  });
  after(() => harness.stop());

  const summariesOf = async (pk: string) =>
    ((await harness.documents.send(new ScanCommand({ TableName: harness.env[TABLES.summaries.envVar] }))).Items ?? []).filter((item) => item.pk === pk);

  it('acknowledges three copies of one delivery in one batch: one is processed, the others are duplicates, none is retried', async () => {
    const event = exampleEvent('daily.data.activity.created', { userId: 'user-batch-copies' });
    const identity = delivery('2024-05-14T12:00:00Z');
    const records = [0, 1, 2].map((copy) => ({ ...sqsRecord(event, identity), messageId: `copy-${copy}` }));
    const response = await createWorkerHandler(harness.dependencies())({ Records: records }, lambdaContext());
    assert.deepEqual(response.batchItemFailures, []);
    assert.equal((await summariesOf('user-batch-copies#activity')).length, 1);
  });

  it('keeps concurrent invocations of one handler apart: each reports only its own failures', async () => {
    const handler = createWorkerHandler(harness.dependencies());
    const good = exampleEvent('daily.data.body.created', { userId: 'user-concurrent' });
    const goodRecords = [0, 1, 2, 3].map((n) => ({ ...sqsRecord({ ...good, data: { ...good.data, id: `body-${n}` } }, delivery(`2024-05-14T12:0${n}:00Z`)), messageId: `good-${n}` }));
    const poison = { ...sqsRecord(good, delivery('2024-05-14T13:00:00Z')), messageId: 'poison', body: '{"event_type": "daily.data.body.created", "data": 7}' };
    const another = { ...sqsRecord({ ...good, data: { ...good.data, id: 'body-4' } }, delivery('2024-05-14T12:10:00Z')), messageId: 'good-4' };
    const [clean, mixed] = await Promise.all([
      handler({ Records: goodRecords }, lambdaContext()),
      handler({ Records: [poison, another] }, lambdaContext()),
    ]);
    assert.deepEqual(clean.batchItemFailures, []);
    assert.deepEqual(mixed.batchItemFailures, [{ itemIdentifier: 'poison' }]);
    assert.equal((await summariesOf('user-concurrent#body')).length, 5);
  });

  it('acknowledges a copy that another invocation is processing at the same moment, and stores the delivery once', async () => {
    const handler = createWorkerHandler(harness.dependencies());
    const event = exampleEvent('daily.data.sleep.created', { userId: 'user-racing-copies' });
    const identity = delivery('2024-05-14T14:00:00Z');
    const responses = await Promise.all(
      ['copy-a', 'copy-b', 'copy-c'].map((messageId) => handler({ Records: [{ ...sqsRecord(event, identity), messageId }] }, lambdaContext())),
    );
    assert.deepEqual(responses.flatMap((response) => response.batchItemFailures), []);
    assert.equal((await summariesOf('user-racing-copies#sleep')).length, 1);
  });

  it('does not let a copy be acknowledged as done when the processing it waited for failed', async () => {
    const failing = { ...harness.dependencies().ports, records: {
      storeSummary: async () => {
        throw new Error('injected write failure');
      },
      storeTimeseries: (input: Parameters<typeof harness.records.storeTimeseries>[0]) => harness.dependencies().ports.records.storeTimeseries(input),
    } };
    const event = exampleEvent('daily.data.sleep.created', { userId: 'user-failed-first' });
    const identity = delivery('2024-05-14T15:00:00Z');
    const failed = await createWorkerHandler(harness.dependencies({ ports: failing }))({ Records: [{ ...sqsRecord(event, identity), messageId: 'first' }] }, lambdaContext());
    assert.deepEqual(failed.batchItemFailures, [{ itemIdentifier: 'first' }], 'the failed copy stays queued');
    const retried = await createWorkerHandler(harness.dependencies())({ Records: [{ ...sqsRecord(event, identity), messageId: 'first' }] }, lambdaContext());
    assert.deepEqual(retried.batchItemFailures, []);
    assert.equal((await summariesOf('user-failed-first#sleep')).length, 1, 'its retry stores the record');
  });

  it('notes why each attempt failed, under the worker\'s own grant, for inspect dlq: the latest attempt and error, no payload value', async () => {
    const notes = new S3DeliveryFailureStore(harness.s3, harness.bucket, BUCKET.prefixes.deliveryFailures);
    const handler = createWorkerHandler(harness.dependencies());
    const identity = delivery('2024-05-14T16:00:00Z');
    const body = JSON.stringify({ event_type: 'daily.data.sleep.created', data: { source: { provider: 'oura' }, score: 'secret-value-81' }, user_id: 'u', client_user_id: 'c', team_id: 't' });
    for (const attempt of [1, 2]) {
      const response = await handler({ Records: [{ ...sqsRecord(body, identity, { receiveCount: attempt }), messageId: 'poison-noted' }] }, lambdaContext());
      assert.deepEqual(response.batchItemFailures, [{ itemIdentifier: 'poison-noted' }]);
    }
    const [note, none] = await notes.latestOf([{ svixId: identity.svixId, messageId: 'poison-noted' }, { svixId: delivery('2024-05-14T16:01:00Z').svixId, messageId: 'never-failed' }]);
    assert.equal(note?.attempt, 2);
    assert.equal(note?.eventType, 'daily.data.sleep.created');
    assert.match(note?.reason ?? '', /^MalformedEnvelopeError: /);
    assert.doesNotMatch(JSON.stringify(note), /secret-value-81/);
    assert.equal(none, undefined, 'a delivery that never failed has no note');
  });
});
