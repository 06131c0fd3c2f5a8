import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isolatedAwsEnvironment, PROJECT_ROOT, runCli } from '../support/cli-process';

/**
 * What every `vital-pipeline` command keeps to, as a user meets it (the CLI run as a child process):
 * its own `--help`, `--version`, and a wrong option said in the CLI's words with exit code 2. No
 * pipeline runs: none of these gets as far as looking for one.
 */

const COMMANDS = ['send', 'inspect', 'events', 'replay', 'backfill', 'erase', 'register', 'secrets', 'doctor'] as const;

let home: string;

before(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'conventions-cli-'));
});

after(async () => {
  await rm(home, { recursive: true, force: true });
});

const cli = (args: string[]) => runCli(args, isolatedAwsEnvironment(home, 'us-east-1'));

/** The commands whose own lines (two spaces in, then the command's name) a help text shows. */
const commandsShown = (help: string): string[] => COMMANDS.filter((command) => new RegExp(`^  ${command}\\b`, 'm').test(help));

describe('vital-pipeline conventions', () => {
  it('<command> --help (or -h, or help <command>) prints that command\'s usage and options only', async () => {
    const everything = await cli(['--help']);
    assert.deepEqual(commandsShown(everything.stdout), [...COMMANDS]);
    const helps = new Map(await Promise.all(COMMANDS.map(async (command) => [command, await cli([command, '--help'])] as const)));
    for (const [command, long] of helps) {
      assert.equal(long.code, 0, long.stderr);
      assert.match(long.stdout, new RegExp(`^Usage: vital-pipeline ${command}\\b`));
      assert.deepEqual(commandsShown(long.stdout), [command]);
      // Every command takes a stack, in a region.
      assert.match(long.stdout, /--stack <name> \[--region <aws region>\]/);
    }
    // -h and `help <command>` are read before the command is (one path for all): two commands show it.
    for (const command of ['send', 'inspect'] as const) {
      const [short, spelled] = await Promise.all([cli([command, '-h']), cli(['help', command])]);
      assert.equal(short.stdout, helps.get(command)!.stdout);
      assert.equal(spelled.stdout, helps.get(command)!.stdout);
    }
    const send = await cli(['send', '--type', 'daily.data.sleep.created', '--help']);
    assert.match(send.stdout, /--type <event type>/);
    assert.doesNotMatch(send.stdout, /--webhook-id/, 'no option of another command');
  });

  it('--version and -V print the version of package.json', async () => {
    const { version } = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const run = await cli([flag]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, `${version}\n`);
    }
  });

  it('a time option takes ISO 8601 only, read as strictly as the pipeline reads every time (no "Jan 5 2024", no month 13)', async () => {
    for (const at of ['Jan 5 2024', '2024-13-45']) {
      const run = await cli(['send', '--type', 'daily.data.sleep.created', '--at', at, '--print', '--secret', 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']);
      assert.equal(run.code, 2);
      assert.equal(run.stderr, `vital-pipeline: --at must be an ISO 8601 time, not "${at}" (see vital-pipeline send --help)\n`);
    }
  });

  it('an unknown command: one line with the close command names; exit 2', async () => {
    const run = await cli(['inspcet', 'records']);
    assert.equal(run.code, 2);
    assert.equal(run.stderr, 'vital-pipeline: Unknown command "inspcet". Did you mean inspect? (see vital-pipeline --help)\n');
  });

  it('an unknown option: one line naming the command, the option and the command\'s help; exit 2', async () => {
    const run = await cli(['send', '--foo', '--type', 'daily.data.sleep.created']);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.equal(run.stderr, 'vital-pipeline: send: unknown option --foo (see vital-pipeline send --help)\n');
  });

  it('a mistyped option gets the close names of that command\'s options', async () => {
    const user = await cli(['inspect', 'records', '--usr', 'u', '--resource', 'sleep']);
    assert.equal(user.code, 2);
    assert.equal(user.stderr, 'vital-pipeline: inspect: unknown option --usr. Did you mean --user? (see vital-pipeline inspect --help)\n');
    const duplicate = await cli(['send', '--type', 'daily.data.sleep.created', '--duplicat', '2']);
    assert.equal(duplicate.code, 2);
    assert.match(duplicate.stderr, /^vital-pipeline: send: unknown option --duplicat\. Did you mean --duplicate\? /);
  });

  it('a missing or unwanted option value is said in the CLI\'s words, not Node\'s', async () => {
    const cases: [string[], string][] = [
      [['send', '--user'], 'send: --user needs a value'],
      [['send', '--user', '--json'], 'send: --user needs a value; one starting with "-" is given as --user=<value>'],
      [['inspect', 'dlq', '--json=yes'], 'inspect: --json takes no value'],
      [['replay', '-x'], 'replay: unknown option -x'],
    ];
    for (const [args, said] of cases) {
      const run = await cli(args);
      assert.equal(run.code, 2, args.join(' '));
      assert.equal(run.stderr, `vital-pipeline: ${said} (see vital-pipeline ${args[0]} --help)\n`);
    }
  });

  it('--region is the AWS region of --stack: not without it, and not a Vital region', async () => {
    const alone = await cli(['inspect', 'dlq', '--region', 'eu-west-1']);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /^vital-pipeline: inspect: --region is the AWS region of a deployed stack: give it with --stack <name>/);
    const vital = await cli(['doctor', '--stack', 'VitalWebhookPipeline', '--region', 'eu']);
    assert.equal(vital.code, 2);
    assert.match(vital.stderr, /^vital-pipeline: doctor: --region is the stack's AWS region, such as eu-west-1, not "eu"; the Vital API region is --vital-region/);
  });
});
