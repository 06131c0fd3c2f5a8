import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { exampleEvent } from '../../functions/domain/example-events';
import { startFakeVitalApi, type FakeVitalApi } from '../../local/fake-vital-api';
import { CLI_COMMAND, PROJECT_ROOT } from '../support/cli-process';
import { freePipelinePort } from '../support/pipeline-port';

/**
 * The local pipeline as a user runs it: `npm start` in a child process (its own process group, so
 * Ctrl-C can be sent as a terminal sends it), events sent and read back with the `vital-pipeline`
 * CLI in child processes, a fake Vital Data Access API on loopback for the historical backfill.
 */

const root = PROJECT_ROOT;
const API_KEY = 'e2e-team-key';

let dataDir: string;
let port: number;
let fakeApi: FakeVitalApi;
let pipeline: RunningProcess;

interface RunningProcess {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with how `npm start` ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The environment of both the pipeline and the CLI: the project's Node first on PATH, as npm does. */
function environment(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${path.join(root, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH}`,
    LOCAL_DATA_DIR: dataDir,
    PORT: String(port),
    VITAL_API_BASE_URL: fakeApi.url,
    VITAL_API_KEY: API_KEY,
    VITAL_WEBHOOK_SECRET: '',
    POWERTOOLS_LOG_LEVEL: 'WARN',
  };
}

/** `npm start`'s own command, from package.json: run without npm in between, its exit code is the pipeline's. */
const startCommand = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start.split(' ');

/**
 * Runs the pipeline with `--fast-retries` (a poison event exhausts its 5 receives in about 30 s),
 * through `npm start` as a user does, or `direct`ly (npm dies of Ctrl-C itself, so only a direct
 * run shows the pipeline's exit code). Resolves once it prints its webhook endpoint.
 */
async function startPipeline(how: 'npm' | 'direct' = 'npm'): Promise<RunningProcess> {
  const [command, ...args] = how === 'npm' ? ['npm', 'start', '--'] : startCommand;
  const child = spawn(command!, [...args, '--fast-retries'], { cwd: root, env: environment(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 90_000;
  while (!output.includes('Webhook endpoint: ')) {
    if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`npm start did not get ready:\n${output}`);
    await sleep(100);
  }
  return { child, output: () => output, exited };
}

/** Whether any process of the group still runs. */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Sends SIGINT to the pipeline's process group, as Ctrl-C in a terminal does, and waits until no
 * process of the group is left (npm itself dies of the signal; the pipeline stops and exits).
 */
async function interrupt(running: RunningProcess): Promise<void> {
  const pid = running.child.pid!;
  if (!groupAlive(pid)) return;
  process.kill(-pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (groupAlive(pid)) {
    if (Date.now() > deadline) throw new Error('the pipeline did not stop in 30 s');
    await sleep(100);
  }
}

/** Processes whose command line mentions the data folder: DynamoDB Local's JVM has `-dbPath <dataDir>/...`. */
function processesUsing(folder: string): Promise<string[]> {
  return new Promise((resolve) => {
    execFile('pgrep', ['-f', folder], (_, stdout) => resolve(stdout.split('\n').filter(Boolean)));
  });
}

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(CLI_COMMAND[0]!, [...CLI_COMMAND.slice(1), ...args], { cwd: root, env: environment() }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function cliJson<T>(...args: string[]): Promise<T> {
  const result = await cli(...args, '--json');
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as T;
}

/** Polls `read` until `done` holds for what it returns. */
async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met in time; last value: ${JSON.stringify(value).slice(0, 500)}`);
    await sleep(300);
  }
}

interface RecordRow {
  resource: string;
  provider: string;
  source_type: string;
  key: string;
  record: Record<string, unknown>;
}

const records = (user: string, resource: string) => () => cliJson<RecordRow[]>('inspect', 'records', '--user', user, '--resource', resource);

/** The poison event's svix-id: sent at start, so its five failing receives (about 30 s) overlap the other cases. */
let poisonSvixId: string;

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'vital-e2e-'));
  port = await freePipelinePort();
  fakeApi = await startFakeVitalApi({ apiKey: API_KEY });
  pipeline = await startPipeline();
  const poison = path.join(dataDir, 'poison.json');
  await writeFile(poison, JSON.stringify({ event_type: 'daily.data.activity.created', data: { no_id: true }, user_id: 'u', client_user_id: 'c', team_id: 't' }));
  const sent = await cli('send', '--file', poison);
  assert.equal(sent.code, 0, sent.stderr);
  poisonSvixId = sent.stdout.split(/\s+/)[1]!;
});

after(async () => {
  try {
    if (pipeline) await interrupt(pipeline).catch(() => process.kill(-pipeline.child.pid!, 'SIGKILL'));
  } finally {
    await fakeApi?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});

describe('npm start and the vital-pipeline CLI', () => {
  it('prints the endpoint and a generated dev secret', () => {
    assert.match(pipeline.output(), new RegExp(`Webhook endpoint: http://127\\.0\\.0\\.1:${port}/webhooks/vital`));
    assert.match(pipeline.output(), /Signing secret: whsec_\S+ \(generated now, kept in /);
  });

  it('stores a summary exactly as Vital sent it', async () => {
    const sent = await cli('send', '--type', 'daily.data.workouts.created', '--user', 'user-summary');
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /^202 {2}msg_\w{27} {2}daily\.data\.workouts\.created {2}user user-summary {2}provider \w+ {2}\{"status":"accepted"\}$/m);
    const rows = await eventually(records('user-summary', 'workouts'), (found) => found.length === 1);
    const expected = exampleEvent('daily.data.workouts.created', { userId: 'user-summary' }).data;
    assert.deepEqual(rows[0], { resource: 'workouts', provider: 'oura', source_type: 'ring', key: expected.id, record: expected });
  });

  it('stores every timeseries sample exactly as sent', async () => {
    assert.equal((await cli('send', '--type', 'daily.data.heartrate.created', '--user', 'user-series')).code, 0);
    const samples = (exampleEvent('daily.data.heartrate.created', { userId: 'user-series' }).data as { data: Record<string, unknown>[] }).data;
    const rows = await eventually(records('user-series', 'heartrate'), (found) => found.length === samples.length);
    assert.deepEqual(rows.map((row) => row.record), samples);
    assert.ok(rows.every((row) => row.provider === 'oura' && row.source_type === 'ring'));
  });

  it('keeps one record for a delivery sent three times', async () => {
    const sent = await cli('send', '--type', 'daily.data.sleep.created', '--user', 'user-duplicates', '--duplicate', '2');
    assert.equal(sent.code, 0, sent.stderr);
    const ids = sent.stdout.trim().split('\n').map((line) => line.split(/\s+/)[1]);
    assert.equal(ids.length, 3);
    assert.equal(new Set(ids).size, 1, 'every copy carries the same svix-id');
    await eventually(records('user-duplicates', 'sleep'), (found) => found.length === 1);
    // The console says what each copy did: one stored the record, the others changed nothing.
    const workerLines = () => pipeline.output().split('\n').filter((line) => line.includes(` ${ids[0]}  `) && / worker /.test(line));
    await eventually(async () => workerLines(), (found) => found.length === 3);
    assert.deepEqual(
      workerLines().map((line) => line.split('daily.data.sleep.created  ')[1]).sort(),
      ['duplicate: already stored, nothing changed', 'duplicate: already stored, nothing changed', 'stored 1 record'],
    );
    await sleep(2_000);
    assert.equal((await records('user-duplicates', 'sleep')()).length, 1);
    // (The poison event sent at start may be dead-lettered by now; no copy of this delivery is.)
    assert.ok(!(await cliJson<{ svix_id: string }[]>('inspect', 'dlq')).some((letter) => letter.svix_id === ids[0]));
  });

  it('backfills a historical event from the Vital API and reports it', async () => {
    const notice = exampleEvent('historical.data.workouts.created', { userId: 'user-history' }).data as { start_date: string; end_date: string };
    assert.equal((await cli('send', '--type', 'historical.data.workouts.created', '--user', 'user-history')).code, 0);
    const backfills = await eventually(
      () => cliJson<{ status: string }[]>('inspect', 'backfills', '--user', 'user-history'),
      (found) => found.length === 1 && found[0]!.status === 'completed',
      60_000,
    );
    const expected = fakeApi.identitiesFor('user-history', 'oura', 'workouts', notice.start_date, notice.end_date);
    assert.ok(expected.size > 0);
    const rows = await records('user-history', 'workouts')();
    assert.deepEqual(new Set(rows.map((row) => row.key)), expected);
    assert.deepEqual(Object.keys(backfills[0]!).sort(), ['end_date', 'held_back', 'provider', 'records', 'resource', 'start_date', 'status']);
  });

  it('moves a poison event to the DLQ after maxReceiveCount, and replay brings it back', async () => {
    const svixId = poisonSvixId;
    const letters = await eventually(
      () => cliJson<{ svix_id: string; event_type: string; attempts: number | null; last_error: string | null }[]>('inspect', 'dlq'),
      (found) => found.some((letter) => letter.svix_id === svixId),
      60_000,
    );
    const letter = letters.find((found) => found.svix_id === svixId)!;
    assert.equal(letter.event_type, 'daily.data.activity.created');
    assert.equal(letter.attempts, 5, 'the worker noted each of its 5 attempts');
    assert.match(letter.last_error ?? '', /^MalformedEnvelopeError: daily\.data\.activity\.created body does not match its schema/);
    const again = await cliJson<{ svix_id: string; attempts: number | null }[]>('inspect', 'dlq');
    assert.equal(again.find((found) => found.svix_id === svixId)?.attempts, 5, 'looking again changes nothing');
    assert.doesNotMatch(JSON.stringify(letters), /no_id/, 'inspect dlq never shows payload values');

    const replayed = await cli('replay', '--svix-id', svixId);
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.match(replayed.stdout, /^events: moved 1 message\(s\) from the DLQ back to the queue; 0 left in the DLQ$/m);
    const firstAttempts = () => pipeline.output().split('\n').filter((line) => line.includes(svixId) && line.includes('attempt 1 of 5')).length;
    await eventually(async () => firstAttempts(), (count) => count === 2, 20_000);
  });

  it('fails with one line on stderr and a non-zero code', async () => {
    const unknownType = await cli('send', '--type', 'daily.data.nothing.created');
    assert.equal(unknownType.code, 2);
    assert.equal(unknownType.stderr.trim().split('\n').length, 1);
    const wrongSecret = await cli('send', '--type', 'daily.data.steps.created', '--secret', 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    assert.equal(wrongSecret.code, 1);
    assert.match(wrongSecret.stdout, /^401 /m);
    assert.match(wrongSecret.stderr, /^vital-pipeline: 1 of 1 deliveries were refused\n$/);
  });

  /**
   * Ctrl-C's contract: the pipeline finishes what is in flight (lines may follow "stopping"), says
   * "Stopped." last, and leaves no process of its own behind; run directly, it exits 0 (under npm,
   * npm itself dies of the signal, as for any npm script).
   */
  async function assertStoppedCleanly(running: RunningProcess, exit: { code: number | null; signal: NodeJS.Signals | null }): Promise<void> {
    await interrupt(running);
    const output = running.output();
    assert.match(output, /SIGINT: stopping\.\.\.\n/);
    assert.ok(output.endsWith('Stopped.\n'), `nothing is printed after "Stopped.": ${JSON.stringify(output.slice(output.lastIndexOf('SIGINT')))}`);
    assert.deepEqual(await running.exited, exit);
    assert.deepEqual(await processesUsing(dataDir), []);
  }

  it('keeps its data over a restart, and Ctrl-C leaves no process behind', async () => {
    await assertStoppedCleanly(pipeline, { code: null, signal: 'SIGINT' });
    const stopped = await cli('inspect', 'dlq');
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, /not running/);

    pipeline = await startPipeline('direct');
    assert.match(pipeline.output(), /Signing secret: whsec_\S+ \(kept in /, 'the dev secret is generated once');
    assert.equal((await records('user-summary', 'workouts')()).length, 1);
    assert.equal((await cli('send', '--type', 'daily.data.workouts.updated', '--user', 'user-summary')).code, 0);
    const updated = exampleEvent('daily.data.workouts.updated', { userId: 'user-summary' }).data;
    await eventually(records('user-summary', 'workouts'), (found) => found.length === 1 && found[0]!.record.updated_at === updated.updated_at);

    await assertStoppedCleanly(pipeline, { code: 0, signal: null });
  });
});
