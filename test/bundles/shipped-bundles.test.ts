import { AccessEvaluator, functionCredentials } from '../../local/aws-access';
import { localAccessModel } from '../../local/synthesized-access';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type Message,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDbBackfillStatusStore } from '../../functions/adapters/backfill-status-store';
import { DynamoDbRecordStore } from '../../functions/adapters/record-store';
import type { BackfillJobKey, BackfillStatus } from '../../functions/domain/backfill-job';
import { exampleEvent, type ExampleEnvelope } from '../../functions/domain/example-events';
import { ATTRIBUTE } from '../../functions/domain/queued-event';
import { VISIBILITY_TIMEOUT_RATIO } from '../../functions/shared/resources';
import { toSqsRecord } from '../../local/event-source-mapping';
import { startEventBridge, type DeliveredEvent, type RunningEventBridge } from '../../local/eventbridge-stand-in';
import { assertDocumentedChangeEvents } from '../support/change-events';
import { startFakeVitalApi, type FakeVitalApi } from '../../local/fake-vital-api';
import { createLocalResources, type LocalQueue, type LocalResources } from '../../local/local-resources';
import {
  LOCAL_AWS,
  standInClients,
  standInEnvironment,
  startSqsAndS3,
  type RunningStandIn,
  type StandInClients,
} from '../../local/stand-ins';
import { FAKE_ACCOUNT, startFakeAws, type FakeAws } from '../support/fake-aws';
import { webhookRequestEvent } from '../support/http-api-event';
import { newSigningSecret, svixHeaders } from '../support/signing';
import {
  handlerFile,
  lambdaReservedEnvironment,
  PROJECT_ROOT,
  prepareSandbox,
  SandboxedFunction,
  sdkRuntimePackages,
  startXRayDaemon,
  synthesizedFunctions,
  synthesizedTemplate,
  synthesizeApp,
  type SynthesizedFunction,
  type XRayDaemon,
} from './lambda-sandbox';
import { startTestDynamoDb, uniquePrefix } from '../support/dynamodb-local';

/**
 * The shipped code is the tested code. Every other test runs the handlers from source under tsx,
 * with the whole of node_modules in reach; what Lambda runs is the esbuild bundle `cdk synth` makes,
 * on a runtime that supplies only the AWS SDK. This test synthesizes the real app with bundling into
 * a temporary cloud assembly, takes each function's asset folder from the template, and runs it as
 * the Node.js runtime would (`lambda-sandbox.ts`): a copy of the folder, plain `node`, the handler
 * string of the template, the function's environment variables of the template (their resource
 * references mapped onto the stand-ins), and the SDK on NODE_PATH. It proves that each bundle
 * reaches nothing outside itself but the SDK, loads, and does its job: a signed event through the
 * bundled verifier, the events queue and the bundled worker into DynamoDB Local, and a historical
 * event through both into a backfill job that the bundled backfill fetches from the fake Vital API.
 * The secrets come from a fake Secrets Manager, by the secret ids of the template, as in AWS.
 *
 * Besides the template's variables, the functions get only what Lambda adds (region, credentials,
 * reserved variables), the SDK's endpoint variables, and `VITAL_API_BASE_URL` (the backfill's one
 * override, to reach the fake Vital API instead of Junction's).
 */

const SIGNING_SECRET_ARN = `arn:aws:secretsmanager:${LOCAL_AWS.region}:${FAKE_ACCOUNT}:secret:SigningSecret-AbC123`;
const API_KEY_ARN = `arn:aws:secretsmanager:${LOCAL_AWS.region}:${FAKE_ACCOUNT}:secret:VitalApiKey-XyZ789`;
const SIGNING_SECRET = newSigningSecret();
const API_KEY = `sk_us_${randomBytes(16).toString('hex')}`;
/** The template's secret references, by variable name; every other reference is a local resource. */
const SECRET_IDS: Record<string, string> = { SIGNING_SECRET_ID: SIGNING_SECRET_ARN, VITAL_API_KEY_SECRET_ID: API_KEY_ARN };

/** The functions of the stack, by the construct path of their CDK construct. */
const FUNCTIONS = {
  verifier: 'VitalWebhookPipeline/Ingress/Verifier/Resource',
  worker: 'VitalWebhookPipeline/Worker/Resource',
  backfill: 'VitalWebhookPipeline/Backfill/Resource',
} as const;
type FunctionName = keyof typeof FUNCTIONS;

/** Packages the bundles must carry inside: none of them may be reachable from a bundle's folder. */
const MUST_BE_BUNDLED = ['svix', 'zod', '@aws-lambda-powertools/logger', 'aws-xray-sdk-core', 'tsx'];

/**
 * What a bundle asks for by name (esbuild's output, minified): `require("x")`, `import("x")`, and
 * the static `import ... from"x"` / `import"x"` of an ES module bundle.
 */
const MODULE_REQUESTS =
  /\b(?:require|import)\("([^"]+)"\)|\bimport\s*(?:\{[^}]*\}|\*\s*as\s+[\w$]+|[\w$]+(?:\s*,\s*\{[^}]*\})?)\s*from\s*"([^"]+)"|\bimport\s*"([^"]+)"/g;

let workDir: string;
let dynamoDb: RunningStandIn;
let sqsAndS3: RunningStandIn;
/** Where the bundles publish their change events; what it accepted is in `changeEvents`. */
let eventBridge: RunningEventBridge;
const changeEvents: DeliveredEvent[] = [];
let clients: StandInClients;
let resources: LocalResources;
let fakeApi: FakeVitalApi;
/** The fake Secrets Manager (of the fake AWS control plane) holding the two secrets. */
let fakeAws: FakeAws;
let xray: XRayDaemon;
let sdkPackages: string[];
let functions: Record<FunctionName, SynthesizedFunction>;
const sandboxes = {} as Record<FunctionName, SandboxedFunction>;
let records: DynamoDbRecordStore;
let statuses: DynamoDbBackfillStatusStore;
/** What must never appear in a function's output: secrets, signatures, bodies. */
const secretsAndPayloads: string[] = [SIGNING_SECRET, SIGNING_SECRET.slice('whsec_'.length), API_KEY];

/** A variable of the template, given its local value: literal strings as they are, references onto the stand-ins. */
function localValue(fn: SynthesizedFunction, name: string, value: unknown): string {
  if (typeof value === 'string') return value;
  const local = resources.environment[name] ?? SECRET_IDS[name];
  if (local === undefined) {
    throw new Error(`${fn.constructPath}: the template sets ${name} to ${JSON.stringify(value)}, which this test has no local value for`);
  }
  return local;
}

function functionEnvironment(name: FunctionName, sandbox: Awaited<ReturnType<typeof prepareSandbox>>): Record<string, string> {
  const fn = functions[name];
  const variables = Object.fromEntries(Object.entries(fn.environment).map(([key, value]) => [key, localValue(fn, key, value)]));
  const endpoints = { dynamodb: dynamoDb.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint, eventBridge: eventBridge.endpoint };
  return {
    ...variables,
    ...(name === 'backfill' ? { VITAL_API_BASE_URL: fakeApi.url } : {}),
    ...lambdaReservedEnvironment(fn, sandbox, xray.address),
    ...standInEnvironment(endpoints),
    // Signed as the function's role, which the stand-ins hold to the template's policies.
    AWS_ACCESS_KEY_ID: functionCredentials(name).accessKeyId,
    AWS_DEFAULT_REGION: LOCAL_AWS.region,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: fakeAws.url,
  };
}

/** Waits for every start, so that `after` can stop what did start, then fails with the first failure. */
async function allStarted(starts: readonly Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(starts)).find((result) => result.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'shipped-bundles-'));
  const outdir = path.join(workDir, 'cdk.out');
  // The synth (a child process, mostly esbuild and cdk-nag) overlaps with the stand-ins' start.
  await allStarted([
    // With SDK-call tracing (off by default), so the bundles' lazily loaded tracer is exercised too.
    synthesizeApp(outdir, { traceSdkCalls: true }),
    startTestDynamoDb().then((started) => (dynamoDb = started)),
    startSqsAndS3().then((started) => (sqsAndS3 = started)),
    startFakeVitalApi({ apiKey: API_KEY }).then((started) => (fakeApi = started)),
    startFakeAws({ region: LOCAL_AWS.region }).then((started) => (fakeAws = started)),
    startXRayDaemon().then((started) => (xray = started)),
    sdkRuntimePackages().then((found) => (sdkPackages = found)),
  ]);
  clients = standInClients({ dynamodb: dynamoDb.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint });
  resources = await createLocalResources({
    dynamodb: clients.dynamodb,
    sqs: clients.sqs,
    s3: clients.s3,
    sqsEndpoint: sqsAndS3.endpoint,
    namePrefix: uniquePrefix('bundles-'),
  });
  eventBridge = await startEventBridge({
    busName: resources.changeEventBus,
    eventsFile: path.join(workDir, 'change-events.jsonl'),
    onEvent: (event) => changeEvents.push(event),
  });
  fakeAws.secrets.set(SIGNING_SECRET_ARN, SIGNING_SECRET);
  fakeAws.secrets.set(API_KEY_ARN, API_KEY);
  const documents = DynamoDBDocumentClient.from(clients.dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  records = new DynamoDbRecordStore(documents, { summariesTable: resources.tables.summaries, timeseriesTable: resources.tables.timeseries });
  statuses = new DynamoDbBackfillStatusStore(documents, resources.tables.backfills);

  const synthesized = await synthesizedFunctions(outdir);
  assert.deepEqual(
    synthesized.map((fn) => fn.constructPath).sort(),
    Object.values(FUNCTIONS).sort(),
    'the stack bundles exactly the verifier, the worker and the backfill; a new function needs its case here',
  );
  functions = Object.fromEntries(
    Object.entries(FUNCTIONS).map(([name, constructPath]) => [name, synthesized.find((fn) => fn.constructPath === constructPath)!]),
  ) as Record<FunctionName, SynthesizedFunction>;
  // The shipped template's IAM, held over the stand-ins for every request a function signs.
  const access = new AccessEvaluator(
    localAccessModel(
      await synthesizedTemplate(outdir),
      Object.fromEntries(Object.entries(functions).map(([name, fn]) => [name, fn.logicalId])) as Record<FunctionName, string>,
      { ...resources.environment, ...SECRET_IDS },
    ),
  );
  for (const standIn of [dynamoDb, sqsAndS3, eventBridge]) standIn.enforce(access);
  for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
    const sandbox = await prepareSandbox(functions[name], path.join(workDir, name), sdkPackages);
    sandboxes[name] = SandboxedFunction.start(name, sandbox, functions[name].timeoutSeconds, functionEnvironment(name, sandbox));
  }
});

after(async () => {
  await Promise.all(Object.values(sandboxes).map((sandbox) => sandbox.stop()));
  clients?.destroy();
  await Promise.all([dynamoDb?.stop(), sqsAndS3?.stop(), eventBridge?.stop(), fakeApi?.stop(), fakeAws?.stop(), xray?.stop()]);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

/** Receives exactly `count` messages from `queue` (with every attribute, as the event source mapping asks). */
async function receive(queue: LocalQueue, count: number): Promise<Message[]> {
  const messages: Message[] = [];
  const deadline = Date.now() + 15_000;
  while (messages.length < count && Date.now() < deadline) {
    const { Messages } = await clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    messages.push(...(Messages ?? []));
  }
  assert.equal(messages.length, count, `${count} message(s) on ${queue.definition.id}`);
  return messages;
}

/**
 * Invokes a bundled consumer with the SQS event Lambda's event source mapping would build from the
 * messages (the local mapping's own conversion), asserts that it reported no failure, and deletes
 * the messages, as the mapping does after a successful batch.
 */
async function consume(name: 'worker' | 'backfill', queue: LocalQueue, messages: readonly Message[]): Promise<void> {
  const event: SQSEvent = { Records: messages.map((message) => toSqsRecord(message, queue.arn)) };
  const response = await sandboxes[name].invoke<SQSBatchResponse | null>(event);
  assert.deepEqual(response?.batchItemFailures ?? [], [], `${name} failed records; its log: ${sandboxes[name].logSummary()}`);
  const { Failed } = await clients.sqs.send(
    new DeleteMessageBatchCommand({
      QueueUrl: queue.url,
      Entries: messages.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle! })),
    }),
  );
  assert.deepEqual(Failed ?? [], []);
}

/** Signs `envelope` as Svix would and posts it to the bundled verifier as API Gateway would; returns its svix-id. */
async function deliver(envelope: ExampleEnvelope): Promise<string> {
  const body = JSON.stringify(envelope);
  const headers = svixHeaders(SIGNING_SECRET, body);
  secretsAndPayloads.push(body, headers['svix-signature']);
  const response = await sandboxes.verifier.invoke<APIGatewayProxyStructuredResultV2>(webhookRequestEvent(headers, body));
  assert.ok(
    response.statusCode! >= 200 && response.statusCode! < 300,
    `the verifier answered ${response.statusCode} ${response.body}; its log: ${sandboxes.verifier.logSummary()}`,
  );
  return headers['svix-id'];
}

const svixIdOf = (message: Message): string | undefined => message.MessageAttributes?.[ATTRIBUTE.svixId]?.StringValue;

async function eventually<T>(read: () => T | Promise<T>, done: (value: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`not in ${timeoutMs} ms: ${what}`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------

describe('the shipped bundles', () => {
  it('are what the template deploys: index.handler on nodejs24.x, which the sandbox runs on', () => {
    for (const [name, fn] of Object.entries(functions)) {
      assert.equal(fn.handler, 'index.handler', name);
      assert.equal(fn.runtime, 'nodejs24.x', name);
      assert.ok(handlerFile(fn), `${name}: the asset holds the handler's module`);
    }
    assert.equal(`nodejs${process.versions.node.split('.')[0]}.x`, functions.worker.runtime, 'the sandbox runs the Node major of the template');
    // The queues the test consumes by hand keep the stack's rule against the template's timeouts.
    assert.ok(resources.queues.events.visibilityTimeoutSeconds >= VISIBILITY_TIMEOUT_RATIO * functions.worker.timeoutSeconds);
    assert.ok(resources.queues.backfill.visibilityTimeoutSeconds >= VISIBILITY_TIMEOUT_RATIO * functions.backfill.timeoutSeconds);
  });

  it('reach nothing outside themselves but the AWS SDK the runtime ships, and load', async () => {
    const manifest = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const provided = new Set(sdkPackages);
    const mustBeBundled = [...new Set([...MUST_BE_BUNDLED, ...Object.keys(manifest.dependencies)])].filter((name) => !provided.has(name));
    assert.ok(mustBeBundled.includes('svix') && mustBeBundled.includes('zod'), 'svix and zod are not part of the SDK closure');
    const builtins = new Set(builtinModules);
    const providedPackage = (specifier: string) => sdkPackages.some((name) => specifier === name || specifier.startsWith(`${name}/`));

    // Every function is checked before the verdict, so that one failure shows every bundle's problems.
    const problems: string[] = [];
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      const sandbox = sandboxes[name];
      const reachable = await sandbox.reachable(['@aws-sdk/client-dynamodb', '@aws-sdk/client-sqs', ...mustBeBundled]);
      if (!reachable['@aws-sdk/client-dynamodb'] || !reachable['@aws-sdk/client-sqs']) problems.push(`${name}: the runtime's SDK is not reachable, so the sandbox proves nothing`);
      for (const specifier of mustBeBundled) {
        if (reachable[specifier] !== null) problems.push(`${name}: ${specifier} is reachable from outside the bundle`);
      }

      // Every module the bundle asks for at run time is built into Node or shipped by the runtime.
      const code = await readFile(handlerFile(functions[name])!, 'utf8');
      const specifiers = new Set([...code.matchAll(MODULE_REQUESTS)].map((match) => match.slice(1).find(Boolean)!));
      for (const specifier of specifiers) {
        if (/^\.{0,2}\//.test(specifier)) {
          if (!existsSync(path.resolve(path.dirname(handlerFile(functions[name])!), specifier))) problems.push(`${name}: the bundle loads ${specifier}, which its asset lacks`);
        } else if (!specifier.startsWith('node:') && !builtins.has(specifier) && !providedPackage(specifier)) {
          problems.push(`${name}: the bundle loads ${specifier}, which neither Node nor the Lambda runtime provides`);
        }
      }

      // The cold start: the runtime loads the module of the handler string.
      await sandbox.init().catch((error: Error) => problems.push(`${name}: cold start failed: ${error.message}`));
    }
    assert.deepEqual(problems, []);
  });

  it('keep the lazy loads of the source: a cold start loads no SDK client the first invocation may not need', async () => {
    // functions/verifier.ts: the S3 client loads only when a body needs a claim check.
    // functions/worker.ts: S3, SQS and EventBridge load on first use, so a cold start loads only DynamoDB.
    // functions/backfill.ts: EventBridge loads at the first change event (change-event-publisher.ts).
    const lazy: Partial<Record<FunctionName, string[]>> = {
      verifier: ['@aws-sdk/client-s3'],
      worker: ['@aws-sdk/client-s3', '@aws-sdk/client-sqs', '@aws-sdk/client-eventbridge'],
      backfill: ['@aws-sdk/client-eventbridge'],
    };
    for (const [name, lazyClients] of Object.entries(lazy) as [FunctionName, string[]][]) {
      const loaded = await sandboxes[name].loadedPackages();
      assert.ok(loaded.length > 0 && loaded.some((pkg) => pkg.startsWith('@aws-sdk/client-')), `${name}: the SDK loads from NODE_PATH`);
      assert.deepEqual(lazyClients.filter((client) => loaded.includes(client)), [], `${name}: loaded at cold start`);
    }
  });

  it('carry a signed event from the verifier through the events queue and the worker into DynamoDB', async () => {
    const userId = randomUUID();
    const summary = exampleEvent('daily.data.activity.created', { userId });
    const timeseries = exampleEvent('daily.data.heartrate.created', { userId });
    const ids = [await deliver(summary), await deliver(timeseries)];

    // The verifier read its signing secret from Secrets Manager by the template's SIGNING_SECRET_ID.
    const secretReads = fakeAws.calls.filter((call) => call.service === 'secretsmanager');
    assert.ok(secretReads.some((call) => call.name === SIGNING_SECRET_ARN && call.action === 'secretsmanager.GetSecretValue'));
    assert.ok(secretReads.every((call) => call.credentialScope === `${LOCAL_AWS.region}/secretsmanager/aws4_request`));

    const messages = await receive(resources.queues.events, 2);
    assert.deepEqual(messages.map(svixIdOf).sort(), [...ids].sort(), 'the queued messages carry the svix-ids as attributes');
    await consume('worker', resources.queues.events, messages);

    const stored = await records.getSummary(userId, 'activity', String(summary.data.id));
    assert.equal(stored?.object.id, summary.data.id, 'the summary record is stored');
    const samples = (timeseries.data.data as { timestamp: string }[]).map((sample) => Date.parse(sample.timestamp)).sort();
    const { samples: storedSamples } = await records.readTimeseries(userId, 'heartrate', {
      from: new Date(samples[0]! - 3_600_000).toISOString(),
      to: new Date(samples.at(-1)! + 3_600_000).toISOString(),
    });
    assert.deepEqual(storedSamples.map((stored) => Date.parse(String(stored.sample.timestamp))).sort(), samples, 'every timeseries sample is stored');

    // The worker bundle published each delivery's change, on the template's bus, under its role's grant.
    const published = changeEvents.filter((event) => event.detail.user_id === userId);
    assertDocumentedChangeEvents(published);
    assert.deepEqual(published.map((event) => [event['detail-type'], event.detail.resource, event.detail.svix_id]).sort(), [
      ['Records Changed', 'activity', ids[0]],
      ['Records Changed', 'heartrate', ids[1]],
    ].sort());
  });

  it('carry a historical event through verifier and worker into a backfill job that the backfill fetches and stores', async () => {
    const userId = randomUUID();
    const historical = exampleEvent('historical.data.activity.created', { userId });
    const key: BackfillJobKey = { userId, provider: String(historical.data.provider), resource: 'activity' };
    const svixId = await deliver(historical);
    await consume('worker', resources.queues.events, await receive(resources.queues.events, 1));
    const queued = await statuses.get(key);
    assert.equal(queued?.runId, svixId, 'the worker recorded the backfill run');

    // The job, and any continuation the backfill sends itself, until the run is done.
    let status: BackfillStatus | undefined = queued;
    for (let round = 0; round < 5 && status?.state !== 'completed' && status?.state !== 'failed'; round += 1) {
      await consume('backfill', resources.queues.backfill, await receive(resources.queues.backfill, 1));
      status = await statuses.get(key);
    }
    assert.equal(status?.state, 'completed', `backfill ${status?.state}: ${status?.lastError ?? ''}; its log: ${sandboxes.backfill.logSummary()}`);
    assert.ok(fakeAws.calls.some((call) => call.name === API_KEY_ARN && call.action === 'secretsmanager.GetSecretValue'), 'the API key came from Secrets Manager by VITAL_API_KEY_SECRET_ID');

    const expected = fakeApi.identitiesFor(userId, key.provider, key.resource, status.startDate, status.endDate);
    assert.ok(expected.size > 0, 'the fake Vital API holds data for the range');
    assert.deepEqual(fakeApi.counters.served.get(`${userId}/activity`), expected, 'the backfill fetched the whole range');
    const stored = await records.querySummaries(userId, 'activity', { from: '2000-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' });
    assert.deepEqual(new Set(stored.map((record) => String(record.object.id))), expected, 'every fetched record is stored');
  });

  it('trace the worker and the backfill through the X-Ray daemon, SDK calls included', async () => {
    const names = await eventually(
      () => new Set(xray.segmentNames),
      (received) => ['## worker', '## backfill', 'DynamoDB'].every((name) => received.has(name)),
      'subsegments ## worker, ## backfill and DynamoDB reach the X-Ray daemon',
    );
    assert.ok(names.has('SQS'), 'the worker traced its SendMessage to the backfill queue');
  });

  it('leave nothing on the queues, received or not, and nothing secret or private in their logs', async () => {
    for (const queue of Object.values(resources.queues)) {
      for (const url of [queue.url, queue.deadLetterUrl]) {
        const { Attributes } = await clients.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: url,
            AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
          }),
        );
        const held = Object.values(Attributes ?? {}).reduce((sum, count) => sum + Number(count), 0);
        assert.equal(held, 0, `${url.split('/').at(-1)} holds ${JSON.stringify(Attributes)}`);
      }
    }
    for (const [name, sandbox] of Object.entries(sandboxes)) {
      assert.ok(sandbox.output.length > 0, `${name} logged`);
      const leaked = secretsAndPayloads.filter((value) => sandbox.output.includes(value)).length;
      assert.equal(leaked, 0, `${name} logged ${leaked} secret(s), signature(s) or body(ies)`);
    }
  });
});
