import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { backfillTimeReserveMs } from '../../functions/shared/resources';
import { API_KEY, startHarness, type Harness } from './harness';

let h: Harness;
let child: ChildProcess | undefined;

before(async () => {
  // Slow answers, so that the kill lands in the middle of the job. The harness's time scale (3 s
  // timeout, 0.75 s reserve) keeps invocations from timing out on a loaded machine: a timeout would
  // re-fetch a window of its own, beside the one the kill re-fetches. (At 1/120, a 0.25 s reserve
  // against 150 ms answers, CI saw it.) The killed invocation's message reappears 18 s later.
  h = await startHarness({ fake: { faults: { delayMs: 150 } } });
});
after(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await h.stop();
});

it('a backfill killed half-way resumes from its checkpoint and re-fetches at most one window', async () => {
  const key = { userId: 'resume-user', provider: 'oura', resource: 'activity' };
  const start = '2024-01-01T00:00:00+00:00';
  const end = '2024-12-31T00:00:00+00:00';
  child = fork(new URL('./support/backfill-process.ts', import.meta.url), [
    JSON.stringify({
      dynamoEndpoint: h.endpoints.dynamodb,
      sqsEndpoint: h.endpoints.sqsAndS3,
      tables: h.resources.tables,
      bucket: h.resources.bucket,
      queueUrl: h.queue.url,
      queueArn: h.queue.arn,
      functionTimeoutSeconds: h.queue.functionTimeoutSeconds,
      timeReserveMs: backfillTimeReserveMs(h.timeScale),
      apiUrl: h.fake.url,
      apiKey: API_KEY,
    }),
  ], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  await once(child, 'message');
  const runId = await h.historical(key, start, end);

  let killedAt: number | undefined;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(20)) {
    const status = await h.statuses.get(key);
    if (status && status.windowsDone >= 4) {
      child.kill('SIGKILL');
      await once(child, 'exit');
      killedAt = (await h.statuses.get(key))!.windowsDone;
      break;
    }
  }
  assert.ok(killedAt !== undefined && killedAt < 13, `killed half-way, at window ${killedAt}`);
  const atKill = (await h.statuses.get(key))!;
  assert.equal(atKill.state, 'running');

  const stop = await h.startBackfill({ concurrency: 1 });
  try {
    const done = await h.waitForState(key, runId, ['completed', 'failed']);
    assert.equal(done.state, 'completed');
    assert.equal(done.windowsTotal, 13);
    assert.equal(done.windowsDone, 13);
  } finally {
    await stop();
  }

  const windowStarts = h.fake.counters.dataRequests.map((request) => new URL(request, 'http://x').searchParams.get('start_date'));
  const fetchedTwice = [...new Set(windowStarts)].filter((startDate) => windowStarts.filter((s) => s === startDate).length > 1);
  assert.equal(new Set(windowStarts).size, 13, 'every window fetched');
  assert.ok(fetchedTwice.length <= 1, `windows fetched twice: ${fetchedTwice.join(', ')}`);
  const stored = await h.records.querySummaries(key.userId, key.resource, { from: '2023-12-01T00:00:00Z', to: '2025-01-31T00:00:00Z' });
  assert.deepEqual(new Set(stored.map((record) => record.object.id)), h.fake.identitiesFor(key.userId, key.provider, key.resource, start, end));
});
