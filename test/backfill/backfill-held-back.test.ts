import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { BUCKET } from '../../functions/shared/resources';
import { standInClients, type StandInClients } from '../../local/stand-ins';
import { readBackfills } from '../../cli/record-queries';
import { startHarness, type Harness } from './harness';

/**
 * Records of an API response that break the schema (summary without `id`, unreadable `updated_at`,
 * sample without `timestamp`) are held back: kept under `held-back/` with their location and reason
 * (written by the backfill under the stack's IAM), counted in the status, and the rest of the page is
 * stored; the run completes instead of re-fetching the page until it fails.
 */

let users = 0;
const freshUser = () => `held-back-user-${(users += 1)}`;

describe('records that break the schema', () => {
  let h: Harness;
  let admin: StandInClients;
  before(async () => {
    h = await startHarness({ fake: { faults: { brokenRecords: 0.2 } } });
    admin = standInClients({ dynamodb: h.endpoints.dynamodb, sqs: h.endpoints.sqsAndS3, s3: h.endpoints.sqsAndS3 });
  });
  after(async () => {
    admin.destroy();
    await h.stop();
  });
  beforeEach(() => h.beginCase());
  afterEach(() => h.endCase());

  async function heldBackObjects(userId: string): Promise<string[]> {
    const listed = await h.s3.send(new ListObjectsV2Command({ Bucket: h.resources.bucket, Prefix: `${BUCKET.prefixes.heldBack}${userId}/` }));
    return (listed.Contents ?? []).map((object) => object.Key!);
  }

  async function backfill(key: { userId: string; provider: string; resource: string }, start: string, end: string) {
    const stop = await h.startBackfill();
    try {
      const runId = await h.historical(key, start, end);
      const status = await h.waitForState(key, runId, ['completed', 'failed']);
      assert.equal(status.state, 'completed', status.lastError);
      return status;
    } finally {
      await stop();
    }
  }

  it('summaries: the readable ones are stored, each broken one held back with its location and reason, and counted', async () => {
    const key = { userId: freshUser(), provider: 'oura', resource: 'sleep' };
    const start = '2026-03-01T00:00:00+00:00';
    const end = '2026-04-20T00:00:00+00:00';
    const status = await backfill(key, start, end);
    const all = h.fake.identitiesFor(key.userId, key.provider, key.resource, start, end);
    const broken = h.fake.counters.broken.get(`${key.userId}/${key.resource}`) ?? new Set<string>();
    assert.ok(broken.size > 0 && broken.size < all.size, `some records broken (${broken.size} of ${all.size})`);

    const stored = await h.records.querySummaries(key.userId, key.resource, { from: '2026-02-01T00:00:00Z', to: '2026-05-01T00:00:00Z' });
    assert.deepEqual(new Set(stored.map((record) => record.object.id)), new Set([...all].filter((id) => !broken.has(id))));
    assert.equal(status.heldBack, broken.size);
    assert.equal(status.recordsStored, all.size - broken.size);

    const objects = await heldBackObjects(key.userId);
    assert.equal(objects.length, broken.size);
    for (const object of objects) {
      assert.match(object, new RegExp(`^held-back/${key.userId}/oura/sleep/msg_\\w+/w\\d+-p\\d+-\\d+\\.json$`));
      const head = await h.s3.send(new HeadObjectCommand({ Bucket: h.resources.bucket, Key: object }));
      assert.match(head.Metadata?.reason ?? '', /^(sleep object has no id|updated_at is not an ISO 8601 date or time)$/);
    }
    const [shown] = await readBackfills(admin.dynamodb, h.resources.tables.backfills, key.userId);
    assert.equal(shown?.row.held_back, broken.size, 'inspect backfills counts them');
  });

  it('timeseries: samples without a timestamp are held back, every other sample of the page stored', async () => {
    const key = { userId: freshUser(), provider: 'oura', resource: 'heartrate' };
    // One window, three pages: no sample on a shared window boundary.
    const start = '2026-03-01T00:00:00+00:00';
    const end = '2026-03-10T23:00:00+00:00';
    const status = await backfill(key, start, end);
    const all = h.fake.identitiesFor(key.userId, key.provider, key.resource, start, end);
    const broken = h.fake.counters.broken.get(`${key.userId}/${key.resource}`) ?? new Set<string>();
    assert.ok(broken.size > 0, 'some samples broken');
    assert.ok(status.pagesDone >= 3, `several pages (${status.pagesDone})`);
    const { samples } = await h.records.readTimeseries(key.userId, key.resource, { from: '2026-02-01T00:00:00Z', to: '2026-04-01T00:00:00Z' });
    assert.equal(samples.length, all.size - broken.size);
    assert.equal(status.heldBack, broken.size);
    const objects = await heldBackObjects(key.userId);
    assert.equal(objects.length, broken.size);
    assert.ok(objects.every((object) => /\/w0-p\d+-g0\.s\d+\.json$/.test(object)), objects[0]);
  });
});
