import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { ResyncResult } from '../../cli/commands/backfill-resync';
import { readRecords, type RecordRow } from '../../cli/record-queries';
import { localTarget, type PipelineTarget } from '../../cli/target';
import type { Output } from '../../local/console-output';
import { startFakeVitalApi, type FakeVitalApi } from '../../local/fake-vital-api';
import { SIMULATED_VITAL, startLocalPipeline, type RunningPipeline } from '../../local/pipeline';
import { runCli } from '../support/cli-process';

/**
 * `vital-pipeline backfill` (the on-demand resync) against the local pipeline and its simulated
 * Vital API, the CLI run as a user runs it (a child process): over a range where some records are
 * stored already (by webhook events) and some are not, it ends with stored == the API's records for
 * the range; a record stored in a newer version than the API's keeps it; `--all` takes the
 * resources of the user's connection and says which it skipped and why. The API's records come
 * from a second simulated API with the same seed, which answers the same.
 */

const quiet: Output = { line: () => undefined, plain: () => undefined };
const FROM = '2026-03-01T00:00:00Z';
const TO = '2026-03-05T00:00:00Z';
const PROVIDER = 'oura';

let dataDir: string;
let eventsDir: string;
let pipeline: RunningPipeline;
let twin: FakeVitalApi;
let target: PipelineTarget;

const cliEnvironment = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '', HOME: dataDir, LOCAL_DATA_DIR: dataDir });
const cli = (args: string[], timeoutMs = 90_000) => runCli(args, cliEnvironment(), '', timeoutMs);

/** What the API answers for the range, as the backfill would fetch it (one request: the range is short). */
async function fromApi(apiPath: string, start = FROM, end = TO): Promise<Record<string, unknown>> {
  const url = `${twin.url}${apiPath}?start_date=${encodeURIComponent(start)}&end_date=${encodeURIComponent(end)}&provider=${PROVIDER}`;
  const response = await fetch(url, { headers: { 'x-vital-api-key': 'twin' } });
  assert.equal(response.status, 200);
  return (await response.json()) as Record<string, unknown>;
}

const envelope = (userId: string, eventType: string, data: unknown) => ({
  event_type: eventType,
  data,
  user_id: userId,
  client_user_id: `client-${userId}`,
  team_id: '3aac677c-557f-40b7-9251-0315c1f48e77',
});

/** Signs and posts events through the endpoint, as Vital would deliver them. */
async function deliver(events: readonly unknown[]): Promise<void> {
  const file = path.join(eventsDir, `${randomUUID()}.json`);
  await writeFile(file, JSON.stringify(events));
  const run = await cli(['send', '--file', file]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.trim().split('\n').filter((line) => /^2\d\d /.test(line)).length, events.length, run.stdout);
}

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not in time (${JSON.stringify(value).slice(0, 300)})`);
    await sleep(200);
  }
}

/** Identities as the simulated API counts them (`identitiesFor`): summary ids, and provider|type|timestamp|sample type. */
const identityOf = (row: RecordRow): string =>
  row.resource === 'heartrate'
    ? `${row.provider}|${row.source_type}|${String(row.record.timestamp)}|${String(row.record.type ?? null)}`
    : row.key;

const stored = async (userId: string, resource: string) => new Set((await readRecords(target.dynamodb, target.tables, { userId, resource })).map(identityOf));

describe('backfill (resync) against the local pipeline and its simulated Vital API', () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'resync-'));
    eventsDir = await mkdtemp(path.join(tmpdir(), 'resync-events-'));
    pipeline = await startLocalPipeline({ port: 0, dataDir, timeScale: 1, vitalApi: 'simulated' }, quiet);
    twin = await startFakeVitalApi({ apiKey: 'twin', ...SIMULATED_VITAL });
    target = await localTarget(dataDir);
  });

  after(async () => {
    target?.close();
    await Promise.all([pipeline?.stop(), twin?.stop()]);
    await rm(dataDir, { recursive: true, force: true });
    await rm(eventsDir, { recursive: true, force: true });
  });

  it('--all over a range with gaps ends with stored == the API\'s records, keeps a newer stored version, and says what it skipped', async () => {
    const userId = randomUUID();
    // The connection: two resources to fetch, one the provider does not make available, one this catalogue does not know.
    const scopes = { user_granted: { required: [], optional: [] }, user_denied: { required: [], optional: [] } };
    await deliver([
      envelope(userId, 'provider.connection.created', {
        user_id: userId,
        provider: { name: 'Oura', slug: PROVIDER, logo: 'https://example.com/oura.png' },
        resource_availability: {
          sleep: { status: 'available', scope_requirements: scopes },
          heartrate: { status: 'available', scope_requirements: scopes },
          workouts: { status: 'unavailable', scope_requirements: scopes },
          hypnogram: { status: 'available', scope_requirements: scopes },
        },
      }),
    ]);

    // Some of the range is stored already, as webhook events: every other sleep record (one of them
    // in a version newer than the API's) and the first day's heartrate samples. The rest is a gap.
    const sleeps = (await fromApi(`/v2/summary/sleep/${userId}`)).sleep as Record<string, unknown>[];
    assert.ok(sleeps.length >= 3, 'the API holds sleep records in the range');
    const newer: Record<string, unknown> = { ...sleeps[0]!, updated_at: new Date().toISOString(), value: 999_999 };
    const sleepEvents = [newer, ...sleeps.slice(2).filter((_, index) => index % 2 === 0)].map((object) => envelope(userId, 'daily.data.sleep.created', object));
    const firstDay = (await fromApi(`/v2/timeseries/${userId}/heartrate/grouped`, FROM, '2026-03-02T00:00:00Z')) as {
      groups: Record<string, { source: Record<string, unknown>; data: unknown[] }[]>;
    };
    const group = firstDay.groups[PROVIDER]![0]!;
    const heartrateEvent = envelope(userId, 'daily.data.heartrate.created', { user_id: userId, source: group.source, data: group.data });
    await deliver([...sleepEvents, heartrateEvent]);
    await until('the webhook events stored', () => stored(userId, 'sleep'), (ids) => ids.size === sleepEvents.length);
    await until('the heartrate event stored', () => stored(userId, 'heartrate'), (keys) => keys.size === group.data.length);
    const expectedSleep = twin.identitiesFor(userId, PROVIDER, 'sleep', FROM, TO);
    const expectedHeartrate = twin.identitiesFor(userId, PROVIDER, 'heartrate', FROM, TO);
    assert.ok((await stored(userId, 'sleep')).size < expectedSleep.size && (await stored(userId, 'heartrate')).size < expectedHeartrate.size, 'gaps before the resync');

    const run = await cli(['backfill', '--user', userId, '--provider', PROVIDER, '--all', '--from', FROM, '--to', TO, '--wait', '--json'], 180_000);
    assert.equal(run.code, 0, run.stderr);
    const results = JSON.parse(run.stdout) as ResyncResult[];
    const byResource = new Map(results.map((result) => [result.resource, result]));
    assert.deepEqual([...byResource.keys()].sort(), ['heartrate', 'hypnogram', 'sleep', 'workouts']);
    for (const resource of ['sleep', 'heartrate']) {
      const result = byResource.get(resource)!;
      assert.equal(result.outcome, 'queued', resource);
      assert.equal(result.status, 'completed', `${resource}: ${result.failure_reason ?? ''}`);
      assert.match(result.run_id ?? '', /^resync_[0-9A-Za-z]{27}$/);
    }
    assert.equal(byResource.get('sleep')!.run_id, byResource.get('heartrate')!.run_id, 'one resync, one run id');
    assert.deepEqual(byResource.get('workouts'), { user_id: userId, provider: PROVIDER, resource: 'workouts', outcome: 'skipped', reason: 'the connection announced it unavailable' });
    assert.match(byResource.get('hypnogram')!.reason ?? '', /catalogue does not know the resource/);

    assert.deepEqual(await stored(userId, 'sleep'), expectedSleep, 'every sleep record of the range, nothing else');
    assert.deepEqual(await stored(userId, 'heartrate'), expectedHeartrate, 'every heartrate sample of the range, nothing else');
    const [kept] = (await readRecords(target.dynamodb, target.tables, { userId, resource: 'sleep' })).filter((row) => row.key === newer.id);
    assert.deepEqual({ updated_at: kept?.record.updated_at, value: kept?.record.value }, { updated_at: newer.updated_at, value: 999_999 }, 'the newer stored version stays');

    // inspect backfills shows the resync's runs like any other.
    const inspect = await cli(['inspect', 'backfills', '--user', userId, '--json']);
    assert.equal(inspect.code, 0, inspect.stderr);
    const rows = JSON.parse(inspect.stdout) as { resource: string; status: string }[];
    assert.deepEqual(rows.filter((row) => row.resource === 'sleep' || row.resource === 'heartrate').map((row) => row.status), ['completed', 'completed']);
  });

  it('without --wait: prints the run ids and the command to follow them, and returns', async () => {
    const userId = randomUUID();
    const run = await cli(['backfill', '--user', userId, '--provider', PROVIDER, '--resource', 'sleep', '--from', FROM, '--to', TO]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^queued sleep: run resync_[0-9A-Za-z]{27} fetches 2026-03-01T00:00:00.000Z to 2026-03-05T00:00:00.000Z in 1 window\n/);
    assert.match(run.stdout, new RegExp(`\nFollow them: vital-pipeline inspect backfills --user ${userId}\n$`));
  });

  it('--all without a connection with the provider says so, and queues nothing', async () => {
    const userId = randomUUID();
    const run = await cli(['backfill', '--user', userId, '--provider', PROVIDER, '--all', '--from', FROM, '--to', TO]);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(
      run.stderr,
      new RegExp(`^vital-pipeline: no connection of user ${userId} with oura in the local pipeline: --all takes the resources from the connection \\(provider.connection.created\\); name one with --resource instead\n$`),
    );
    const inspect = await cli(['inspect', 'backfills', '--user', userId, '--json']);
    assert.deepEqual(JSON.parse(inspect.stdout), []);
  });
});
