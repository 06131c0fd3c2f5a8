import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { S3WorkoutStreamStore } from '../../functions/adapters/workout-stream-store';
import { orderKeyOfFetch } from '../../functions/domain/message-order';
import { standInClients, startSqsAndS3, type RunningStandIn, type StandInClients } from '../../local/stand-ins';

/**
 * Workout streams on the SQS and S3 stand-in, behind the front that enforces S3's conditional
 * writes: an older fetch never replaces a newer one, whichever put reaches S3 last.
 */

const BUCKET = 'streams-test';
let standIn: RunningStandIn;
let clients: StandInClients;
let s3: S3Client;

before(async () => {
  standIn = await startSqsAndS3();
  clients = standInClients({ dynamodb: standIn.endpoint, sqs: standIn.endpoint, s3: standIn.endpoint });
  s3 = clients.s3;
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});
after(async () => {
  clients.destroy();
  await standIn.stop();
});

const errorOf = async (action: Promise<unknown>): Promise<{ name: string; status?: number }> => {
  try {
    await action;
  } catch (error) {
    return { name: (error as Error).name, status: (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode };
  }
  throw new Error('expected the request to fail');
};

describe('S3 rules on the stand-in, as S3 answers them', () => {
  it('answers a read of a missing key with 403, as S3 does for a caller without s3:ListBucket', async () => {
    assert.equal((await errorOf(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'r/missing' })))).status, 403);
    assert.deepEqual(await errorOf(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'r/missing' }))), { name: 'AccessDenied', status: 403 });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'r/present', Body: 'x' }));
    assert.equal((await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'r/present' }))).ContentLength, 1);
  });

  it('If-None-Match: * fails with 412 on an existing key; If-Match fails with 412 on another ETag and 404 on no object', async () => {
    const created = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'c/one', Body: 'a', IfNoneMatch: '*' }));
    assert.deepEqual(await errorOf(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'c/one', Body: 'b', IfNoneMatch: '*' }))), { name: 'PreconditionFailed', status: 412 });
    assert.deepEqual(await errorOf(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'c/one', Body: 'b', IfMatch: '"not-the-etag"' }))), { name: 'PreconditionFailed', status: 412 });
    assert.deepEqual(await errorOf(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'c/none', Body: 'b', IfMatch: created.ETag! }))), { name: 'NoSuchKey', status: 404 });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'c/one', Body: 'b', IfMatch: created.ETag! }));
    const stored = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'c/one' }));
    assert.equal(await stored.Body!.transformToString(), 'b');
  });
});

describe('S3WorkoutStreamStore', () => {
  it('never lets an older fetch replace a newer one, even when the older put reaches S3 last', async () => {
    const store = new S3WorkoutStreamStore(s3, BUCKET);
    const older = orderKeyOfFetch(Date.parse('2026-11-30T10:00:00Z'));
    const newer = orderKeyOfFetch(Date.parse('2026-11-30T10:00:05Z'));
    // Hold the older fetch's first PutObject until the newer fetch has stored its stream.
    let releaseOlder!: () => void;
    const newerStored = new Promise<void>((resolve) => (releaseOlder = resolve));
    let heldOnce = false;
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Metadata?: Record<string, string> };
        if (context.commandName === 'PutObjectCommand' && input.Metadata?.order === older && !heldOnce) {
          heldOnce = true;
          await newerStored;
        }
        return next(args);
      },
      { step: 'initialize', name: 'holdOlderPut' },
    );
    try {
      const key = { userId: 'race-user', provider: 'strava', workoutId: 'workout-1' };
      const olderPut = store.put({ ...key, body: '{"stream":"older"}', order: older });
      await new Promise((resolve) => setTimeout(resolve, 50)); // the older put has read "no object" and waits
      assert.equal(await store.put({ ...key, body: '{"stream":"newer"}', order: newer }), true);
      releaseOlder();
      assert.equal(await olderPut, false, 'the older fetch sees the newer stream and stores nothing');
      assert.equal(await store.orderOf(key.userId, key.provider, key.workoutId), newer);
      const stored = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: store.keyOf(key.userId, key.provider, key.workoutId) }));
      assert.equal(await stored.Body!.transformToString(), '{"stream":"newer"}');
      assert.equal(await store.put({ ...key, body: '{"stream":"same"}', order: newer }), false, 'the same order again is a no-op');
    } finally {
      s3.middlewareStack.remove('holdOlderPut');
    }
  });
});
