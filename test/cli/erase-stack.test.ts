import { GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { receiptJson } from '../../cli/commands/erase';
import { DynamoDbConnectionStore } from '../../functions/adapters/connection-store';
import { S3HeldBackStore } from '../../functions/adapters/held-back-store';
import { S3KeptBodyStore } from '../../functions/adapters/kept-body-store';
import { DynamoDbRecordStore } from '../../functions/adapters/record-store';
import { S3WorkoutStreamStore } from '../../functions/adapters/workout-stream-store';
import { exampleEvent } from '../../functions/domain/example-events';
import { newMessageId, orderKeyOfDelivery, orderKeyOfFetch } from '../../functions/domain/message-order';
import { BUCKET, QUEUES, TABLES } from '../../functions/shared/resources';
import { functionCredentials } from '../../local/aws-access';
import { createLocalResources, type LocalResources } from '../../local/local-resources';
import { enforceStackAccess, synthesizedStack } from '../../local/stack-access';
import { LOCAL_AWS, standInClients, startSqsAndS3, type RunningStandIn, type StandInClients } from '../../local/stand-ins';
import { isolatedAwsEnvironment, runCli } from '../support/cli-process';
import { callerArnOf, FAKE_ACCOUNT, startFakeAws, type FakeAws } from '../support/fake-aws';
import { startTestDynamoDb, uniquePrefix } from '../support/dynamodb-local';

/**
 * `vital-pipeline erase --stack <name>` with nothing but the stack's `ErasePolicy`: the CLI signs
 * as a role holding that policy alone, and the stand-ins hold it to the policy as synthesized
 * (local/stack-access.ts), so the erasure works with it, and what it does not need is refused.
 * The stack is found through its outputs (a fake CloudFormation), the caller named by a fake STS.
 */

const REGION = LOCAL_AWS.region;
const STACK = 'VitalWebhookPipeline-erase';
const operator = functionCredentials('erase');

let standIns: RunningStandIn[];
let admin: StandInClients;
let asOperator: StandInClients;
let resources: LocalResources;
let fakeAws: FakeAws;
let home: string;

/** The stack's outputs, on the stand-ins; its consumers said to time out after 1 s, so the erasure's wait is short. */
function stackOutputs(): Record<string, string> {
  const outputs: Record<string, string> = {
    WebhookUrl: 'https://example.execute-api.us-east-1.amazonaws.com/webhooks/vital',
    RawBodyBucketName: resources.bucket,
    SigningSecretArn: `arn:aws:secretsmanager:${REGION}:${FAKE_ACCOUNT}:secret:SigningSecret-AbC123`,
    VitalApiKeySecretArn: `arn:aws:secretsmanager:${REGION}:${FAKE_ACCOUNT}:secret:VitalApiKey-XyZ789`,
    ErasePolicyArn: `arn:aws:iam::${FAKE_ACCOUNT}:policy/ErasePolicy`,
  };
  for (const [name, definition] of Object.entries(QUEUES)) {
    const queue = resources.queues[name as keyof typeof QUEUES];
    Object.assign(outputs, { [`${definition.id}QueueUrl`]: queue.url, [`${definition.id}DlqUrl`]: queue.deadLetterUrl, [`${definition.id}FunctionTimeoutSeconds`]: '1' });
  }
  for (const [name, definition] of Object.entries(TABLES)) outputs[`${definition.id}TableName`] = resources.tables[name as keyof typeof TABLES];
  return outputs;
}

/** The error an SDK call ends with, or 'ok'. */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'ok';
  } catch (error) {
    return (error as Error).name;
  }
}

/** A user's data in each kind of store: a summary, samples, a connection, a workout stream, a held-back record, a kept body. */
async function storeData(userId: string): Promise<void> {
  const documents = DynamoDBDocumentClient.from(admin.dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  const records = new DynamoDbRecordStore(documents, { summariesTable: resources.tables.summaries, timeseriesTable: resources.tables.timeseries });
  const order = orderKeyOfFetch(Date.now() - 60_000);
  const sleep = exampleEvent('daily.data.sleep.created', { userId });
  await records.storeSummary({ userId, resource: 'sleep', object: sleep.data, order });
  const heartrate = exampleEvent('daily.data.heartrate.created', { userId }).data as { source: { provider: string; type: string }; data: Record<string, unknown>[] };
  await records.storeTimeseries({ userId, resource: 'heartrate', source: { provider: 'oura', type: 'ring' }, samples: heartrate.data, order });
  const svixId = newMessageId(new Date(Date.now() - 60_000));
  await new DynamoDbConnectionStore(documents, resources.tables.connections).applyChange({ userId, provider: 'oura', order: orderKeyOfDelivery(svixId, Date.now()), change: { change: 'created' } });
  await new S3WorkoutStreamStore(admin.s3, resources.bucket).put({ userId, provider: 'oura', workoutId: 'workout-1', body: '{"hr":[120]}', order });
  await new S3HeldBackStore(admin.s3, resources.bucket).put({
    location: { userId, provider: 'oura', resource: 'sleep', runId: 'run-1', windowIndex: 0, page: 0, index: '0' },
    reason: 'sleep object has no id',
    record: { score: 80 },
  });
  const body = JSON.stringify({ event_type: 'daily.data.brand_new.created', user_id: userId, team_id: 't', data: {} });
  await new S3KeptBodyStore(admin.s3, resources.bucket, BUCKET.prefixes.unrecognised).keep(
    { svixId, svixTimestamp: String(Math.floor(Date.now() / 1000)), eventType: 'daily.data.brand_new.created', receivedAt: new Date().toISOString(), body },
    'unrecognised_event_type',
    userId,
  );
}

/** How many items of `userId` each table holds, and whether the bucket still has their workout stream. */
async function countsOf(userId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of [TABLES.summaries, TABLES.timeseries, TABLES.connections]) {
    const { Items = [] } = await admin.dynamodb.send(new ScanCommand({ TableName: resources.environment[table.envVar] }));
    counts[table.id] = Items.filter((item) => JSON.stringify(item).includes(userId)).length;
  }
  counts.streams = (await new S3WorkoutStreamStore(admin.s3, resources.bucket).orderOf(userId, 'oura', 'workout-1')) ? 1 : 0;
  counts.heldBack = (await new S3HeldBackStore(admin.s3, resources.bucket).list(userId)).length;
  return counts;
}

before(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'erase-stack-'));
  standIns = await Promise.all([startTestDynamoDb(), startSqsAndS3()]);
  const [dynamoDb, sqsAndS3] = standIns as [RunningStandIn, RunningStandIn];
  const endpoints = { dynamodb: dynamoDb.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint };
  admin = standInClients(endpoints);
  asOperator = standInClients(endpoints, operator);
  resources = await createLocalResources({ ...admin, sqsEndpoint: sqsAndS3.endpoint, namePrefix: uniquePrefix('erase-stack-') });
  enforceStackAccess(standIns, resources.environment);
  fakeAws = await startFakeAws({ region: REGION });
  fakeAws.stacks.set(STACK, stackOutputs());
});

after(async () => {
  await fakeAws?.stop();
  for (const clients of [admin, asOperator]) clients?.destroy();
  await Promise.all((standIns ?? []).map((standIn) => standIn.stop()));
  if (home) await rm(home, { recursive: true, force: true });
});

describe('vital-pipeline erase --stack', () => {
  it('erases a user with the stack\'s ErasePolicy alone, names the caller on the receipt, and is refused what the policy does not grant', async () => {
    const { template, operatorPolicies } = synthesizedStack();
    const outputs = (template as unknown as { Outputs: Record<string, { Value: unknown }> }).Outputs;
    assert.deepEqual(outputs.ErasePolicyArn?.Value, { Ref: operatorPolicies.erase }, 'the stack outputs the policy\'s ARN');

    const erased = `erased-${randomUUID()}`;
    const kept = `kept-${randomUUID()}`;
    await storeData(erased);
    await storeData(kept);
    const keptBefore = await countsOf(kept);

    const run = await runCli(['erase', '--user', erased, '--yes', '--json', '--stack', STACK], {
      ...isolatedAwsEnvironment(home, REGION),
      ...fakeAws.endpointEnvironment,
      AWS_ENDPOINT_URL_DYNAMODB: standIns[0]!.endpoint,
      AWS_ENDPOINT_URL_S3: standIns[1]!.endpoint,
      // A role holding the ErasePolicy alone, as the stand-ins' IAM knows it.
      AWS_ACCESS_KEY_ID: operator.accessKeyId,
      AWS_SECRET_ACCESS_KEY: operator.secretAccessKey,
    }, '', 60_000);
    assert.equal(run.code, 0, run.stderr);
    // The consumers' timeouts as the stack's outputs say.
    assert.match(run.stderr, /^Sweeping now, and again once every worker and backfill invocation that may have missed the erasure has ended \(the longest function timeout, 1 s, after it was recorded\)$/m);
    const receipt = JSON.parse(run.stdout) as ReturnType<typeof receiptJson>;
    assert.equal(receipt.erased_by, callerArnOf(operator.accessKeyId));
    assert.deepEqual(receipt.removed, { summaries: receipt.removed.summaries, timeseries: receipt.removed.timeseries, connections: 1, backfills: 0, workout_streams: 1, held_back: 1, claim_checks: 0, quarantine: 0, unrecognised: 1 });
    assert.deepEqual([receipt.removed.summaries, receipt.state], [1, 'erased']);
    assert.ok(receipt.removed.timeseries > 0);
    assert.deepEqual(await countsOf(erased), { Summaries: 0, Timeseries: 0, Connections: 0, streams: 0, heldBack: 0 });
    assert.deepEqual(await countsOf(kept), keptBefore);

    // Only what erase needs: no reading or writing of records, no scanning, no objects outside the deletes.
    const summary = { pk: { S: `${kept}#sleep` }, sk: { S: 'x' } };
    assert.equal(await outcome(asOperator.dynamodb.send(new ScanCommand({ TableName: resources.tables.summaries }))), 'AccessDeniedException');
    assert.equal(await outcome(asOperator.dynamodb.send(new GetItemCommand({ TableName: resources.tables.summaries, Key: summary }))), 'AccessDeniedException');
    assert.equal(await outcome(asOperator.dynamodb.send(new PutItemCommand({ TableName: resources.tables.connections, Item: { userId: { S: kept }, provider: { S: 'x' } } }))), 'AccessDeniedException');
    const stream = new S3WorkoutStreamStore(admin.s3, resources.bucket).keyOf(kept, 'oura', 'workout-1');
    assert.equal(await outcome(asOperator.s3.send(new GetObjectCommand({ Bucket: resources.bucket, Key: stream }))), 'AccessDenied');
    assert.equal(await outcome(asOperator.s3.send(new PutObjectCommand({ Bucket: resources.bucket, Key: stream, Body: '{}' }))), 'AccessDenied');
  });
});
