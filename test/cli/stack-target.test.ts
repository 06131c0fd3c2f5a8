import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { DynamoDbBackfillStatusStore } from '../../functions/adapters/backfill-status-store';
import { DynamoDbConnectionStore } from '../../functions/adapters/connection-store';
import { SqsEventQueue } from '../../functions/adapters/event-queue';
import { S3KeptBodyStore } from '../../functions/adapters/kept-body-store';
import { DynamoDbRecordStore } from '../../functions/adapters/record-store';
import { exampleEvent } from '../../functions/domain/example-events';
import { newMessageId, orderKeyOfDelivery } from '../../functions/domain/message-order';
import { ATTRIBUTE, encodeAttributes } from '../../functions/domain/queued-event';
import { BUCKET, TABLES, VERIFIER_TIMEOUT_SECONDS, WEBHOOK_ROUTE } from '../../functions/shared/resources';
import { startHttpApi, type RunningHttpApi } from '../../local/http-api';
import { createLocalResources, type LocalResources } from '../../local/local-resources';
import { LOCAL_AWS, standInClients, standInEnvironment, startSqsAndS3, type RunningStandIn } from '../../local/stand-ins';
import { isolatedAwsEnvironment, runCli, type CliRun } from '../support/cli-process';
import { FAKE_ACCOUNT, startFakeAws, startScopeRecorder, type FakeAws } from '../support/fake-aws';
import { startTestDynamoDb, uniquePrefix } from '../support/dynamodb-local';

/**
 * `vital-pipeline ... --stack <name>` end to end, without an AWS account. The stack's resources are
 * the project's own (createLocalResources on DynamoDB Local and fauxqs); a fake CloudFormation
 * (test/support/fake-aws.ts, query protocol as the installed SDK speaks it) describes a stack whose
 * outputs name them, a fake Secrets Manager (JSON 1.1) holds its signing secret, and WebhookUrl points at the real verifier
 * handler behind the local HTTP API, wired as in AWS (SIGNING_SECRET_ID, read from the fake Secrets
 * Manager). The CLI runs as a child process, as a user runs it, reaching every service through the
 * SDK's service-specific endpoint variables.
 */

const REGION = LOCAL_AWS.region;
const STACK = 'VitalWebhookPipeline-test';
const SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${FAKE_ACCOUNT}:secret:VitalWebhookSigningSecret-AbC123`;
const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
/**
 * A stack deployed without `signingSecretName`: its secret holds the password CloudFormation
 * generated until someone stores the real `whsec_...` value.
 */
const FRESH_STACK = 'VitalWebhookPipeline-fresh';
const PLACEHOLDER_ARN = `arn:aws:secretsmanager:${REGION}:${FAKE_ACCOUNT}:secret:SigningSecret-Fr35h1`;
const SECRETS: Record<string, string> = { [SECRET_ARN]: SECRET, [PLACEHOLDER_ARN]: 'q8$Zr!vT2#mW9pL^xK4&nB7@cJ1*hF6e' };
const USER = `user-${randomUUID()}`;

let dynamoDb: RunningStandIn;
let sqsAndS3: RunningStandIn;
let dynamodb: DynamoDBClient;
let sqs: SQSClient;
let s3: S3Client;
let resources: LocalResources;
let fakeAws: FakeAws;
let webhook: RunningHttpApi;
let emptyDataDir: string;

/** The outputs the stack declares (lib/vital-webhook-pipeline-stack.ts), pointing at the stand-ins. */
function stackOutputs(stackName: string): Record<string, string> {
  const outputs: Record<string, string> = {
    AlarmTopicArn: `arn:aws:sns:${REGION}:${FAKE_ACCOUNT}:${STACK}-AlarmTopic`,
    WebhookUrl: `${webhook.url}${WEBHOOK_ROUTE.path}`,
    EventsQueueUrl: resources.queues.events.url,
    EventsDlqUrl: resources.queues.events.deadLetterUrl,
    BackfillQueueUrl: resources.queues.backfill.url,
    BackfillDlqUrl: resources.queues.backfill.deadLetterUrl,
    RawBodyBucketName: resources.bucket,
    SigningSecretArn: stackName === FRESH_STACK ? PLACEHOLDER_ARN : SECRET_ARN,
    VitalApiKeySecretArn: `arn:aws:secretsmanager:${REGION}:${FAKE_ACCOUNT}:secret:VitalApiKey-XyZ789`,
  };
  for (const [name, definition] of Object.entries(TABLES)) {
    outputs[`${definition.id}TableName`] = resources.tables[name as keyof typeof TABLES];
  }
  return outputs;
}

// ---------------------------------------------------------------------------------------------
// The CLI, as a user runs it.
// ---------------------------------------------------------------------------------------------

/** The CLI's environment: AWS only through the fake and the stand-ins (or what is put in front of them). */
function environment(dataPlane = { dynamodb: dynamoDb.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint }): Record<string, string> {
  return {
    ...isolatedAwsEnvironment(emptyDataDir, REGION),
    ...fakeAws.endpointEnvironment,
    AWS_ENDPOINT_URL_DYNAMODB: dataPlane.dynamodb,
    AWS_ENDPOINT_URL_SQS: dataPlane.sqs,
    AWS_ENDPOINT_URL_S3: dataPlane.s3,
  };
}

function cli(...args: string[]): Promise<CliRun> {
  return runCli(args, environment(), '', 30_000);
}

function json<T>(run: CliRun): T {
  assert.equal(run.code, 0, `exit ${run.code}, stderr: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

/** Every message visible in a queue now (held for the visibility timeout given). */
async function receiveAll(queueUrl: string, visibilityTimeout = 30): Promise<Message[]> {
  const messages: Message[] = [];
  for (;;) {
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        VisibilityTimeout: visibilityTimeout,
        MessageAttributeNames: ['All'],
      }),
    );
    if (!Messages?.length) return messages;
    messages.push(...Messages);
  }
}

async function deleteAll(queueUrl: string, messages: readonly Message[]): Promise<void> {
  for (const message of messages) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle! }));
}

const svixIdOf = (message: Message): string | undefined => message.MessageAttributes?.[ATTRIBUTE.svixId]?.StringValue;

// ---------------------------------------------------------------------------------------------

before(async () => {
  emptyDataDir = await mkdtemp(path.join(tmpdir(), 'stack-target-'));
  [dynamoDb, sqsAndS3] = await Promise.all([startTestDynamoDb(), startSqsAndS3()]);
  const endpoints = { dynamodb: dynamoDb.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint };
  ({ dynamodb, sqs, s3 } = standInClients(endpoints));
  resources = await createLocalResources({ dynamodb, sqs, s3, sqsEndpoint: endpoints.sqs, namePrefix: uniquePrefix('stack-test-') });

  fakeAws = await startFakeAws({ region: REGION });
  for (const [arn, value] of Object.entries(SECRETS)) fakeAws.secrets.set(arn, value);

  // The verifier as the stack configures it: the signing secret by SIGNING_SECRET_ID from Secrets
  // Manager (here the fake), the events queue and bucket by their environment variables.
  delete process.env.VITAL_WEBHOOK_SECRET;
  Object.assign(process.env, standInEnvironment(endpoints), resources.environment, {
    SIGNING_SECRET_ID: SECRET_ARN,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: fakeAws.url,
    POWERTOOLS_TRACE_ENABLED: 'false',
  });
  const verifier = await import('../../functions/verifier');
  webhook = await startHttpApi({
    port: 0,
    routes: [{ ...WEBHOOK_ROUTE, function: { name: 'verifier', timeoutSeconds: VERIFIER_TIMEOUT_SECONDS, handler: (event) => verifier.handler(event) } }],
  });
  for (const stackName of [STACK, FRESH_STACK]) fakeAws.stacks.set(stackName, stackOutputs(stackName));
});

after(async () => {
  await webhook?.close();
  await fakeAws?.stop();
  for (const client of [dynamodb, sqs, s3]) client?.destroy();
  await Promise.all([dynamoDb?.stop(), sqsAndS3?.stop()]);
  if (emptyDataDir) await rm(emptyDataDir, { recursive: true, force: true });
});

describe('vital-pipeline --stack', () => {
  it('inspect records reads what the record store wrote, through the stack outputs', async () => {
    const documents = DynamoDBDocumentClient.from(dynamodb);
    const store = new DynamoDbRecordStore(documents, { summariesTable: resources.tables.summaries, timeseriesTable: resources.tables.timeseries });
    const order = orderKeyOfDelivery(newMessageId(), Date.now());
    const sleep = exampleEvent('daily.data.sleep.created', { userId: USER }).data;
    assert.deepEqual(await store.storeSummary({ userId: USER, resource: 'sleep', object: sleep, order }), { written: 1, created: 1, stale: 0, unchanged: 0 });
    const heartrate = exampleEvent('daily.data.heartrate.created', { userId: USER }).data as { data: Record<string, unknown>[] };
    await store.storeTimeseries({ userId: USER, resource: 'heartrate', source: { provider: 'oura', type: 'ring' }, samples: heartrate.data, order });

    const sleepRows = json<{ resource: string; provider: string; source_type: string; key: string; record: unknown }[]>(
      await cli('inspect', 'records', '--stack', STACK, '--user', USER, '--resource', 'sleep', '--json'),
    );
    assert.equal(sleepRows.length, 1);
    assert.deepEqual(sleepRows[0], { resource: 'sleep', provider: 'oura', source_type: 'ring', key: sleep.id, record: sleep });

    const heartrateRows = json<{ provider: string; record: unknown }[]>(
      await cli('inspect', 'records', '--stack', STACK, '--user', USER, '--resource', 'heartrate', '--json'),
    );
    assert.deepEqual(
      heartrateRows.map((row) => row.record),
      heartrate.data,
    );
    // Found through CloudFormation, signed for it and for the region.
    const described = fakeAws.calls.filter((call) => call.service === 'cloudformation');
    assert.ok(described.length >= 2);
    assert.ok(described.every((call) => call.action === 'DescribeStacks' && call.name === STACK && call.credentialScope === `${REGION}/cloudformation/aws4_request`));
  });

  it('inspect connections and inspect backfills read the stack tables', async () => {
    const documents = DynamoDBDocumentClient.from(dynamodb);
    const connections = new DynamoDbConnectionStore(documents, resources.tables.connections);
    const order = orderKeyOfDelivery(newMessageId(), Date.now());
    await connections.applyChange({
      userId: USER,
      provider: 'oura',
      order,
      change: { change: 'created', externalUserId: 'ext-1', resourceAvailability: { sleep: { status: 'available' } } },
    });
    await connections.applyChange({
      userId: USER,
      provider: 'garmin',
      order,
      change: { change: 'error', errorType: 'token_refresh_failed', message: 'Refresh token expired' },
    });
    const statuses = new DynamoDbBackfillStatusStore(documents, resources.tables.backfills);
    const now = new Date().toISOString();
    assert.equal(
      await statuses.queue({
        userId: USER,
        provider: 'oura',
        resource: 'sleep',
        runId: 'run-1',
        state: 'queued',
        startDate: '2024-04-14',
        endDate: '2024-05-14',
        windowDays: 30,
        windowsTotal: 1,
        windowsDone: 0,
        pagesDone: 0,
        recordsStored: 0,
        stepSeq: 0,
        queuedAt: now,
        updatedAt: now,
        windowIndex: 0,
        cursor: null,
      }, null),
      'queued',
    );

    const connectionRows = json<Record<string, unknown>[]>(await cli('inspect', 'connections', '--stack', STACK, '--user', USER, '--json'));
    assert.deepEqual(
      connectionRows.sort((a, b) => String(a.provider).localeCompare(String(b.provider))),
      [
        { provider: 'garmin', status: 'error', last_error_type: 'token_refresh_failed', last_error_message: 'Refresh token expired' },
        { provider: 'oura', status: 'connected', external_user_id: 'ext-1', resource_availability: { sleep: { status: 'available' } } },
      ],
    );
    const backfillRows = json<Record<string, unknown>[]>(await cli('inspect', 'backfills', '--stack', STACK, '--user', USER, '--json'));
    assert.deepEqual(backfillRows, [
      { resource: 'sleep', provider: 'oura', status: 'queued', start_date: '2024-04-14', end_date: '2024-05-14', records: 0, held_back: 0 },
    ]);
  });

  it('inspect dlq lists dead letters and replay moves one back to its queue', async () => {
    // A delivery as the verifier enqueues it, dead-lettered; and a backfill job, dead-lettered.
    const svixId = newMessageId();
    const body = JSON.stringify(exampleEvent('daily.data.sleep.created', { userId: USER, seed: 7 }));
    const receivedAt = new Date().toISOString();
    const deadLetters = new SqsEventQueue({
      sqs,
      queueUrl: resources.queues.events.deadLetterUrl,
      claimChecks: { put: () => assert.fail('no claim check expected'), get: () => assert.fail('no claim check expected') },
    });
    await deadLetters.enqueue({ svixId, svixTimestamp: String(Math.floor(Date.now() / 1000)), eventType: 'daily.data.sleep.created', receivedAt, body });
    const runId = `run-${randomUUID()}`;
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: resources.queues.backfill.deadLetterUrl,
        MessageBody: JSON.stringify({ type: 'historical', userId: USER, provider: 'oura', resource: 'sleep', runId }),
      }),
    );

    const letters = json<{ queue: string; svix_id: string | null; event_type: string | null; received_at: string }[]>(
      await cli('inspect', 'dlq', '--stack', STACK, '--json'),
    );
    assert.deepEqual(
      letters.map(({ queue, svix_id, event_type }) => ({ queue, svix_id, event_type })).sort((a, b) => a.queue.localeCompare(b.queue)),
      [
        { queue: 'backfill', svix_id: runId, event_type: 'backfill:historical:oura/sleep' },
        { queue: 'events', svix_id: svixId, event_type: 'daily.data.sleep.created' },
      ],
    );
    assert.equal(letters.find((letter) => letter.queue === 'events')!.received_at, receivedAt);

    // inspect releases what it read one second later (see release() in dead-letters.ts).
    await sleep(1_500);
    const counts = json<{ queue: string; moved: number; left: number }[]>(await cli('replay', '--stack', STACK, '--svix-id', svixId, '--json'));
    assert.deepEqual(counts, [
      { queue: 'events', moved: 1, left: 0 },
      { queue: 'backfill', moved: 0, left: 1 },
    ]);

    const replayed = (await receiveAll(resources.queues.events.url)).filter((message) => svixIdOf(message) === svixId);
    assert.equal(replayed.length, 1);
    assert.equal(replayed[0]!.Body, body);
    assert.equal(replayed[0]!.MessageAttributes?.[ATTRIBUTE.receivedAt]?.StringValue, receivedAt);
    await deleteAll(resources.queues.events.url, replayed);
    assert.deepEqual(await receiveAll(resources.queues.events.deadLetterUrl), []);
    await sleep(1_000);
    const backfillLeft = await receiveAll(resources.queues.backfill.deadLetterUrl);
    assert.equal(backfillLeft.length, 1);
    await deleteAll(resources.queues.backfill.deadLetterUrl, backfillLeft);
  });

  it('inspect unrecognised and replay --unrecognised find the kept bodies in the bucket of RawBodyBucketName', async () => {
    // Kept by a worker whose catalogue did not know the type; this CLI's catalogue does.
    const body = JSON.stringify(exampleEvent('daily.data.sleep.created', { userId: USER, seed: 11 }));
    const delivery = { svixId: newMessageId(), svixTimestamp: String(Math.floor(Date.now() / 1000)), eventType: 'daily.data.sleep.created', receivedAt: new Date().toISOString(), body };
    await new S3KeptBodyStore(s3, resources.bucket, BUCKET.prefixes.unrecognised).keep(delivery, 'unrecognised_event_type');

    const listed = json<{ svix_id: string; event_type: string; received_at: string; bytes: number }[]>(await cli('inspect', 'unrecognised', '--stack', STACK, '--json'));
    assert.deepEqual(listed, [{ svix_id: delivery.svixId, event_type: delivery.eventType, received_at: delivery.receivedAt, bytes: Buffer.byteLength(body) }]);
    const replay = json<{ replayed: { svix_id: string }[] }>(await cli('replay', '--unrecognised', '--stack', STACK, '--svix-id', delivery.svixId, '--json'));
    assert.deepEqual(replay.replayed.map((event) => event.svix_id), [delivery.svixId]);
    const queued = (await receiveAll(resources.queues.events.url)).filter((message) => svixIdOf(message) === delivery.svixId);
    assert.deepEqual(
      queued.map((message) => ({ body: message.Body, attributes: Object.fromEntries(Object.entries(message.MessageAttributes!).map(([name, value]) => [name, value.StringValue])) })),
      [{ body, attributes: encodeAttributes(delivery) }],
    );
    await deleteAll(resources.queues.events.url, queued);
    assert.deepEqual(json(await cli('inspect', 'unrecognised', '--stack', STACK, '--json')), []);
  });

  it('send signs with the secret from Secrets Manager and the verifier behind WebhookUrl accepts it', async () => {
    const run = await cli('send', '--stack', STACK, '--type', 'daily.data.sleep.created', '--user', USER, '--json');
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { status: number; svix_id: string; event_type: string; response: string };
    assert.equal(result.status, 202);
    assert.equal(result.event_type, 'daily.data.sleep.created');
    assert.deepEqual(JSON.parse(result.response), { status: 'accepted' });

    const queued = (await receiveAll(resources.queues.events.url)).filter((message) => svixIdOf(message) === result.svix_id);
    assert.equal(queued.length, 1);
    assert.equal((JSON.parse(queued[0]!.Body!) as { user_id: string }).user_id, USER);
    await deleteAll(resources.queues.events.url, queued);

    // The CLI read the secret by the stack's SigningSecretArn output, signed for Secrets Manager.
    const reads = fakeAws.calls.filter((call) => call.service === 'secretsmanager');
    assert.ok(reads.length >= 1);
    assert.ok(reads.every((call) => call.action === 'secretsmanager.GetSecretValue' && call.name === SECRET_ARN));
    assert.ok(reads.every((call) => call.credentialScope === `${REGION}/secretsmanager/aws4_request`));
  });

  it('send with a wrong secret is refused by the verifier (the check above is not vacuous)', async () => {
    const run = await cli('send', '--stack', STACK, '--type', 'daily.data.sleep.created', '--secret', `whsec_${randomBytes(24).toString('base64')}`, '--json');
    assert.equal(run.code, 1);
    assert.equal((JSON.parse(run.stdout.trim()) as { status: number }).status, 401);
  });

  it('send to a stack whose secret still holds the generated placeholder: one line saying what to store, exit 1', async (t) => {
    const run = await cli('send', '--stack', FRESH_STACK, '--type', 'daily.data.sleep.created');
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    const lines = run.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, run.stderr);
    t.diagnostic(lines[0]!);
    assert.match(lines[0]!, new RegExp(`^vital-pipeline: The signing secret of ${FRESH_STACK} \\(${PLACEHOLDER_ARN}\\) holds no usable value.*whsec_`));
  });

  it('a stack that does not exist: one line on stderr naming it, exit code 1', async (t) => {
    const run = await cli('inspect', 'connections', '--stack', 'NoSuchStack', '--user', USER, '--json');
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    const lines = run.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, run.stderr);
    t.diagnostic(lines[0]!);
    assert.match(lines[0]!, /^vital-pipeline: .*NoSuchStack/);
    assert.match(lines[0]!, /Stack with id NoSuchStack does not exist/);
  });

  it('replay --svix-id of an id no dead letter has: names it and exits 1; the ids found are moved all the same', async () => {
    const svixId = newMessageId();
    const deadLetters = new SqsEventQueue({
      sqs,
      queueUrl: resources.queues.events.deadLetterUrl,
      claimChecks: { put: () => assert.fail('no claim check expected'), get: () => assert.fail('no claim check expected') },
    });
    const body = JSON.stringify(exampleEvent('daily.data.sleep.created', { userId: USER, seed: 8 }));
    await deadLetters.enqueue({ svixId, svixTimestamp: String(Math.floor(Date.now() / 1000)), eventType: 'daily.data.sleep.created', receivedAt: new Date().toISOString(), body });
    const missing = newMessageId();

    const both = await cli('replay', '--stack', STACK, '--queue', 'events', '--svix-id', svixId, '--svix-id', missing, '--json');
    assert.equal(both.code, 1);
    assert.deepEqual(JSON.parse(both.stdout), [{ queue: 'events', moved: 1, left: 0 }]);
    assert.equal(both.stderr, `vital-pipeline: not in the events DLQ, so not replayed: ${missing} (vital-pipeline inspect dlq --stack ${STACK} lists what is there)\n`);
    const replayed = (await receiveAll(resources.queues.events.url)).filter((message) => svixIdOf(message) === svixId);
    assert.equal(replayed.length, 1);
    await deleteAll(resources.queues.events.url, replayed);

    const none = await cli('replay', '--stack', STACK, '--svix-id', missing);
    assert.equal(none.code, 1);
    assert.match(none.stdout, /^events: moved 0 message\(s\) from the DLQ back to the queue; 0 left in the DLQ$/m);
    assert.equal(none.stderr, `vital-pipeline: not in the events or backfill DLQ, so not replayed: ${missing} (vital-pipeline inspect dlq --stack ${STACK} lists what is there)\n`);
  });

  it('--region reaches every client made for the stack: CloudFormation, Secrets Manager, SNS, DynamoDB, SQS and S3', async () => {
    // Not the environment's AWS_REGION: a client that missed --region would sign for REGION.
    const given = 'eu-west-1';
    const [dynamoDbFront, sqsAndS3Front] = await Promise.all([startScopeRecorder(dynamoDb.endpoint), startScopeRecorder(sqsAndS3.endpoint)]);
    // The SQS client sends to the host of each queue URL: this stack's lead through the front too.
    const throughFront = 'VitalWebhookPipeline-through-front';
    const outputs = Object.entries(stackOutputs(FRESH_STACK)).map(([key, value]) => [key, /(Queue|Dlq)Url$/.test(key) ? value.replace(new URL(value).origin, sqsAndS3Front.url) : value]);
    fakeAws.stacks.set(throughFront, Object.fromEntries(outputs));
    const controlPlaneBefore = fakeAws.calls.length;
    try {
      const env = environment({ dynamodb: dynamoDbFront.url, sqs: sqsAndS3Front.url, s3: sqsAndS3Front.url });
      const inRegion = (stack: string, ...args: string[]) => runCli([...args, '--stack', stack, '--region', given], env, '', 30_000);
      // Between them, every service a command uses for a stack.
      const runs = await Promise.all([
        inRegion(STACK, 'inspect', 'records', '--user', USER, '--resource', 'sleep', '--json'),
        inRegion(STACK, 'inspect', 'unrecognised', '--json'),
        inRegion(STACK, 'send', '--print', '--type', 'daily.data.sleep.created'),
        // The placeholder secret stops doctor before its round trip; it still counts the DLQs and reads the alarm topic.
        inRegion(throughFront, 'doctor', '--json'),
      ]);
      for (const run of runs.slice(0, 3)) assert.equal(run.code, 0, run.stderr);
      const checks = JSON.parse(runs[3]!.stdout) as { check: string; ok: boolean | null }[];
      assert.equal(checks.find((check) => check.check === 'stack')?.ok, true);
      assert.equal(checks.find((check) => check.check === 'dead-letter-queues')?.ok, true);

      const scopes = [...fakeAws.calls.slice(controlPlaneBefore).map((call) => call.credentialScope), ...dynamoDbFront.scopes, ...sqsAndS3Front.scopes];
      const services = (region: string) => new Set(scopes.filter((scope) => scope.startsWith(`${region}/`)).map((scope) => scope.split('/')[1]));
      assert.deepEqual([...services(given)].sort(), ['cloudformation', 'dynamodb', 's3', 'secretsmanager', 'sns', 'sqs']);
      assert.deepEqual(scopes.filter((scope) => !scope.startsWith(`${given}/`)), [], 'every request signed for the given region');
    } finally {
      fakeAws.stacks.delete(throughFront);
      await Promise.all([dynamoDbFront.stop(), sqsAndS3Front.stop()]);
    }
  });
});
