import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from 'aws-lambda';
import { createBackfillHandler } from '../../functions/backfill';
import type { ResyncResult } from '../../cli/commands/backfill-resync';
import { runCli, writeStandInPipelineState } from '../support/cli-process';
import { startHarness, type Harness } from './harness';

/**
 * `vital-pipeline backfill` (the on-demand resync) on the backfill's real stand-ins: the CLI as a
 * user runs it (a child process, the harness's tables and case queue as its local pipeline), the
 * real backfill handler behind the local event source mapping, the fake Vital API. A resync is
 * registered as the newest historical notice: a run still running is replaced and what it had left
 * is fetched too, without the gap between the two ranges; a run that fails makes `--wait` exit 1.
 */

const lambdaContext = { getRemainingTimeInMillis: () => 60_000, functionName: 'backfill', awsRequestId: 'test' } as unknown as Context;
let users = 0;
const freshUser = () => `resync-user-${(users += 1)}`;
const startDates = (h: Harness) => h.fake.counters.dataRequests.map((request) => new URL(request, 'http://x').searchParams.get('start_date'));

describe('backfill (resync) with the backfill machinery', () => {
  let h: Harness;
  let dataDir: string;
  const cli = (args: string[]) => runCli(args, { PATH: process.env.PATH ?? '', HOME: dataDir, LOCAL_DATA_DIR: dataDir }, '', 120_000);

  before(async () => {
    h = await startHarness();
    dataDir = await mkdtemp(path.join(tmpdir(), 'resync-harness-'));
  });
  after(async () => {
    await h.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await h.beginCase();
    // The CLI's local pipeline: the harness's stand-ins, with this case's backfill queue.
    await writeStandInPipelineState(
      dataDir,
      { dynamodb: h.endpoints.dynamodb, sqs: h.endpoints.sqsAndS3, s3: h.endpoints.sqsAndS3 },
      { tables: h.resources.tables, queues: { ...h.resources.queues, backfill: h.queue }, bucket: h.resources.bucket },
      { source: 'configured', url: h.fake.url },
    );
  });
  afterEach(() => h.endCase());

  it('replaces a run still running and fetches what it had left too: stored == the API\'s records of both ranges, nothing between them', async () => {
    const key = { userId: freshUser(), provider: 'oura', resource: 'sleep' };
    const older = { start: '2026-01-01T00:00:00+00:00', end: '2026-03-30T00:00:00+00:00' };
    const resync = { start: '2026-05-01T00:00:00Z', end: '2026-05-20T00:00:00Z' };
    const olderRun = await h.historical(key, older.start, older.end);
    // The older run's first window, by hand: it is running, at window 2 of 3.
    const first = await h.receiveJob();
    assert.deepEqual((await createBackfillHandler(h.dependencies({ maxPagesPerInvocation: 1 }))(first.event, lambdaContext)).batchItemFailures, []);
    await first.ack();
    const running = await h.statuses.get(key);
    assert.deepEqual({ state: running?.state, windowIndex: running?.windowIndex, windowsTotal: running?.windowsTotal }, { state: 'running', windowIndex: 1, windowsTotal: 3 });

    // The resync waits for its run; the backfill function starts once the run is registered.
    const resyncing = cli(['backfill', '--user', key.userId, '--provider', 'oura', '--resource', 'sleep', '--from', resync.start, '--to', resync.end, '--wait', '--json']);
    for (let tries = 0; !(await h.statuses.get(key))?.runId.startsWith('resync_'); tries += 1) {
      assert.ok(tries < 600, 'the resync registers its run');
      await sleep(50);
    }
    const stop = await h.startBackfill();
    const run = await resyncing;
    await stop();
    assert.equal(run.code, 0, run.stderr);
    const [result] = JSON.parse(run.stdout) as ResyncResult[];
    assert.equal(result?.outcome, 'queued');
    assert.equal(result.took_over, olderRun, 'it says which run it took over');
    assert.equal(result.status, 'completed');
    // The older run's remainder from the start of its window at the checkpoint, then the resync's own range.
    assert.deepEqual(result.ranges, [
      { start_date: '2026-01-31T00:00:00.000Z', end_date: '2026-03-30T00:00:00.000Z' },
      { start_date: '2026-05-01T00:00:00.000Z', end_date: '2026-05-20T00:00:00.000Z' },
    ]);

    const stored = await h.records.querySummaries(key.userId, key.resource, { from: '2025-01-01T00:00:00Z', to: '2027-01-01T00:00:00Z' });
    const expected = new Set([
      ...h.fake.identitiesFor(key.userId, key.provider, key.resource, older.start, older.end),
      ...h.fake.identitiesFor(key.userId, key.provider, key.resource, resync.start, resync.end),
    ]);
    assert.deepEqual(new Set(stored.map((record) => record.object.id)), expected, 'both ranges, and nothing of the gap between them');
    assert.equal(startDates(h).filter((start) => start === '2026-01-01T00:00:00.000Z').length, 1, 'the window done before is not fetched again');
  });

  it('--wait exits 1 when a run fails, saying why and how to retry it', async () => {
    const key = { userId: freshUser(), provider: 'oura', resource: 'heartrate' };
    h.fake.setFaults({ fixedStatus: 404 });
    const stop = await h.startBackfill();
    const run = await cli(['backfill', '--user', key.userId, '--provider', 'oura', '--resource', 'heartrate', '--from', '2026-05-01', '--to', '2026-05-02', '--wait']);
    await stop();
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /^queued heartrate: run (resync_\w{27}) fetches 2026-05-01T00:00:00.000Z to 2026-05-02T00:00:00.000Z in 1 window\nfailed heartrate \(run \1\): 0 records stored; [^\n]*HTTP 404\n$/);
    assert.match(run.stderr, new RegExp(`^vital-pipeline: 1 of 1 runs failed \\(heartrate: [^)]*HTTP 404\\); once the cause is gone: vital-pipeline backfill retry --user ${key.userId}\n$`));
    assert.equal((await h.statuses.get(key))?.state, 'failed');
  });
});
