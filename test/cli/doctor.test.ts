import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { DOCTOR_USER_ID, type DoctorCheck } from '../../cli/commands/doctor';
import { TABLES } from '../../functions/shared/resources';
import type { Output } from '../../local/console-output';
import { startLocalPipeline, type RunningPipeline } from '../../local/pipeline';
import { LOCAL_AWS } from '../../local/stand-ins';
import { isolatedAwsEnvironment, runCli, type CliRun } from '../support/cli-process';
import { FAKE_ACCOUNT, startFakeAws, type FakeAws } from '../support/fake-aws';
import { startFakeJunction, type FakeJunction } from '../support/fake-junction';

/**
 * `vital-pipeline doctor`, as a user runs it (a child process), against a pipeline that really runs:
 * the local pipeline of `npm start`, started in this process (DynamoDB Local, fauxqs, the verifier
 * behind the local HTTP API, the worker behind the SQS event source mapping). The same resources are
 * also "deployed stacks": the fake CloudFormation of test/support/fake-aws.ts describes stacks whose
 * outputs name them, its Secrets Manager holds their secrets and its SNS their alarm topics'
 * subscriptions; a fake Junction (test/support/fake-junction.ts) answers the API-key check and lists
 * registered endpoints. Each failing case breaks one thing and expects exactly that check to fail,
 * with its fix, and a non-zero exit.
 */

const REGION = LOCAL_AWS.region;
const arn = (service: string, resource: string) => `arn:aws:${service}:${REGION}:${FAKE_ACCOUNT}:${resource}`;
const API_KEY = `sk_us_${randomBytes(16).toString('hex')}`;
/** What CloudFormation generated into the API key secret at deploy: Vital refuses it. */
const PLACEHOLDER = 'q8$Zr!vT2#mW9pL^xK4&nB7@cJ1*hF6e';
const MANAGEMENT_KEY = `mk_${randomBytes(12).toString('hex')}`;
const ORG = 'org-1';
const TEAM = 'team-1';

/** Stacks over the one running pipeline, each broken in one way (or none). */
const STACKS = {
  green: 'VitalWebhookPipeline-green',
  fresh: 'VitalWebhookPipeline-fresh',
  badKey: 'VitalWebhookPipeline-badkey',
  quiet: 'VitalWebhookPipeline-quiet',
} as const;

let dataDir: string;
let home: string;
let pipeline: RunningPipeline;
let signingSecret: string;
let fakeAws: FakeAws;
let junction: FakeJunction;
let dynamodb: DynamoDBClient;
let sqs: SQSClient;

const silent: Output = { line: () => undefined, plain: () => undefined };

function stackOutputs(name: string): Record<string, string> {
  const { state } = pipeline;
  const outputs: Record<string, string> = {
    AlarmTopicArn: arn('sns', `${name}-AlarmTopic`),
    WebhookUrl: pipeline.webhookUrl,
    EventsQueueUrl: state.queues.events.url,
    EventsDlqUrl: state.queues.events.deadLetterUrl,
    BackfillQueueUrl: state.queues.backfill.url,
    BackfillDlqUrl: state.queues.backfill.deadLetterUrl,
    RawBodyBucketName: state.bucket,
    SigningSecretArn: arn('secretsmanager', `secret:${name}-SigningSecret-AbC123`),
    VitalApiKeySecretArn: arn('secretsmanager', `secret:${name}-VitalApiKey-XyZ789`),
    // The API its backfill uses: doctor checks the key there, with no --environment or --vital-region.
    VitalApiBaseUrl: junction.url,
  };
  for (const [table, definition] of Object.entries(TABLES)) outputs[`${definition.id}TableName`] = state.tables[table as keyof typeof TABLES];
  return outputs;
}

/** The CLI's environment: AWS through the fakes and stand-ins only, Vital through the fake Junction. */
function environment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...isolatedAwsEnvironment(home, REGION),
    ...fakeAws.endpointEnvironment,
    AWS_ENDPOINT_URL_DYNAMODB: pipeline.state.endpoints.dynamodb,
    AWS_ENDPOINT_URL_SQS: pipeline.state.endpoints.sqs,
    AWS_ENDPOINT_URL_S3: pipeline.state.endpoints.s3,
    ...extra,
  };
}

/** `doctor` on the local pipeline: LOCAL_DATA_DIR names it, VITAL_API_KEY is the one npm start runs with. */
const localDoctor = (args: string[], extra: Record<string, string> = { VITAL_API_KEY: API_KEY }) =>
  doctor(args, environment({ LOCAL_DATA_DIR: dataDir, VITAL_API_BASE_URL: junction.url, ...extra }));

async function doctor(args: string[], env = environment()): Promise<CliRun> {
  const run = await runCli(['doctor', ...args], env);
  for (const value of [signingSecret, API_KEY, PLACEHOLDER, MANAGEMENT_KEY]) {
    assert.ok(!`${run.stdout}${run.stderr}`.includes(value), 'a secret or key appeared in the output');
  }
  return run;
}

function checksOf(run: CliRun): DoctorCheck[] {
  return JSON.parse(run.stdout) as DoctorCheck[];
}

/** Asserts that exactly the named checks failed (each with a fix), the rest passed or were skipped as named. */
function assertOutcome(
  t: TestContext,
  run: CliRun,
  expected: { failed?: readonly string[]; skipped?: readonly string[]; checks: readonly string[] },
): DoctorCheck[] {
  const checks = checksOf(run);
  for (const check of checks) t.diagnostic(`${check.check} ${check.ok}: ${check.detail}${check.fix ? ` | fix: ${check.fix}` : ''}`);
  assert.deepEqual(
    checks.map((check) => check.check),
    expected.checks,
  );
  for (const check of checks) {
    const want = expected.failed?.includes(check.check) ? false : expected.skipped?.includes(check.check) ? null : true;
    assert.equal(check.ok, want, `${check.check}: ${check.detail}`);
    if (check.ok === false) assert.ok(check.fix, `${check.check} fails without a fix`);
    if (check.ok === true) assert.equal(check.fix, null);
  }
  const failures = expected.failed?.length ?? 0;
  assert.equal(run.code, failures > 0 ? 1 : 0, run.stderr);
  if (failures > 0) assert.equal(run.stderr, `vital-pipeline: ${failures} of ${checks.length} checks failed\n`);
  return checks;
}

const LOCAL_CHECKS = ['local-pipeline', 'signing-secret', 'vital-api-key', 'webhook-round-trip', 'dead-letter-queues'];
const STACK_CHECKS = ['stack', 'signing-secret', 'vital-api-key', 'webhook-round-trip', 'dead-letter-queues', 'alarm-subscription', 'junction-endpoint'];
const byId = (checks: DoctorCheck[], id: string) => checks.find((check) => check.check === id)!;

/** The doctor's records left in the summaries table: none, after every run. */
async function doctorRecords(): Promise<unknown[]> {
  const { Items } = await DynamoDBDocumentClient.from(dynamodb).send(
    new QueryCommand({
      TableName: pipeline.state.tables.summaries,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': `${DOCTOR_USER_ID}#profile` },
    }),
  );
  return Items ?? [];
}

before(async () => {
  [dataDir, home] = await Promise.all([mkdtemp(path.join(tmpdir(), 'doctor-data-')), mkdtemp(path.join(tmpdir(), 'doctor-home-'))]);
  // As npm start runs it, with the dev secret it generates into the data folder.
  pipeline = await startLocalPipeline({ port: 0, dataDir, timeScale: 1 }, silent);
  assert.equal(pipeline.state.secret.source, 'file');
  signingSecret = (await readFile((pipeline.state.secret as { path: string }).path, 'utf8')).trim();
  dynamodb = new DynamoDBClient({ endpoint: pipeline.state.endpoints.dynamodb, ...LOCAL_AWS });
  sqs = new SQSClient({ endpoint: pipeline.state.endpoints.sqs, ...LOCAL_AWS });

  [fakeAws, junction] = await Promise.all([startFakeAws({ region: REGION }), startFakeJunction({ apiKeys: [API_KEY], managementKey: MANAGEMENT_KEY })]);
  for (const name of Object.values(STACKS)) {
    const outputs = stackOutputs(name);
    fakeAws.stacks.set(name, outputs);
    fakeAws.secrets.set(outputs.SigningSecretArn!, name === STACKS.fresh ? PLACEHOLDER : signingSecret);
    fakeAws.secrets.set(outputs.VitalApiKeySecretArn!, name === STACKS.badKey ? PLACEHOLDER : API_KEY);
    fakeAws.topics.set(outputs.AlarmTopicArn!, [
      { protocol: 'email', endpoint: 'oncall@example.com', subscriptionArn: 'PendingConfirmation' },
      ...(name === STACKS.quiet ? [] : [{ protocol: 'email', endpoint: 'team@example.com', subscriptionArn: `${outputs.AlarmTopicArn}:4e6f1c2a-9b8d-4e3f-a1b2-c3d4e5f6a7b8` }]),
    ]);
  }
  junction.endpoints.set(`${ORG}/${TEAM}/production`, [
    { id: 'ep_other', url: 'https://other.example/hooks', disabled: false, filter_types: null },
    { id: 'ep_ours', url: pipeline.webhookUrl, disabled: false, filter_types: null },
  ]);
});

after(async () => {
  for (const client of [dynamodb, sqs]) client?.destroy();
  await pipeline?.stop();
  await Promise.all([fakeAws?.stop(), junction?.stop()]);
  await Promise.all([dataDir, home].filter(Boolean).map((folder) => rm(folder, { recursive: true, force: true })));
});

describe('doctor on the local pipeline', () => {
  it('all green: one ✓ line per check, the synthetic event stored, read back and removed, exit 0', async (t) => {
    const run = await localDoctor([]);
    t.diagnostic(run.stdout);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const lines = run.stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((line) => line.split(':')[0]),
      [...LOCAL_CHECKS.map((check) => `✓ ${check}`), 'All 5 checks passed.'],
    );
    assert.match(lines[3]!, /^✓ webhook-round-trip: accepted \(202\), stored by the worker and read back intact in \d+\.\d s, then removed$/);
    assert.deepEqual(await doctorRecords(), []);
    // The key was checked with the team API key header, and accepted.
    assert.ok(junction.requests.some((request) => request.path === '/v2/providers' && request.authorised));
  });

  it('--json: one array of {check, ok, detail, fix}', async (t) => {
    const checks = assertOutcome(t, await localDoctor(['--json']), { checks: LOCAL_CHECKS });
    assert.ok(checks.every((check) => Object.keys(check).join() === 'check,ok,detail,fix'));
    assert.match(byId(checks, 'local-pipeline').detail, new RegExp(`running \\(pid ${process.pid}, .*${Object.keys(TABLES).length} tables, 4 queues and ${pipeline.webhookUrl} answer`));
    assert.deepEqual(await doctorRecords(), []);
  });

  it('a message in a dead-letter queue: ✗ with how to inspect and replay it', async (t) => {
    const queueUrl = pipeline.state.queues.events.deadLetterUrl;
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify({ event_type: 'daily.data.sleep.created' }) }));
    try {
      const checks = assertOutcome(t, await localDoctor(['--json']), { checks: LOCAL_CHECKS, failed: ['dead-letter-queues'] });
      const check = byId(checks, 'dead-letter-queues');
      assert.match(check.detail, /events: 1, backfill: 0/);
      assert.equal(check.fix, 'npx vital-pipeline inspect dlq to see why, fix the cause, then npx vital-pipeline replay');
    } finally {
      const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      for (const message of Messages ?? []) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle! }));
    }
  });

  it('no VITAL_API_KEY: ✗ saying backfills cannot fetch history, with how to set it', async (t) => {
    const checks = assertOutcome(t, await localDoctor(['--json'], {}), { checks: LOCAL_CHECKS, failed: ['vital-api-key'] });
    assert.match(byId(checks, 'vital-api-key').fix!, /VITAL_API_KEY=<team API key>/);
  });

  it('no local pipeline: one ✗ saying to start it', async (t) => {
    const checks = assertOutcome(t, await localDoctor(['--json'], { LOCAL_DATA_DIR: home }), { checks: ['local-pipeline'], failed: ['local-pipeline'] });
    assert.match(byId(checks, 'local-pipeline').detail, /The local pipeline is not running/);
    assert.match(byId(checks, 'local-pipeline').fix!, /^npm start/);
  });
});

describe('doctor --stack', () => {
  it('all green, with the endpoint registered with Junction: every check ✓, exit 0', async (t) => {
    const args = ['--stack', STACKS.green, '--json', '--management-key', MANAGEMENT_KEY, '--management-url', junction.url, '--org', ORG, '--team', TEAM];
    const checks = assertOutcome(t, await doctor(args), { checks: STACK_CHECKS });
    assert.match(byId(checks, 'alarm-subscription').detail, /^1 confirmed subscription \(email\), 1 pending$/);
    assert.match(byId(checks, 'junction-endpoint').detail, /^registered as ep_ours in production \(all event types\)$/);
    assert.ok(!JSON.stringify(checks).includes('@example.com'), 'subscription endpoints (addresses) are not printed');
    assert.deepEqual(await doctorRecords(), []);
    // Read through the outputs, each AWS service signed for.
    const services = new Set(fakeAws.calls.map((call) => `${call.action} ${call.credentialScope}`));
    for (const expected of [
      `DescribeStacks ${REGION}/cloudformation/aws4_request`,
      `secretsmanager.GetSecretValue ${REGION}/secretsmanager/aws4_request`,
      `ListSubscriptionsByTopic ${REGION}/sns/aws4_request`,
    ]) {
      assert.ok(services.has(expected), expected);
    }
  });

  it('without a management key the registration is not checked (-), which is not a failure', async (t) => {
    const run = await doctor(['--stack', STACKS.green]);
    t.diagnostic(run.stdout);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^- junction-endpoint: not checked: needs a Junction Management API key → to check it: pass --management-key/m);
    assert.match(run.stdout, /^All 6 checks passed\.$/m);
  });

  it('the placeholder signing secret: ✗ with the secrets set fix, no round trip; secrets set then makes it pass', async (t) => {
    const run = await doctor(['--stack', STACKS.fresh]);
    t.diagnostic(run.stdout);
    assert.equal(run.code, 1);
    assert.match(
      run.stdout,
      new RegExp(
        `^✗ signing-secret: \\S+:secret:${STACKS.fresh}-SigningSecret-AbC123 holds no whsec_ value \\(still the placeholder the stack generated\\?\\): the verifier answers every delivery 503 until it does → fix: npx vital-pipeline secrets set --stack ${STACKS.fresh} --signing-secret-only$`,
        'm',
      ),
    );
    assert.match(run.stdout, /^- webhook-round-trip: not attempted: needs a usable signing secret/m);
    assert.equal(run.stderr, 'vital-pipeline: 1 of 7 checks failed\n');

    // The fix, as printed.
    const stored = await runCli(['secrets', 'set', '--stack', STACKS.fresh, '--signing-secret-only'], environment(), `${signingSecret}\n`);
    assert.equal(stored.code, 0, stored.stderr);
    try {
      assertOutcome(t, await doctor(['--stack', STACKS.fresh, '--json']), { checks: STACK_CHECKS, skipped: ['junction-endpoint'] });
    } finally {
      fakeAws.secrets.set(stackOutputs(STACKS.fresh).SigningSecretArn!, PLACEHOLDER);
    }
  });

  it('an API key Vital rejects (401): ✗ with the secrets set fix', async (t) => {
    const checks = assertOutcome(t, await doctor(['--stack', STACKS.badKey, '--json']), {
      checks: STACK_CHECKS,
      failed: ['vital-api-key'],
      skipped: ['junction-endpoint'],
    });
    const check = byId(checks, 'vital-api-key');
    assert.equal(check.detail, `${junction.url} rejected the key (401): backfills cannot fetch history`);
    assert.match(check.fix!, new RegExp(`^npx vital-pipeline secrets set --stack ${STACKS.badKey} --api-key-only; a key works only for its own environment and region`));
    assert.ok(junction.requests.some((request) => request.path === '/v2/providers' && !request.authorised));
  });

  it('no confirmed subscription to the alarm topic (one pending): ✗ with how to subscribe', async (t) => {
    const checks = assertOutcome(t, await doctor(['--stack', STACKS.quiet, '--json']), {
      checks: STACK_CHECKS,
      failed: ['alarm-subscription'],
      skipped: ['junction-endpoint'],
    });
    const check = byId(checks, 'alarm-subscription');
    assert.match(check.detail, /^no confirmed subscription to \S+-AlarmTopic: alarms notify no one \(1 pending confirmation/);
    assert.match(check.fix!, /^aws sns subscribe --topic-arn \S+ --protocol email --notification-endpoint <address>/);
  });

  it('an endpoint Junction does not know: ✗ with the register create fix', async (t) => {
    const args = ['--stack', STACKS.green, '--json', '--management-key', MANAGEMENT_KEY, '--management-url', junction.url, '--org', ORG, '--team', TEAM, '--environment', 'sandbox'];
    const checks = assertOutcome(t, await doctor(args), { checks: STACK_CHECKS, failed: ['junction-endpoint'] });
    assert.equal(
      byId(checks, 'junction-endpoint').fix,
      `npx vital-pipeline register create --stack ${STACKS.green} --org ${ORG} --team ${TEAM} --environment sandbox (with the same management key)`,
    );
  });

  it('a stack that cannot be read: one ✗, exit 1', async (t) => {
    const checks = assertOutcome(t, await doctor(['--stack', 'NoSuchStack', '--json']), { checks: ['stack'], failed: ['stack'] });
    assert.match(byId(checks, 'stack').detail, /Stack with id NoSuchStack does not exist/);
  });
});
