import type { DeliveryFailure, DeliveryFailureLog } from '../../functions/domain/delivery-failure';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Context, SQSRecord } from 'aws-lambda';
import { setTimeout as sleep } from 'node:timers/promises';
import { createWorkerHandler } from '../../functions/worker';
import type { ClaimCheckStore } from '../../functions/adapters/event-queue';
import type { ProcessingPorts } from '../../functions/domain/event-processing';
import { newMessageId } from '../../functions/domain/message-order';
import { encodeAttributes, type ClaimCheck } from '../../functions/domain/queued-event';

/**
 * Found by the storm: the local pipeline runs `maxConcurrency` invocations of one worker handler at
 * once in one process (as `npm start` does), and a poison message was reported processed and deleted
 * instead of failing. The worker then built one Powertools `BatchProcessor` per handler and shared it
 * across invocations; outside Lambda's InvokeStore its records, failures and response live on that
 * instance, so a second invocation starting while the first was in flight wiped the first one's
 * failures: a failed record was acknowledged and lost. Fixed in 4ac5199 (one processor per
 * invocation); this keeps it fixed.
 */

const unusedPorts = new Proxy({} as ProcessingPorts, {
  get: () => {
    throw new Error('no port is needed for these events');
  },
});

/** Failure notes held in memory (the S3 store is tested in test/worker). */
class NotedFailures implements DeliveryFailureLog {
  readonly noted: DeliveryFailure[] = [];
  async record(failure: DeliveryFailure): Promise<void> {
    this.noted.push(failure);
  }
}

/** Claim-checked bodies held in memory, answered after a delay (a slow S3 read). */
class SlowClaimChecks implements ClaimCheckStore {
  private readonly bodies = new Map<string, string>();
  async put(key: string, body: string): Promise<ClaimCheck> {
    this.bodies.set(key, body);
    return { bucket: 'bodies', key };
  }
  async get(claimCheck: ClaimCheck): Promise<string> {
    await sleep(150);
    return this.bodies.get(claimCheck.key)!;
  }
}

function record(messageId: string, body: string, claimCheck?: ClaimCheck): SQSRecord {
  const svixId = newMessageId();
  const attributes = encodeAttributes(
    { svixId, svixTimestamp: String(Math.floor(Date.now() / 1000)), eventType: JSON.parse(body).event_type, receivedAt: new Date().toISOString() },
    claimCheck,
  );
  return {
    messageId,
    receiptHandle: messageId,
    body: claimCheck ? attributes['claim-check']! : body,
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'local', ApproximateFirstReceiveTimestamp: '0' },
    messageAttributes: Object.fromEntries(
      Object.entries(attributes).map(([name, value]) => [name, { dataType: 'String', stringValue: value, stringListValues: [], binaryListValues: [] }]),
    ),
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:events',
    awsRegion: 'us-east-1',
  };
}

const envelope = (eventType: string, data: unknown) => JSON.stringify({ event_type: eventType, data, user_id: 'u-1', client_user_id: 'c-1', team_id: 't-1' });

describe('worker handler under concurrent invocations (as the local event source mapping runs it)', () => {
  it('reports a failed record of one invocation even when another invocation starts meanwhile', async () => {
    const claimChecks = new SlowClaimChecks();
    const handler = createWorkerHandler({ ports: unusedPorts, claimChecks, failures: new NotedFailures() });
    const context = { getRemainingTimeInMillis: () => 30_000 } as Context;

    // Invocation A: a poison body (a sleep summary without id) that fails at once, and a slow record.
    const poison = record('a-poison', envelope('daily.data.sleep.created', { source: { provider: 'oura' } }));
    const slow = record('a-slow', envelope('labtest.order.updated', {}), await claimChecks.put('slow', envelope('labtest.order.updated', {})));
    const first = handler({ Records: [poison, slow] }, context);
    // Invocation B starts while A waits for its slow record.
    await sleep(50);
    const second = handler({ Records: [record('b-fine', envelope('labtest.order.updated', {}))] }, context);

    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual(b.batchItemFailures, [], 'B had nothing failing');
    assert.deepEqual(a.batchItemFailures, [{ itemIdentifier: 'a-poison' }], "A's poison record must be retried, not acknowledged");
  });

  it('alone, the same batch reports the poison record as failed', async () => {
    const claimChecks = new SlowClaimChecks();
    const failures = new NotedFailures();
    const handler = createWorkerHandler({ ports: unusedPorts, claimChecks, failures });
    const poison = record('a-poison', envelope('daily.data.sleep.created', { source: { provider: 'oura' } }));
    const slow = record('a-slow', envelope('labtest.order.updated', {}), await claimChecks.put('slow', envelope('labtest.order.updated', {})));
    const response = await handler({ Records: [poison, slow] }, { getRemainingTimeInMillis: () => 30_000 } as Context);
    assert.deepEqual(response.batchItemFailures, [{ itemIdentifier: 'a-poison' }]);
    assert.deepEqual(
      failures.noted.map(({ messageId, attempt, reason }) => ({ messageId, attempt, reason: reason.split(':')[0] })),
      [{ messageId: 'a-poison', attempt: 1, reason: 'MalformedEnvelopeError' }],
      'the failure is noted for inspect dlq, with its attempt and the error',
    );
  });
});
