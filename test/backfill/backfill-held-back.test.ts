import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { BUCKET } from '../../functions/shared/resources';
import { LOCAL_AWS, standInClients, type StandInClients } from '../../local/stand-ins';
import { inspectHeldBack, type HeldBackItem } from '../../cli/commands/held-back';
import { readBackfills } from '../../cli/record-queries';
import { localTarget } from '../../cli/target';
import { isolatedAwsEnvironment, runCli, writeStandInPipelineState, type CliRun } from '../support/cli-process';
import { API_KEY, startHarness, type Harness } from './harness';

/**
 * Records of an API response that break the schema (summary without `id`, unreadable `updated_at`,
 * sample without `timestamp`) are held back: kept under `held-back/` with their location and reason
 * (written by the backfill under the stack's IAM), counted in the status, and the rest of the page is
 * stored; the run completes instead of re-fetching the page until it fails. `vital-pipeline inspect
 * held-back` lists them (run as a user runs it, on the harness's stand-ins through the state file of
 * a local pipeline) by location and reason, never with a value of the record.
 */

let users = 0;
const freshUser = () => `held-back-user-${(users += 1)}`;

describe('records that break the schema', () => {
  let h: Harness;
  let admin: StandInClients;
  /** The data folder of a local pipeline whose state file names the harness's stand-ins and resources. */
  let dataDir: string;
  before(async () => {
    h = await startHarness({ fake: { faults: { brokenRecords: 0.2 } } });
    admin = standInClients({ dynamodb: h.endpoints.dynamodb, sqs: h.endpoints.sqsAndS3, s3: h.endpoints.sqsAndS3 });
    dataDir = await mkdtemp(path.join(tmpdir(), 'held-back-'));
    const endpoints = { dynamodb: h.endpoints.dynamodb, sqs: h.endpoints.sqsAndS3, s3: h.endpoints.sqsAndS3 };
    await writeStandInPipelineState(dataDir, endpoints, h.resources, { source: 'configured', url: h.fake.url });
  });
  after(async () => {
    admin.destroy();
    await h.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });
  const cli = (...args: string[]): Promise<CliRun> => runCli(args, isolatedAwsEnvironment(dataDir, LOCAL_AWS.region), '', 30_000);
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

  it('inspect held-back lists each one by user, provider, resource, run, window, page, index, reason and time kept, never a value; inspect backfills points to it', async () => {
    const key = { userId: freshUser(), provider: 'oura', resource: 'sleep' };
    const other = { userId: freshUser(), provider: 'oura', resource: 'sleep' };
    // One window, one page each.
    const start = '2026-03-01T00:00:00+00:00';
    const end = '2026-03-28T00:00:00+00:00';
    const before = Date.now();
    const status = await backfill(key, start, end);
    const [request] = h.fake.counters.dataRequests;
    assert.match(request ?? '', new RegExp(`/v2/summary/sleep/${key.userId}\\?`));
    await backfill(other, start, end);
    assert.ok(status.heldBack && status.heldBack > 0, 'some records held back');

    // The page as the API sent it (the same on every request): where each broken record sat, and its values.
    const response = await fetch(new URL(request!, h.fake.url), { headers: { 'x-vital-api-key': API_KEY } });
    const page = ((await response.json()) as { sleep: Record<string, unknown>[] }).sleep;
    const brokenAt = page.flatMap((record, index) => (typeof record.id !== 'string' || record.updated_at === 'not a time' ? [index] : []));
    assert.equal(brokenAt.length, status.heldBack);

    const listed = await cli('inspect', 'held-back', '--user', key.userId, '--json');
    assert.equal(listed.code, 0, listed.stderr);
    const items = JSON.parse(listed.stdout) as HeldBackItem[];
    assert.deepEqual(
      items.map(({ reason: _reason, kept_at: _keptAt, ...location }) => location),
      brokenAt.map((index) => ({
        user_id: key.userId,
        provider: 'oura',
        resource: 'sleep',
        run_id: status.runId,
        window: 0,
        page: 0,
        index: String(index),
        key: `held-back/${key.userId}/oura/sleep/${status.runId}/w0-p0-${index}.json`,
      })),
      'exactly the held-back records of this user, by location, in page order',
    );
    for (const [n, item] of items.entries()) {
      const record = page[brokenAt[n]!]!;
      assert.equal(item.reason, typeof record.id !== 'string' ? 'sleep object has no id' : 'updated_at is not an ISO 8601 date or time');
      const keptAt = Date.parse(item.kept_at);
      assert.ok(keptAt >= before - 1000 && keptAt <= Date.now() + 1000, `kept at ${item.kept_at}`);
    }

    const table = await cli('inspect', 'held-back', '--user', key.userId);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^USER\s+PROVIDER\s+RESOURCE\s+RUN\s+WINDOW\s+PAGE\s+INDEX\s+REASON\s+KEPT AT$/m);
    assert.match(table.stdout, new RegExp(`^${key.userId}\\s+oura\\s+sleep\\s+${status.runId}\\s+0\\s+0\\s+${brokenAt[0]}\\s+${items[0]!.reason}\\s+${items[0]!.kept_at.replace(/\./g, '\\.')}$`, 'm'));
    assert.equal(table.stdout.trim().split('\n').length, items.length + 1, 'one line per held-back record');

    // No value of a held-back record, in either form: only where it sat (its user and provider) and why.
    const values = brokenAt.flatMap((index) => leafValues(page[index]!)).filter((value) => value !== key.userId && value !== 'oura');
    assert.ok(values.length > 0);
    for (const output of [listed.stdout, table.stdout]) {
      for (const value of values) {
        if (typeof value === 'string') assert.ok(!output.includes(value), `the value ${value} appears in the listing`);
        else if (value >= 100) assert.doesNotMatch(output, new RegExp(`\\b${value}\\b`), `the value ${value} appears in the listing`);
      }
    }

    // Without --user, every user's; the same listing in process.
    const target = await localTarget(dataDir);
    try {
      const all = await inspectHeldBack(target);
      assert.ok(all.some((item) => item.user_id === other.userId), "another user's held-back records are listed too");
      assert.deepEqual(all.filter((item) => item.user_id === key.userId), items);
    } finally {
      target.close();
    }

    const backfills = await cli('inspect', 'backfills', '--user', key.userId);
    assert.equal(backfills.code, 0, backfills.stderr);
    assert.match(backfills.stdout, new RegExp(`^Held-back records: vital-pipeline inspect held-back --user ${key.userId}\\. `, 'm'));
  });
});

/** The string and number values anywhere in a record. */
function leafValues(value: unknown): (string | number)[] {
  if (typeof value === 'string') return value.length >= 5 ? [value] : [];
  if (typeof value === 'number') return [value];
  if (value && typeof value === 'object') return Object.values(value).flatMap(leafValues);
  return [];
}
