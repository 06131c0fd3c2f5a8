import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { ResyncResult } from '../../cli/commands/backfill-resync';
import { DynamoDbBackfillStatusStore } from '../../functions/adapters/backfill-status-store';
import { DynamoDbConnectionStore } from '../../functions/adapters/connection-store';
import { newMessageId, orderKeyOfDelivery } from '../../functions/domain/message-order';
import { TABLES } from '../../functions/shared/resources';
import { accessRequestsOf, signerOf } from '../../local/aws-access';
import { createLocalResources, type LocalResources } from '../../local/local-resources';
import { LOCAL_AWS, standInClients, startSqsAndS3, type RunningStandIn } from '../../local/stand-ins';
import { isolatedAwsEnvironment, PROJECT_ROOT, runCli } from '../support/cli-process';
import { FAKE_ACCOUNT, startFakeAws, startForwarder, type FakeAws } from '../support/fake-aws';
import { startTestDynamoDb, uniquePrefix } from '../support/dynamodb-local';

/**
 * `vital-pipeline backfill --stack <name>`: the resync registered in a deployed stack's tables and
 * queue, found through its outputs (a fake CloudFormation; DynamoDB Local and fauxqs behind a front
 * that names the IAM action of every request, as AWS authorizes it). What it needs of the
 * operator's AWS identity is what docs/deploy.md says, no more.
 */

const REGION = LOCAL_AWS.region;
const STACK = 'VitalWebhookPipeline-resync';

let dynamoDb: RunningStandIn;
let sqsAndS3: RunningStandIn;
let dynamodb: DynamoDBClient;
let sqs: SQSClient;
let s3: S3Client;
let resources: LocalResources;
let fakeAws: FakeAws;
let home: string;
let fronts: ActionRecorder[];

/** A pass-through in front of a stand-in that records the IAM action and resource name of every request. */
interface ActionRecorder {
  readonly url: string;
  readonly actions: Set<string>;
  stop(): Promise<void>;
}

async function startActionRecorder(upstream: string): Promise<ActionRecorder> {
  const actions = new Set<string>();
  const forwarder = await startForwarder(upstream, (request, body) => {
    const signer = signerOf(request.headers);
    if (!signer) return;
    for (const access of accessRequestsOf({ method: request.method ?? 'GET', url: request.url ?? '/', headers: request.headers, body }, signer.service)) {
      actions.add(`${access.action} ${access.resource.split(/[:/]/).at(-1)}`);
    }
  });
  return { ...forwarder, actions };
}

/** The stack's outputs, its queues reached through the front (the SQS client sends to each queue URL's host). */
function stackOutputs(sqsFront: string): Record<string, string> {
  const viaFront = (url: string) => url.replace(new URL(url).origin, sqsFront);
  const outputs: Record<string, string> = {
    AlarmTopicArn: `arn:aws:sns:${REGION}:${FAKE_ACCOUNT}:${STACK}-AlarmTopic`,
    WebhookUrl: 'https://example.execute-api.us-east-1.amazonaws.com/webhooks/vital',
    EventsQueueUrl: viaFront(resources.queues.events.url),
    EventsDlqUrl: viaFront(resources.queues.events.deadLetterUrl),
    BackfillQueueUrl: viaFront(resources.queues.backfill.url),
    BackfillDlqUrl: viaFront(resources.queues.backfill.deadLetterUrl),
    RawBodyBucketName: resources.bucket,
    SigningSecretArn: `arn:aws:secretsmanager:${REGION}:${FAKE_ACCOUNT}:secret:SigningSecret-AbC123`,
    VitalApiKeySecretArn: `arn:aws:secretsmanager:${REGION}:${FAKE_ACCOUNT}:secret:VitalApiKey-XyZ789`,
  };
  for (const [name, definition] of Object.entries(TABLES)) outputs[`${definition.id}TableName`] = resources.tables[name as keyof typeof TABLES];
  return outputs;
}

const cli = (...args: string[]) =>
  runCli([...args, '--stack', STACK], {
    ...isolatedAwsEnvironment(home, REGION),
    ...fakeAws.endpointEnvironment,
    AWS_ENDPOINT_URL_DYNAMODB: fronts[0]!.url,
    AWS_ENDPOINT_URL_SQS: fronts[1]!.url,
    AWS_ENDPOINT_URL_S3: fronts[1]!.url,
  }, '', 60_000);

/** Each action once, with the resource's short name: the table or queue. */
function named(actions: Iterable<string>): string[] {
  const names: Record<string, string> = {
    [resources.tables.backfills]: 'Backfills',
    [resources.tables.connections]: 'Connections',
    [resources.queues.backfill.url.split('/').at(-1)!]: 'BackfillQueue',
  };
  return [...actions].map((entry) => {
    const [action, resource] = entry.split(' ') as [string, string];
    return `${action} ${names[resource] ?? resource}`;
  }).sort();
}

before(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'resync-stack-'));
  [dynamoDb, sqsAndS3] = await Promise.all([startTestDynamoDb(), startSqsAndS3()]);
  ({ dynamodb, sqs, s3 } = standInClients({ dynamodb: dynamoDb.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint }));
  resources = await createLocalResources({ dynamodb, sqs, s3, sqsEndpoint: sqsAndS3.endpoint, namePrefix: uniquePrefix('resync-stack-') });
  fronts = await Promise.all([startActionRecorder(dynamoDb.endpoint), startActionRecorder(sqsAndS3.endpoint)]);
  fakeAws = await startFakeAws({ region: REGION });
  fakeAws.stacks.set(STACK, stackOutputs(fronts[1]!.url));
});

after(async () => {
  await Promise.all((fronts ?? []).map((front) => front.stop()));
  await fakeAws?.stop();
  for (const client of [dynamodb, sqs, s3]) client?.destroy();
  await Promise.all([dynamoDb?.stop(), sqsAndS3?.stop()]);
  if (home) await rm(home, { recursive: true, force: true });
});

describe('vital-pipeline backfill --stack', () => {
  it('--all registers a run per resource of the connection in the stack\'s table and sends its job, with the IAM actions docs/deploy.md lists', async () => {
    const userId = `user-${randomUUID()}`;
    const documents = DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } });
    const svixId = newMessageId();
    await new DynamoDbConnectionStore(documents, resources.tables.connections).applyChange({
      userId,
      provider: 'withings',
      order: orderKeyOfDelivery(svixId, Date.now()),
      change: { change: 'created', resourceAvailability: { body: { status: 'available' }, weight: { status: 'available' } } },
    });
    for (const front of fronts) front.actions.clear();
    const run = await cli('backfill', '--user', userId, '--provider', 'withings', '--all', '--from', '2026-01-01', '--to', '2026-02-15', '--json');
    assert.equal(run.code, 0, run.stderr);
    const results = JSON.parse(run.stdout) as ResyncResult[];
    assert.deepEqual(results.map(({ resource, outcome, windows_total }) => ({ resource, outcome, windows_total })), [
      { resource: 'body', outcome: 'queued', windows_total: 2 },
      { resource: 'weight', outcome: 'queued', windows_total: 2 },
    ]);
    const statuses = new DynamoDbBackfillStatusStore(documents, resources.tables.backfills);
    const runId = results[0]!.run_id!;
    for (const resource of ['body', 'weight']) {
      const status = await statuses.get({ userId, provider: 'withings', resource });
      assert.deepEqual({ runId: status?.runId, state: status?.state }, { runId, state: 'queued' }, resource);
    }
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: resources.queues.backfill.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    assert.deepEqual(
      Messages.map((message) => JSON.parse(message.Body!) as Record<string, unknown>).sort((a, b) => String(a.resource).localeCompare(String(b.resource))),
      ['body', 'weight'].map((resource) => ({ type: 'historical', userId, provider: 'withings', resource, runId })),
      'the job messages the worker would have sent',
    );

    // --wait follows the runs in the stack's table (here one fails: nothing runs the backfill function).
    const waiting = cli('backfill', '--user', userId, '--provider', 'withings', '--resource', 'body', '--from', '2026-03-01', '--to', '2026-03-02', '--wait');
    let waited;
    for (let tries = 0; !(waited = await statuses.get({ userId, provider: 'withings', resource: 'body' }))?.runId.startsWith('resync_') || waited.runId === runId; tries += 1) {
      assert.ok(tries < 600, 'the second resync registers its run');
      await sleep(50);
    }
    assert.ok(await statuses.fail({ userId, provider: 'withings', resource: 'body' }, waited.runId, 'HTTP 404 (test)', new Date()));
    const failed = await waiting;
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, new RegExp(`runs failed \\(body: HTTP 404 \\(test\\)\\); once the cause is gone: vital-pipeline backfill retry --user ${userId} --stack ${STACK}\n$`));

    const used = named([...fronts[0]!.actions, ...fronts[1]!.actions]);
    assert.deepEqual(used, ['dynamodb:GetItem Backfills', 'dynamodb:PutItem Backfills', 'dynamodb:Query Connections', 'sqs:SendMessage BackfillQueue']);
    // Every action used is named in the operator's section of docs/deploy.md.
    const deploy = await readFile(path.join(PROJECT_ROOT, 'docs', 'deploy.md'), 'utf8');
    const said = /`backfill` \(the resync\) needs([\s\S]*?)\n\d+\. /.exec(deploy)?.[1] ?? '';
    for (const action of new Set(used.map((entry) => entry.split(' ')[0]!))) assert.ok(said.includes(`\`${action}\``), `docs/deploy.md names ${action} for the resync`);
    assert.ok(said.includes('`cloudformation:DescribeStacks`'));
  });
});
