import { ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { QUEUES, type QueueDefinition } from '../../functions/shared/resources';
import {
  InvalidBatchResponseError,
  SqsEventSourceMapping,
  UnsafeVisibilityTimeoutError,
  type MessageOutcome,
  type SqsFunction,
} from '../../local/event-source-mapping';
import { FunctionTimeoutError } from '../../local/lambda-invocation';
import { createLocalQueue, type LocalQueue } from '../../local/local-resources';
import { LOCAL_AWS, startSqsAndS3, type RunningStandIn } from '../../local/stand-ins';

/** The events queue's timeouts scaled to a 1/3 s function timeout and a 2 s visibility timeout. */
const TIME_SCALE = 1 / 90;

let standIn: RunningStandIn;
let sqs: SQSClient;
let queueCount = 0;

before(async () => {
  standIn = await startSqsAndS3();
  sqs = new SQSClient({ endpoint: standIn.endpoint, ...LOCAL_AWS });
});

after(async () => {
  sqs.destroy();
  await standIn.stop();
});

/** A fresh queue per test, from the events queue's definition with the given overrides. */
async function freshQueue(overrides: Partial<QueueDefinition> = {}): Promise<LocalQueue> {
  queueCount += 1;
  return createLocalQueue(
    { sqs, sqsEndpoint: standIn.endpoint, timeScale: TIME_SCALE },
    { ...QUEUES.events, ...overrides, id: `test${queueCount}` },
    'mapping-',
  );
}

async function sendBodies(queueUrl: string, bodies: readonly string[]): Promise<void> {
  for (let start = 0; start < bodies.length; start += 10) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies.slice(start, start + 10).map((body, index) => ({
          Id: String(index),
          MessageBody: body,
          MessageAttributes: { 'svix-id': { DataType: 'String', StringValue: `msg_${body}` } },
        })),
      }),
    );
  }
}

async function drain(queueUrl: string): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
    if (!Messages?.length) return bodies;
    bodies.push(...Messages.map((message) => message.Body!));
  }
}

async function until(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(25);
  }
}

function mapping(queue: LocalQueue, handler: SqsFunction['handler'], outcomes: MessageOutcome[] = [], timeoutSeconds = queue.functionTimeoutSeconds) {
  return new SqsEventSourceMapping({
    sqs,
    queueUrl: queue.url,
    queueArn: queue.arn,
    settings: queue.definition,
    function: { name: 'test-consumer', timeoutSeconds, handler },
    onOutcome: (outcome) => outcomes.push(outcome),
  }).start();
}

describe('SqsEventSourceMapping', () => {
  it('delivers Lambda-shaped batches of at most batchSize and deletes what succeeded', async () => {
    const queue = await freshQueue({ batchSize: 4, maxBatchingWindowSeconds: 1, maxConcurrency: 1 });
    const bodies = Array.from({ length: 10 }, (_, index) => `m${index}`);
    await sendBodies(queue.url, bodies);
    const batches: SQSEvent[] = [];
    const running = await mapping(queue, async (event) => {
      batches.push(event);
    });
    await until(() => batches.flatMap((batch) => batch.Records).length === 10);
    await running.stop();

    assert.ok(batches.every((batch) => batch.Records.length <= 4));
    assert.ok(batches.some((batch) => batch.Records.length > 1), 'the batching window gathers several messages');
    const record = batches[0]!.Records[0]!;
    assert.equal(record.eventSource, 'aws:sqs');
    assert.equal(record.eventSourceARN, queue.arn);
    assert.equal(record.attributes.ApproximateReceiveCount, '1');
    assert.match(record.messageAttributes['svix-id']!.stringValue!, /^msg_m\d$/);
    assert.equal(record.messageAttributes['svix-id']!.dataType, 'String');
    assert.deepEqual(batches.flatMap((batch) => batch.Records.map((r) => r.body)).sort(), [...bodies].sort());
    assert.deepEqual(await drain(queue.url), [], 'every processed message was deleted');
  });

  it('keeps only the reported failures, which reappear after the visibility timeout', async () => {
    const queue = await freshQueue({ batchSize: 10, maxBatchingWindowSeconds: 0, maxConcurrency: 1 });
    await sendBodies(queue.url, ['ok1', 'bad', 'ok2']);
    const seen: { body: string; receiveCount: string }[] = [];
    let failedOnce = false;
    const running = await mapping(queue, async (event): Promise<SQSBatchResponse> => {
      const failures = [];
      for (const record of event.Records) {
        seen.push({ body: record.body, receiveCount: record.attributes.ApproximateReceiveCount });
        if (record.body === 'bad' && !failedOnce) {
          failedOnce = true;
          failures.push({ itemIdentifier: record.messageId });
        }
      }
      return { batchItemFailures: failures };
    });
    await until(() => seen.filter((entry) => entry.body === 'bad').length === 2);
    await running.stop();

    assert.deepEqual(seen.filter((entry) => entry.body !== 'bad').map((entry) => entry.receiveCount), ['1', '1']);
    assert.deepEqual(seen.filter((entry) => entry.body === 'bad').map((entry) => entry.receiveCount), ['1', '2']);
    assert.deepEqual(await drain(queue.url), []);
  });

  it('moves a message that fails maxReceiveCount times to the dead-letter queue', async () => {
    const queue = await freshQueue({ batchSize: 10, maxBatchingWindowSeconds: 0, maxConcurrency: 1, maxReceiveCount: 2 });
    await sendBodies(queue.url, ['poison', 'fine']);
    const outcomes: MessageOutcome[] = [];
    const running = await mapping(
      queue,
      async (event) => ({
        batchItemFailures: event.Records.filter((r) => r.body === 'poison').map((r) => ({ itemIdentifier: r.messageId })),
      }),
      outcomes,
    );
    await until(() => outcomes.filter((o) => o.record.body === 'poison').length === 2);
    // The third receive, one visibility timeout later, is where SQS (and fauxqs) redrives it.
    await sleep(queue.visibilityTimeoutSeconds * 1000 + 1_500);
    await running.stop();

    const poison = outcomes.filter((o) => o.record.body === 'poison');
    assert.deepEqual(poison.map((o) => [o.result, o.receiveCount, o.maxReceiveCount]), [['failed', 1, 2], ['failed', 2, 2]]);
    assert.deepEqual(outcomes.filter((o) => o.record.body === 'fine').map((o) => o.result), ['processed']);
    assert.deepEqual(await drain(queue.url), []);
    assert.deepEqual(await drain(queue.deadLetterUrl), ['poison']);
  });

  it('fails the whole batch when the handler throws, answers an unknown item, or times out', async () => {
    for (const [failure, expected] of [
      [async () => { throw new TypeError('boom'); }, TypeError],
      [async () => ({ batchItemFailures: [{ itemIdentifier: 'not-in-batch' }] }), InvalidBatchResponseError],
      [() => sleep(1_000), FunctionTimeoutError],
    ] as const) {
      const queue = await freshQueue({ batchSize: 10, maxBatchingWindowSeconds: 0, maxConcurrency: 1 });
      await sendBodies(queue.url, ['a', 'b']);
      const outcomes: MessageOutcome[] = [];
      let calls = 0;
      const running = await mapping(
        queue,
        async (event) => {
          calls += 1;
          if (calls === 1) return (failure as (e: SQSEvent) => Promise<SQSBatchResponse | void>)(event);
        },
        outcomes,
      );
      await until(() => outcomes.filter((o) => o.result === 'processed').length === 2);
      await running.stop();
      const failed = outcomes.filter((o) => o.result === 'failed');
      assert.equal(failed.length, 2);
      assert.ok(failed.every((o) => o.batchError instanceof expected));
      assert.deepEqual(await drain(queue.url), []);
    }
  });

  it('runs at most maxConcurrency invocations at once', async () => {
    const queue = await freshQueue({ batchSize: 1, maxBatchingWindowSeconds: 0, maxConcurrency: 3 });
    await sendBodies(queue.url, Array.from({ length: 9 }, (_, index) => `c${index}`));
    let active = 0;
    let peak = 0;
    let done = 0;
    const running = await mapping(queue, async () => {
      active += 1;
      peak = Math.max(peak, active);
      await sleep(50);
      active -= 1;
      done += 1;
    });
    await until(() => done === 9);
    await running.stop();
    assert.equal(peak, 3);
  });

  it('refuses to start on a queue whose visibility timeout is under six times the function timeout', async () => {
    const queue = await freshQueue();
    let invoked = false;
    await assert.rejects(
      mapping(queue, async () => { invoked = true; }, [], queue.visibilityTimeoutSeconds),
      (error: Error) => error instanceof UnsafeVisibilityTimeoutError && /under 6 times the test-consumer function's timeout/.test(error.message),
    );
    await sendBodies(queue.url, ['left alone']);
    await sleep(200);
    assert.equal(invoked, false, 'no poller started');
    assert.deepEqual(await drain(queue.url), ['left alone']);
  });
});
