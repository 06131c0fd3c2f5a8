import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isolatedAwsEnvironment, runCli } from '../support/cli-process';

/**
 * A wrong command line for `vital-pipeline backfill` (the resync, and `backfill retry` beside it) is
 * told in the CLI's words with exit code 2, before any pipeline is looked for: none runs here.
 */

let home: string;

before(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'resync-cli-'));
});

after(async () => {
  await rm(home, { recursive: true, force: true });
});

const cli = (args: string[]) => runCli(args, isolatedAwsEnvironment(home, 'us-east-1'));
const resync = (...more: string[]) => ['backfill', '--user', 'u1', '--provider', 'oura', ...more];

describe('vital-pipeline backfill: wrong command lines', () => {
  it('each mistake is one line on stderr in the CLI\'s words, with the command\'s help; exit 2', async () => {
    const cases: [string[], string][] = [
      [['backfill'], 'a resync needs --user <id>; to resume failed runs: backfill retry'],
      [['backfill', '--user', 'u1', '--resource', 'sleep'], 'a resync needs --provider <slug>'],
      [resync('--resource', 'sleep').map((arg) => (arg === 'oura' ? 'Oura Ring' : arg)), '--provider is a provider slug such as oura or garmin, not "Oura Ring"'],
      [resync('--from', '2026-05-01', '--to', '2026-05-02'), 'a resync needs --resource <name>, or --all for every resource of the user\'s connection'],
      [resync('--all', '--resource', 'sleep', '--from', '2026-05-01', '--to', '2026-05-02'), '--resource or --all, not both: --all resyncs every resource of the user\'s connection'],
      [resync('--resource', 'heart_rate', '--from', '2026-05-01', '--to', '2026-05-02'), 'Unknown resource "heart_rate". Did you mean heart_rate_alert, heart_rate_recovery_one_minute, heartrate? Every resource: vital-pipeline inspect resources'],
      [resync('--resource', 'sleep', '--to', '2026-05-02'), 'a resync needs --from <iso> and --to <iso>: --from is missing'],
      [resync('--resource', 'sleep', '--from', '2026-05-01'), 'a resync needs --from <iso> and --to <iso>: --to is missing'],
      [resync('--resource', 'sleep', '--from', 'yesterday', '--to', '2026-05-02'), '--from must be an ISO 8601 date or time, such as 2026-05-01 or 2026-05-01T08:00:00Z, not "yesterday"'],
      // An impossible date is no date (Date.parse would roll it over into March).
      [resync('--resource', 'sleep', '--from', '2026-02-30', '--to', '2026-05-02'), '--from must be an ISO 8601 date or time, such as 2026-05-01 or 2026-05-01T08:00:00Z, not "2026-02-30"'],
      [resync('--resource', 'sleep', '--from', '2026-05-01', '--to', '05/02/2026'), '--to must be an ISO 8601 date or time, such as 2026-05-01 or 2026-05-01T08:00:00Z, not "05/02/2026"'],
      [resync('--resource', 'sleep', '--from', '2026-05-02', '--to', '2026-05-01T23:00:00Z'), '--from must be before --to (2026-05-02 is not before 2026-05-01T23:00:00Z)'],
      [resync('--resource', 'sleep', '--from', '2026-05-01T10:00:00+02:00', '--to', '2026-05-01T08:00:00Z'), '--from must be before --to (2026-05-01T10:00:00+02:00 is not before 2026-05-01T08:00:00Z)'],
      [['backfill', 'redo', '--user', 'u1'], 'backfill what? retry, or a resync: backfill --user <id> --provider <slug> --resource <name> --from <iso> --to <iso> (not "redo")'],
      [['backfill', 'retry', '--user', 'u1', '--from', '2026-05-01', '--wait'], '--from, --wait: for a resync (backfill without retry); backfill retry resumes failed runs where they stopped'],
      [['backfill', 'retry'], 'backfill retry needs --user <id> (with --provider and --resource for one run), or --all'],
      [resync('--resourse', 'sleep'), 'backfill: unknown option --resourse. Did you mean --resource?'],
      [resync('--wait=yes'), 'backfill: --wait takes no value'],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(args)));
    for (const [index, [args, said]] of cases.entries()) {
      const run = runs[index]!;
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.equal(run.stdout, '');
      assert.equal(run.stderr, `vital-pipeline: ${said} (see vital-pipeline backfill --help)\n`);
    }
  });

  it('a right command line goes on to look for the pipeline (exit 1 here, where none runs)', async () => {
    const run = await cli(resync('--resource', 'sleep', '--from', '2026-05-01', '--to', '2026-05-02T00:00:00.5Z'));
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^vital-pipeline: The local pipeline is not running/);
  });

  it('--help shows the resync and retry', async () => {
    const run = await cli(['backfill', '--help']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^Usage: vital-pipeline backfill \[retry\] \[options\]/);
    assert.match(run.stdout, /--resource <name> \| --all/);
    assert.match(run.stdout, /--from <iso> --to <iso>/);
    assert.match(run.stdout, /--wait/);
    assert.match(run.stdout, /backfill retry {3}Resume failed backfill runs/);
  });
});
