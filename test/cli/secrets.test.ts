import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI_COMMAND, isolatedAwsEnvironment, PROJECT_ROOT, runCli, type CliRun } from '../support/cli-process';
import { FAKE_ACCOUNT, startFakeAws, type FakeAws } from '../support/fake-aws';

/**
 * `vital-pipeline secrets set --stack <name>` as a user runs it: a child process with stdin piped (and
 * once on a pseudo-terminal, through util-linux `script`), against the fake CloudFormation and
 * Secrets Manager of test/support/fake-aws.ts. What must hold: the values reach the secrets the stack
 * outputs name, only after both pass their format check (the signing secret through the verifier's own
 * parser), and no value ever appears in the output, error messages included.
 */

const REGION = 'us-east-1';
const STACK = 'VitalWebhookPipeline-secrets';
/** A stack of someone else's: it has outputs, but not this pipeline's. */
const OTHER_STACK = 'SomeOtherStack';
const SIGNING_ARN = `arn:aws:secretsmanager:${REGION}:${FAKE_ACCOUNT}:secret:SigningSecret-AbC123`;
const API_KEY_ARN = `arn:aws:secretsmanager:${REGION}:${FAKE_ACCOUNT}:secret:VitalApiKey-XyZ789`;
/** What CloudFormation generated when the stack was created, before anyone stored the real values. */
const PLACEHOLDERS = { signing: 'q8$Zr!vT2#mW9pL^xK4&nB7@cJ1*hF6e', apiKey: 'Zm8#pQ2$wL9!vR4^tK7&nB1@cJ6*hX3d' };
const SIGNING_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const API_KEY = `sk_us_${randomBytes(16).toString('hex')}`;

let fakeAws: FakeAws;
let home: string;
/** Every value typed in this file; none may ever be printed. */
const typed = new Set<string>([SIGNING_SECRET, API_KEY]);

function environment(): NodeJS.ProcessEnv {
  return { ...isolatedAwsEnvironment(home, REGION), ...fakeAws.endpointEnvironment };
}

async function secretsSet(args: readonly string[], input: string): Promise<CliRun> {
  for (const line of input.split('\n')) if (line.trim()) typed.add(line.trim());
  const run = await runCli(['secrets', 'set', ...args], environment(), input, 30_000);
  assertNothingTypedIn(run.stdout + run.stderr);
  return run;
}

function assertNothingTypedIn(output: string): void {
  for (const value of typed) assert.ok(!output.includes(value), 'a typed value appeared in the output');
}

const puts = () => fakeAws.calls.filter((call) => call.action === 'secretsmanager.PutSecretValue');

before(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'secrets-set-'));
  fakeAws = await startFakeAws({ region: REGION });
  fakeAws.stacks.set(STACK, {
    WebhookUrl: 'https://abc123.execute-api.us-east-1.amazonaws.com/webhooks/vital',
    SigningSecretArn: SIGNING_ARN,
    VitalApiKeySecretArn: API_KEY_ARN,
  });
  fakeAws.stacks.set(OTHER_STACK, { BucketName: 'some-bucket' });
});

beforeEach(() => {
  fakeAws.secrets.set(SIGNING_ARN, PLACEHOLDERS.signing);
  fakeAws.secrets.set(API_KEY_ARN, PLACEHOLDERS.apiKey);
  fakeAws.calls.length = 0;
});

after(async () => {
  await fakeAws?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

describe('secrets set --stack', () => {
  it('stores both values from stdin (signing secret, then API key) in the secrets the outputs name, printing only ARNs', async () => {
    const run = await secretsSet(['--stack', STACK], `${SIGNING_SECRET}\n${API_KEY}\n`);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(fakeAws.secrets.get(SIGNING_ARN), SIGNING_SECRET);
    assert.equal(fakeAws.secrets.get(API_KEY_ARN), API_KEY);
    assert.match(run.stdout, new RegExp(`^Stored the webhook signing secret in ${SIGNING_ARN}$`, 'm'));
    assert.match(run.stdout, new RegExp(`^Stored the Vital API key in ${API_KEY_ARN}$`, 'm'));
    assert.match(run.stdout, new RegExp(`doctor --stack ${STACK}`));
    // Found through CloudFormation, written through Secrets Manager, each signed for its own service.
    assert.deepEqual(
      fakeAws.calls.map(({ service, action, name, credentialScope }) => ({ service, action, name, credentialScope })),
      [
        { service: 'cloudformation', action: 'DescribeStacks', name: STACK, credentialScope: `${REGION}/cloudformation/aws4_request` },
        { service: 'secretsmanager', action: 'secretsmanager.PutSecretValue', name: SIGNING_ARN, credentialScope: `${REGION}/secretsmanager/aws4_request` },
        { service: 'secretsmanager', action: 'secretsmanager.PutSecretValue', name: API_KEY_ARN, credentialScope: `${REGION}/secretsmanager/aws4_request` },
      ],
    );
  });

  it('--json prints which secret went where, and accepts the rotation form of the signing secret', async () => {
    const rotation = JSON.stringify({ current: SIGNING_SECRET, previous: `whsec_${randomBytes(24).toString('base64')}` });
    const run = await secretsSet(['--stack', STACK, '--signing-secret-only', '--json'], `${rotation}\n`);
    assert.equal(run.code, 0, run.stderr);
    const stored = JSON.parse(run.stdout) as { secret: string; arn: string; version_id: string }[];
    assert.deepEqual(stored.map(({ secret, arn }) => ({ secret, arn })), [{ secret: 'signing-secret', arn: SIGNING_ARN }]);
    assert.equal(fakeAws.secrets.get(SIGNING_ARN), rotation);
    assert.equal(fakeAws.secrets.get(API_KEY_ARN), PLACEHOLDERS.apiKey);
  });

  it('--api-key-only reads one line and leaves the signing secret alone', async () => {
    const run = await secretsSet(['--stack', STACK, '--api-key-only'], `  ${API_KEY}  \n`);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(fakeAws.secrets.get(API_KEY_ARN), API_KEY, 'stored without the surrounding blanks');
    assert.equal(fakeAws.secrets.get(SIGNING_ARN), PLACEHOLDERS.signing);
    assert.deepEqual(puts().map((call) => call.name), [API_KEY_ARN]);
  });

  it('a signing secret that is not whsec_...: one line saying what the format is, exit 1, nothing stored', async (t) => {
    const notASecret = `sk_live_${randomBytes(12).toString('hex')}`;
    const run = await secretsSet(['--stack', STACK], `${notASecret}\n${API_KEY}\n`);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    const lines = run.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, run.stderr);
    t.diagnostic(lines[0]!);
    assert.match(lines[0]!, /^vital-pipeline: Not stored: The signing secret must be a "whsec_\.\.\." string/);
    assert.deepEqual(puts(), [], 'the valid API key was not stored either');
    assert.equal(fakeAws.secrets.get(API_KEY_ARN), PLACEHOLDERS.apiKey);
  });

  it('an API key with whitespace inside, or the two values swapped: exit 1, nothing stored', async (t) => {
    const spaced = await secretsSet(['--stack', STACK], `${SIGNING_SECRET}\nsk_us_abc def\n`);
    assert.equal(spaced.code, 1);
    t.diagnostic(spaced.stderr.trim());
    assert.match(spaced.stderr, /^vital-pipeline: The Vital API key must not contain whitespace\n$/);

    const swapped = await secretsSet(['--stack', STACK, '--api-key-only'], `${SIGNING_SECRET}\n`);
    assert.equal(swapped.code, 1);
    t.diagnostic(swapped.stderr.trim());
    assert.match(swapped.stderr, /That is a webhook signing secret \(whsec_\.\.\.\), not a Vital API key/);
    assert.deepEqual(puts(), []);
    assert.equal(fakeAws.secrets.get(SIGNING_ARN), PLACEHOLDERS.signing);
  });

  it('too few lines on stdin: says how many were expected, exit 1, nothing stored', async (t) => {
    const run = await secretsSet(['--stack', STACK], `${SIGNING_SECRET}\n`);
    assert.equal(run.code, 1);
    t.diagnostic(run.stderr.trim());
    assert.match(run.stderr, /Expected 2 line\(s\) on stdin \(the webhook signing secret, then the Vital API key\), got 1: nothing stored/);
    assert.deepEqual(puts(), []);
  });

  it('a stack that cannot be read, or is not this pipeline: exit 1 before any value is read', async (t) => {
    const missing = await secretsSet(['--stack', 'NoSuchStack'], `${SIGNING_SECRET}\n${API_KEY}\n`);
    assert.equal(missing.code, 1);
    t.diagnostic(missing.stderr.trim());
    assert.match(missing.stderr, /^vital-pipeline: Could not describe stack NoSuchStack: Stack with id NoSuchStack does not exist\n$/);

    const other = await secretsSet(['--stack', OTHER_STACK], `${SIGNING_SECRET}\n${API_KEY}\n`);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /Stack SomeOtherStack has no output SigningSecretArn: is it this pipeline's stack\?/);
    assert.deepEqual(puts(), []);
  });

  it('wrong command lines are usage errors (exit 2): no --stack, both -only flags, a value as an argument', async () => {
    const noStack = await secretsSet([], '');
    assert.equal(noStack.code, 2);
    assert.match(noStack.stderr, /secrets set needs --stack <name>/);
    const both = await secretsSet(['--stack', STACK, '--signing-secret-only', '--api-key-only'], '');
    assert.equal(both.code, 2);
    assert.match(both.stderr, /at most one of --signing-secret-only and --api-key-only/);
    const asArgument = await runCli(['secrets', 'set', '--stack', STACK, '--secret', 'whsec_abc'], environment(), '', 30_000);
    assert.equal(asArgument.code, 2);
    assert.deepEqual(puts(), []);
  });

  it('at a terminal: prompts on stderr, reads with echo off, and stores what was typed', async (t) => {
    // util-linux `script` runs the CLI on a pseudo-terminal and copies everything the terminal shows
    // (the echo of typed keys included) to its stdout; what we write to its stdin is what is typed.
    const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
    const commandLine = [...CLI_COMMAND, 'secrets', 'set', '--stack', STACK].map(quote).join(' ');
    const child = spawn('script', ['-q', '-e', '-c', commandLine, '/dev/null'], { cwd: PROJECT_ROOT, env: environment(), stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout.on('data', (chunk: Buffer) => (screen += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (screen += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const waitFor = async (text: string) => {
      const deadline = Date.now() + 30_000;
      while (!screen.includes(text)) {
        if (child.exitCode !== null || Date.now() > deadline) assert.fail(`no "${text}" on the terminal; it shows: ${JSON.stringify(screen.slice(-300))}`);
        await sleep(50);
      }
    };
    try {
      await waitFor('Webhook signing secret (whsec_..., from the Junction endpoint; input hidden): ');
      // Typed with a slip corrected by backspace, as a person would.
      child.stdin.write(`${SIGNING_SECRET}x\u007f\r`);
      await waitFor('Vital team API key (input hidden): ');
      child.stdin.write(`${API_KEY}\r`);
      assert.equal(await exited, 0, screen);
    } finally {
      child.kill();
    }
    t.diagnostic(JSON.stringify(screen));
    assertNothingTypedIn(screen);
    assert.ok(!screen.includes(SIGNING_SECRET.slice(6, 20)), 'not even part of the secret is echoed');
    assert.match(screen, new RegExp(`Stored the webhook signing secret in ${SIGNING_ARN}`));
    assert.equal(fakeAws.secrets.get(SIGNING_ARN), SIGNING_SECRET);
    assert.equal(fakeAws.secrets.get(API_KEY_ARN), API_KEY);
  });
});
