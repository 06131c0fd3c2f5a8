import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SimulationResult } from '../../cli/commands/simulate';
import { SIMULATED_RESOURCES } from '../../cli/commands/simulate';
import type { Output, OutputLine } from '../../local/console-output';
import { startFakeVitalApi, type FakeVitalApi } from '../../local/fake-vital-api';
import { SIMULATED_VITAL, startLocalPipeline, type RunningPipeline } from '../../local/pipeline';
import { runCli, writeStandInPipelineState } from '../support/cli-process';

/**
 * `npm start` without a Vital API key runs a simulated Vital API, and `vital-pipeline simulate
 * connect` plays a user connecting a provider against it: the connection event, the historical
 * notices, the backfills, the daily events. The CLI runs as a user runs it (a child process); the
 * expected history comes from a second simulated API with the same seed, which answers the same.
 */

const silentExceptStartup: string[] = [];
const lines: OutputLine[] = [];
const output: Output = { line: (line) => lines.push(line), plain: (text) => silentExceptStartup.push(text) };

let dataDir: string;
let pipeline: RunningPipeline;
let twin: FakeVitalApi;

const cliEnvironment = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '', HOME: dataDir, LOCAL_DATA_DIR: dataDir });

describe('simulate connect against the simulated Vital API', () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'simulate-'));
    pipeline = await startLocalPipeline({ port: 0, dataDir, timeScale: 1, vitalApi: 'simulated' }, output);
    twin = await startFakeVitalApi({ apiKey: 'twin', ...SIMULATED_VITAL });
  });

  after(async () => {
    await Promise.all([pipeline?.stop(), twin?.stop()]);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('says at start which Vital API the backfill fetches from, on loopback', () => {
    const line = silentExceptStartup.find((text) => text.startsWith('Vital API: '));
    assert.match(line ?? '', /^Vital API: simulated, .*\(http:\/\/127\.0\.0\.1:\d+\)\. Try: npx vital-pipeline simulate connect/);
    assert.equal(pipeline.state.vitalApi.source, 'simulated');
  });

  /** The user the first case connects; the workout-stream case builds on its history. */
  let connectedUser: string;

  it('stores the whole announced history of every resource, then the daily events that follow', async () => {
    const userId = (connectedUser = randomUUID());
    const run = await runCli(['simulate', 'connect', '--user', userId, '--provider', 'oura', '--days', '3', '--json'], cliEnvironment(), '', 180_000);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as SimulationResult;
    assert.equal(result.userId, userId);
    for (const resource of SIMULATED_RESOURCES) {
      const backfill = result.backfills.find((row) => row.resource === resource);
      assert.equal(backfill?.status, 'completed', `${resource}: ${backfill?.failure_reason ?? ''}`);
      const expected = twin.identitiesFor(userId, 'oura', resource, backfill.start_date, backfill.end_date);
      assert.ok(expected.size > 0, `${resource}: the simulated API holds history for the range`);
      assert.equal(backfill.records, expected.size, `${resource}: the backfill stored what the API holds`);
      // A daily summary is a record of its own; today's samples may fall on instants the history holds.
      const kind = resource === 'heartrate' || resource === 'steps' ? 'timeseries' : 'summary';
      if (kind === 'summary') assert.equal(result.stored[resource], expected.size + 1, `${resource}: the history and today's record`);
      else assert.ok(result.stored[resource]! >= expected.size, `${resource}: the history and today's samples`);
    }
    // The console said what the worker did with each event.
    const said = (eventType: string) => lines.filter((line) => line.source === 'worker' && line.eventType === eventType).map((line) => line.text);
    assert.deepEqual(said('provider.connection.created'), ['stored 1 connection state']);
    assert.deepEqual(said('historical.data.sleep.created'), ['backfill requested (vital-pipeline inspect backfills)']);
    for (const resource of SIMULATED_RESOURCES) assert.match(said(`daily.data.${resource}.created`).join(), /^stored \d+ (record|sample)s?$/, resource);
  });

  it('lists workout-stream jobs in inspect backfills: completed once the stream is stored, queued (and why) while none is', async () => {
    const userId = connectedUser;
    const [known] = twin.identitiesFor(userId, 'oura', 'workouts', new Date(Date.now() - 3 * 86_400_000).toISOString(), new Date().toISOString());
    assert.ok(known, 'the simulated history holds a workout');
    const notice = (workoutId: string) => ({
      event_type: 'daily.data.workout_stream.created',
      data: { user_id: userId, workout_id: workoutId, provider_id: `p-${workoutId}`, source: { provider: 'oura', type: 'ring' }, sport: { id: 1, name: 'Running', slug: 'running' } },
      user_id: userId,
      client_user_id: 'c',
      team_id: 't',
    });
    const file = path.join(dataDir, 'stream-notices.json');
    await writeFile(file, JSON.stringify([notice(known), notice('no-such-workout')]));
    assert.equal((await runCli(['send', '--file', file], cliEnvironment())).code, 0);

    type Row = { resource: string; status: string; workout_id?: string };
    let jobs: Row[] = [];
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(500)) {
      const listed = await runCli(['inspect', 'backfills', '--user', userId, '--json'], cliEnvironment());
      jobs = (JSON.parse(listed.stdout) as Row[]).filter((row) => row.resource === 'workout_stream');
      if (jobs.find((job) => job.workout_id === known)?.status === 'completed' && jobs.length === 2) break;
    }
    assert.deepEqual(
      jobs.map(({ workout_id, status }) => ({ workout_id, status })).sort((a, b) => String(a.workout_id).localeCompare(String(b.workout_id))),
      [{ workout_id: known, status: 'completed' }, { workout_id: 'no-such-workout', status: 'queued' }].sort((a, b) => a.workout_id.localeCompare(b.workout_id)),
    );
    const table = await runCli(['inspect', 'backfills', '--user', userId], cliEnvironment());
    assert.match(table.stdout, /workout_stream no-such-workout .*no stream stored yet/);
  });

  it('refuses a pipeline whose backfill fetches from a configured API, and says what to do', async () => {
    // The state file of a pipeline started with VITAL_API_KEY: the refusal comes before anything is sent.
    const otherDir = await mkdtemp(path.join(tmpdir(), 'simulate-configured-'));
    try {
      const { endpoints, tables, queues, bucket } = pipeline.state;
      await writeStandInPipelineState(otherDir, endpoints, { tables, queues, bucket }, { source: 'configured', url: 'https://api.tryvital.io' });
      const run = await runCli(['simulate', 'connect', '--provider', 'oura'], { ...cliEnvironment(), LOCAL_DATA_DIR: otherDir });
      assert.equal(run.code, 1);
      assert.match(run.stderr, /fetches history from https:\/\/api\.tryvital\.io, not from the simulated Vital API: restart npm start without VITAL_API_KEY/);
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });
});
