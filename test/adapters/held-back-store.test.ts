import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { S3HeldBackStore } from '../../functions/adapters/held-back-store';
import type { HeldBackLocation } from '../../functions/domain/held-back';
import { standInClients, startSqsAndS3, type RunningStandIn, type StandInClients } from '../../local/stand-ins';

/**
 * The held-back store's key is the record's location: `locationOf` reads back what `keyOf` wrote,
 * whatever the user id holds, and `list` (on the S3 stand-in) finds a user's records by that key
 * alone, in location order, without reading a record.
 */

const BUCKET = 'held-back-test';
let standIn: RunningStandIn;
let clients: StandInClients;
let s3: S3Client;
let store: S3HeldBackStore;

before(async () => {
  standIn = await startSqsAndS3();
  clients = standInClients({ dynamodb: standIn.endpoint, sqs: standIn.endpoint, s3: standIn.endpoint });
  s3 = clients.s3;
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  store = new S3HeldBackStore(s3, BUCKET);
});
after(async () => {
  clients.destroy();
  await standIn.stop();
});

const at = (userId: string, windowIndex: number, page: number, index: string, runId = 'msg_2aaaaaaaaaaaaaaaaaaaaaaaaaa'): HeldBackLocation => ({
  userId,
  provider: 'oura',
  resource: 'heartrate',
  runId,
  windowIndex,
  page,
  index,
});

describe('S3HeldBackStore keys and listing', () => {
  it('reads the location back from the key, for any user id; a key not in the layout has none', () => {
    for (const location of [at('u1', 0, 0, '3'), at('a/b c%ü-w1-p2', 12, 140, 'g0.s17'), at('.json', 1, 2, 'g10.s0')]) {
      assert.deepEqual(store.locationOf(store.keyOf({ location })), location);
    }
    for (const key of ['held-back/u1/oura/sleep/run/notes.txt', 'held-back/u1/oura/sleep/w0-p0-1.json', 'other/u1/oura/sleep/run/w0-p0-1.json', 'held-back/u%zz/oura/sleep/run/w0-p0-1.json']) {
      assert.equal(store.locationOf(key), undefined, key);
    }
  });

  it("lists one user's records (not those of a user whose id it prefixes) by location and reason, in location order, foreign objects last", async () => {
    const older = 'msg_2aaaaaaaaaaaaaaaaaaaaaaaaaa';
    const newer = 'msg_2bbbbbbbbbbbbbbbbbbbbbbbbbb';
    const records = [at('u1', 0, 10, 'g0.s2', newer), at('u1', 0, 2, 'g0.s10'), at('u1', 0, 2, 'g0.s9'), at('u1', 1, 0, 'g1.s0'), at('u10', 0, 0, 'g0.s0')];
    for (const location of records) await store.put({ location, reason: 'sample has neither timestamp nor start', record: { value: 71, timestamp: null } });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'held-back/u1/stray.json', Body: '{}' }));

    const listed = await store.list('u1');
    assert.deepEqual(
      listed.map(({ location, reason }) => ({ location, reason })),
      [
        { location: at('u1', 0, 2, 'g0.s9', older), reason: 'sample has neither timestamp nor start' },
        { location: at('u1', 0, 2, 'g0.s10', older), reason: 'sample has neither timestamp nor start' },
        { location: at('u1', 1, 0, 'g1.s0', older), reason: 'sample has neither timestamp nor start' },
        { location: at('u1', 0, 10, 'g0.s2', newer), reason: 'sample has neither timestamp nor start' },
        { location: undefined, reason: '' },
      ],
    );
    assert.ok(listed.every(({ keptAt }) => !Number.isNaN(Date.parse(keptAt))), 'each with the time it was kept');
    assert.deepEqual((await store.list()).map(({ location }) => location?.userId), ['u1', 'u1', 'u1', 'u1', 'u10', undefined]);
  });
});
