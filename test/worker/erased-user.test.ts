import { after, before, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { eraseUser, type EraseResult } from '../../cli/commands/erase';
import type { PipelineTarget } from '../../cli/target';
import { S3ClaimCheckStore } from '../../functions/adapters/claim-check-store';
import { DynamoDbErasureRegister } from '../../functions/adapters/erasure-register';
import { S3HeldBackStore } from '../../functions/adapters/held-back-store';
import { S3WorkoutStreamStore } from '../../functions/adapters/workout-stream-store';
import { ERASED_STORES } from '../../functions/domain/erasure';
import { EXAMPLE_DEFAULTS, exampleEvent } from '../../functions/domain/example-events';
import { orderKeyOfFetch } from '../../functions/domain/message-order';
import { claimCheckKey } from '../../functions/domain/queued-event';
import { logger, metrics } from '../../functions/shared/observability';
import { BUCKET, TABLES } from '../../functions/shared/resources';
import { createWorkerHandler } from '../../functions/worker';
import { captureProcessOutput } from '../observability/capture-output';
import { delivery, lambdaContext, sqsRecord, startWorkerHarness, type WorkerHarness } from './harness';

/**
 * Erasure, as the worker meets it: once a user's erasure is recorded at T, nothing created before T
 * is stored for that user again (functions/domain/erasure.ts). Here the worker (as its role, under
 * the stack's IAM) stores two users' data in every store it writes, plus what the backfill keeps in
 * the bucket, the erasure (`eraseUser`, as `vital-pipeline erase` runs it) removes one user's, and
 * every path that could bring it back (a DLQ replay, a Svix redelivery, a late historical notice)
 * stores nothing, while a message created after T is stored.
 */

const OUR_TEAM = EXAMPLE_DEFAULTS.teamId;

describe('an erased user stays erased', () => {
  let harness: WorkerHarness;
  /** The worker's first deliveries of the erased user, for the replays. */
  const sent: ReturnType<typeof sqsRecord>[] = [];
  const erased = `erased-${randomUUID()}`;
  const kept = `kept-${randomUUID()}`;
  let first: EraseResult;

  /** The CLI's view of the harness's stand-ins (as the administrator): consumers that time out after 1 s. */
  const target = (): PipelineTarget =>
    ({
      description: 'the test stand-ins',
      dynamodb: harness.client,
      s3: harness.s3,
      bucket: harness.bucket,
      tables: Object.fromEntries(Object.entries(TABLES).map(([name, definition]) => [name, harness.env[definition.envVar]])),
      queues: { events: { functionTimeoutSeconds: 1 }, backfill: { functionTimeoutSeconds: 1 } },
    }) as unknown as PipelineTarget;

  const erase = (userId: string) => eraseUser(target(), { userId, erasedBy: 'the test' });

  /** Runs records through the worker, with this deployment's team; each one's logged result. */
  async function run(records: ReturnType<typeof sqsRecord>[]): Promise<string[]> {
    const output = captureProcessOutput();
    const previousLevel = logger.getLevelName();
    logger.setLogLevel('INFO');
    try {
      const response = await createWorkerHandler(harness.dependencies({ expectedTeamId: OUR_TEAM }))({ Records: records }, lambdaContext());
      assert.deepEqual(response.batchItemFailures, []);
    } finally {
      logger.setLogLevel(previousLevel as Parameters<typeof logger.setLogLevel>[0]);
      output.restore();
    }
    const logged = output.lines().map((text) => JSON.parse(text) as Record<string, unknown>).filter((entry) => entry.message === 'Delivery processed');
    return records.map((record) => String(logged.find((entry) => entry.svixId === record.messageAttributes['svix-id']!.stringValue)?.result));
  }

  /** What every table (but the erasures) and the bucket hold of `userId`: items, and objects named for or holding the user. */
  async function heldFor(userId: string): Promise<Record<string, unknown[]>> {
    const held: Record<string, unknown[]> = {};
    for (const table of Object.values(TABLES).filter((table) => table !== TABLES.erasures)) {
      const { Items = [] } = await harness.documents.send(new ScanCommand({ TableName: harness.env[table.envVar] }));
      held[table.id] = Items.filter((item) => JSON.stringify(item).includes(userId)).map((item) => JSON.stringify(item)).sort();
    }
    const { Contents = [] } = await harness.s3.send(new ListObjectsV2Command({ Bucket: harness.bucket }));
    held.bucket = [];
    for (const { Key } of Contents) {
      const body = await (await harness.s3.send(new GetObjectCommand({ Bucket: harness.bucket, Key }))).Body!.transformToString();
      if (Key!.includes(userId) || body.includes(userId)) held.bucket.push(Key);
    }
    held.bucket.sort();
    return held;
  }

  /** Every kind of data the pipeline keeps for `userId`, stored through the worker and the stores' own adapters. */
  async function storeEverything(userId: string): Promise<void> {
    const at = (minute: number) => delivery(`2024-05-14T08:${String(minute).padStart(2, '0')}:00Z`);
    const event = (type: string, options: Parameters<typeof exampleEvent>[1] = {}) => exampleEvent(type, { userId, teamId: OUR_TEAM, ...options });
    const records = [
      sqsRecord(event('daily.data.sleep.created'), at(1)),
      sqsRecord(event('daily.data.heartrate.created', { sampleCount: 20 }), at(2)),
      sqsRecord(event('provider.connection.created'), at(3)),
      sqsRecord(event('historical.data.sleep.created'), at(4)),
      sqsRecord(event('daily.data.workout_stream.created'), at(5)),
      sqsRecord({ event_type: 'daily.data.brand_new.created', user_id: userId, team_id: OUR_TEAM, data: { value: 1 } }, at(6)),
      sqsRecord(event('daily.data.body.created', { teamId: 'another-team' }), at(7)),
    ];
    // A body too large for SQS, claim-checked by the verifier's store with its owner.
    const big = at(8);
    const bigBody = JSON.stringify(event('daily.data.steps.created'));
    const claimCheck = await new S3ClaimCheckStore(harness.s3, harness.bucket).put(claimCheckKey(BUCKET.prefixes.claimChecks, big.svixId, big.receivedAt), bigBody, userId);
    records.push(sqsRecord(bigBody, big, { claimCheck }));
    assert.deepEqual(await run(records), ['wrote', 'wrote', 'wrote', 'none', 'wrote', 'none', 'none', 'wrote']);
    if (userId === erased) sent.push(...records);
    // What the backfill keeps in the bucket, and an unrecognised body kept before bodies named their owner.
    await new S3WorkoutStreamStore(harness.s3, harness.bucket).put({ userId, provider: 'oura', workoutId: 'workout-1', body: '{"hr":[120]}', order: orderKeyOfFetch(Date.now()) });
    await new S3HeldBackStore(harness.s3, harness.bucket).put({
      location: { userId, provider: 'oura', resource: 'sleep', runId: 'run-1', windowIndex: 0, page: 0, index: '3' },
      reason: 'sleep object has no id',
      record: { score: 80 },
    });
    await harness.s3.send(
      new PutObjectCommand({
        Bucket: harness.bucket,
        Key: `${BUCKET.prefixes.unrecognised}2024-01-01/msg_legacy-${userId}.json`,
        Body: JSON.stringify({ event_type: 'daily.data.older_kind.created', user_id: userId, data: {} }),
      }),
    );
  }

  before(async () => {
    harness = await startWorkerHarness();
  });
  after(() => harness.stop());

  it('erasing one of two users removes theirs from every store, counted on a receipt without health data, and leaves the other\'s as it was', async () => {
    await storeEverything(erased);
    await storeEverything(kept);
    const before = await heldFor(erased);
    const keptBefore = await heldFor(kept);
    for (const [store, held] of Object.entries(before)) assert.ok(held.length > 0, `the erased user has data in ${store}`);

    first = await erase(erased);

    assert.deepEqual(await heldFor(erased), { Summaries: [], Timeseries: [], Connections: [], Backfills: [], bucket: [] });
    assert.deepEqual(await heldFor(kept), keptBefore);
    const { receipt } = first;
    assert.deepEqual(receipt.removed, {
      summaries: before.Summaries!.length,
      timeseries: before.Timeseries!.length,
      connections: 1,
      backfills: 1,
      workout_streams: 1,
      held_back: 1,
      claim_checks: 1,
      quarantine: 1,
      // Labelled with its owner, and the one kept before labels: read to find whose it is.
      unrecognised: 2,
    });
    assert.deepEqual(first.removedNow, receipt.removed);
    assert.deepEqual({ resumed: first.resumed, previous: first.previous }, { resumed: false, previous: undefined });
    // Who, when, by whom and how much: nothing else, so no health data.
    assert.deepEqual(Object.keys(receipt).sort(), ['erasedAt', 'erasedBy', 'finishedAt', 'layout', 'removed', 'state', 'userId']);
    assert.deepEqual({ userId: receipt.userId, erasedBy: receipt.erasedBy, state: receipt.state }, { userId: erased, erasedBy: 'the test', state: 'erased' });
    assert.ok(Date.parse(receipt.finishedAt!) > Date.parse(receipt.erasedAt));
    assert.deepEqual(Object.keys(receipt.removed).sort(), [...ERASED_STORES].sort());
    assert.ok(Object.values(receipt.removed).every((count) => Number.isInteger(count)));
  });

  it('a second run removes nothing new and says so; a run interrupted after its tombstone is finished by the next', async () => {
    const again = await erase(erased);
    assert.ok(Object.values(again.removedNow).every((count) => count === 0), JSON.stringify(again.removedNow));
    assert.equal(again.previous?.erasedAt, first.receipt.erasedAt, 'the earlier erasure is named');
    assert.ok(again.receipt.erasedAt > first.receipt.erasedAt, 'a new erasure, later');

    // A crash right after the tombstone was written (long enough ago that no wait is left).
    const interrupted = `interrupted-${randomUUID()}`;
    assert.deepEqual(await run([sqsRecord(exampleEvent('daily.data.sleep.created', { userId: interrupted, teamId: OUR_TEAM }), delivery('2024-05-14T09:00:00Z'))]), ['wrote']);
    const register = new DynamoDbErasureRegister(DynamoDBDocumentClient.from(harness.client), harness.env[TABLES.erasures.envVar]!);
    const erasedAt = new Date(Date.now() - 10_000).toISOString();
    await register.begin({ userId: interrupted, erasedAt, erasedBy: 'an earlier run' });
    const finished = await erase(interrupted);
    assert.equal(finished.resumed, true);
    assert.deepEqual(
      { erasedAt: finished.receipt.erasedAt, erasedBy: finished.receipt.erasedBy, state: finished.receipt.state, summaries: finished.receipt.removed.summaries },
      { erasedAt, erasedBy: 'an earlier run', state: 'erased', summaries: 1 },
    );
    assert.deepEqual((await heldFor(interrupted)).Summaries, []);
  });

  it('a DLQ replay, a Svix redelivery or a late historical notice of a message created before the erasure stores nothing; one created after it is stored', async () => {
    // The job of the notice delivered before the erasure (its run stops at its next page: test/backfill/backfill-erasure.test.ts).
    for (let drained = await jobs(); drained.length > 0; drained = await jobs());
    const addMetric = mock.method(metrics, 'addMetric');
    try {
      // A DLQ replay sends the dead letter's body and attributes again; a Svix redelivery is the same
      // message (svix-id) received anew; a historical notice Svix created before the erasure and
      // delivered only now would start a backfill. (A claim-checked body is gone with the erasure:
      // its replay fails on the missing object, docs/erasure.md.)
      const inline = sent.filter((record) => !record.messageAttributes['claim-check']);
      const redelivered = inline.map((record) => sqsRecord(record.body, { svixId: record.messageAttributes['svix-id']!.stringValue!, receivedAt: new Date().toISOString() }));
      const lateNotice = sqsRecord(exampleEvent('historical.data.heartrate.created', { userId: erased, teamId: OUR_TEAM }), delivery('2024-05-15T00:00:00Z'));
      const replays = [...inline, ...redelivered, lateNotice];
      assert.deepEqual(await run(replays), replays.map(() => 'erased'));
      assert.equal(addMetric.mock.calls.filter((call) => call.arguments[0] === 'ErasedUserEvents').length, replays.length);
    } finally {
      addMetric.mock.restore();
    }
    assert.deepEqual(await heldFor(erased), { Summaries: [], Timeseries: [], Connections: [], Backfills: [], bucket: [] });
    assert.deepEqual(await jobs(), [], 'no backfill job was sent');

    // New data Vital creates after the erasure (the user still uses their wearable) is stored.
    const later = delivery(new Date(Date.parse(await erasedAtOf(erased)) + 2_000).toISOString());
    assert.deepEqual(await run([sqsRecord(exampleEvent('daily.data.sleep.created', { userId: erased, teamId: OUR_TEAM, seed: 9 }), later)]), ['wrote']);
    assert.equal((await heldFor(erased)).Summaries!.length, 1);
  });

  /** Takes the backfill jobs queued (and deletes them): their bodies. */
  async function jobs(): Promise<string[]> {
    const { Messages = [] } = await harness.sqs.send(new ReceiveMessageCommand({ QueueUrl: harness.backfillQueueUrl, MaxNumberOfMessages: 10 }));
    for (const message of Messages) await harness.sqs.send(new DeleteMessageCommand({ QueueUrl: harness.backfillQueueUrl, ReceiptHandle: message.ReceiptHandle! }));
    return Messages.map((message) => message.Body!);
  }

  /** The erasure in force for `userId`. */
  async function erasedAtOf(userId: string): Promise<string> {
    const register = new DynamoDbErasureRegister(DynamoDBDocumentClient.from(harness.client), harness.env[TABLES.erasures.envVar]!);
    return (await register.latest(userId))!.erasedAt;
  }
});
