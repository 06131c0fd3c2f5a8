import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BatchWriteItemCommand, GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { BUCKET } from '../../functions/shared/resources';
import { S3WorkoutStreamStore } from '../../functions/adapters/workout-stream-store';
import { AccessEvaluator, functionCredentials } from '../../local/aws-access';
import { createLocalResources, type LocalResources } from '../../local/local-resources';
import { enforceStackAccess } from '../../local/stack-access';
import { standInClients, startSqsAndS3, type RunningStandIn, type StandInClients } from '../../local/stand-ins';
import { localAccessModel, type SynthesizedTemplate } from '../../local/synthesized-access';
import { startTestDynamoDb, uniquePrefix } from '../support/dynamodb-local';

/**
 * The stand-ins hold each function to its role, as synthesized, the way AWS does: what a role does
 * not allow is refused with AWS's error, whatever the emulator would have done. The worker, verifier
 * and backfill suites run on these rules; this file says what each refusal looks like.
 */

/** The error an SDK call ends with (name and HTTP status), or 'ok'. */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'ok';
  } catch (error) {
    const failure = error as { name: string; $metadata?: { httpStatusCode?: number } };
    return `${failure.name} ${failure.$metadata?.httpStatusCode ?? ''}`.trim();
  }
}

describe('the stack\'s IAM on the stand-ins', () => {
  let standIns: RunningStandIn[];
  let admin: StandInClients;
  let as: Record<'verifier' | 'worker' | 'backfill', StandInClients>;
  let resources: LocalResources;
  const key = { userId: { S: 'iam-check' }, provider: { S: 'oura' } };

  before(async () => {
    const [dynamo, sqsAndS3] = await Promise.all([startTestDynamoDb(), startSqsAndS3()]);
    standIns = [dynamo, sqsAndS3];
    const endpoints = { dynamodb: dynamo.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint };
    admin = standInClients(endpoints);
    resources = await createLocalResources({ ...admin, sqsEndpoint: sqsAndS3.endpoint, namePrefix: uniquePrefix('iam-') });
    enforceStackAccess(standIns, resources.environment);
    as = {
      verifier: standInClients(endpoints, functionCredentials('verifier')),
      worker: standInClients(endpoints, functionCredentials('worker')),
      backfill: standInClients(endpoints, functionCredentials('backfill')),
    };
    await admin.s3.send(new PutObjectCommand({ Bucket: resources.bucket, Key: `${BUCKET.prefixes.claimChecks}present.json`, Body: '{}' }));
  });

  after(async () => {
    for (const clients of [admin, ...Object.values(as ?? {})]) clients?.destroy();
    await Promise.all((standIns ?? []).map((standIn) => standIn.stop()));
  });

  it('lets each function reach only the tables its role names, with the actions granted', async () => {
    const connections = resources.tables.connections;
    assert.equal(await outcome(as.worker.dynamodb.send(new PutItemCommand({ TableName: connections, Item: key }))), 'ok');
    // The backfill has no business with connections, and the verifier none with any table.
    assert.equal(await outcome(as.backfill.dynamodb.send(new GetItemCommand({ TableName: connections, Key: key }))), 'AccessDeniedException 400');
    assert.equal(await outcome(as.verifier.dynamodb.send(new GetItemCommand({ TableName: resources.tables.summaries, Key: { pk: { S: 'a' }, sk: { S: 'b' } } }))), 'AccessDeniedException 400');
    // Granted per action: the worker may put an item, not batch-write or scan.
    const batch = new BatchWriteItemCommand({ RequestItems: { [connections]: [{ PutRequest: { Item: key } }] } });
    assert.equal(await outcome(as.worker.dynamodb.send(batch)), 'AccessDeniedException 400');
    assert.equal(await outcome(as.worker.dynamodb.send(new ScanCommand({ TableName: connections }))), 'AccessDeniedException 400');
    // The administrator (provisioning, the tests' checks, the CLI) is not held to a role.
    assert.equal(await outcome(admin.dynamodb.send(new ScanCommand({ TableName: connections }))), 'ok');
  });

  it('names the role, the action and the resource in the refusal, as AWS does', async () => {
    const refusal = await as.backfill.dynamodb.send(new GetItemCommand({ TableName: resources.tables.connections, Key: key })).catch((error: Error) => error);
    assert.match(
      String((refusal as Error).message),
      new RegExp(
        '^User: arn:aws:sts::000000000000:assumed-role/BackfillServiceRole[0-9A-F]+/backfill is not authorized to perform: dynamodb:GetItem ' +
          `on resource: arn:aws:dynamodb:us-east-1:000000000000:table/${resources.tables.connections} because no identity-based policy allows`,
      ),
    );
  });

  it('keeps each function to its own prefixes of the bucket', async () => {
    const claimCheck = `${BUCKET.prefixes.claimChecks}present.json`;
    const put = (clients: StandInClients, key: string) => clients.s3.send(new PutObjectCommand({ Bucket: resources.bucket, Key: key, Body: '{}' }));
    const get = (clients: StandInClients, key: string) => clients.s3.send(new GetObjectCommand({ Bucket: resources.bucket, Key: key }));
    // Claim checks: the verifier writes them, the worker reads them; neither does the other's part.
    assert.equal(await outcome(put(as.verifier, `${BUCKET.prefixes.claimChecks}new.json`)), 'ok');
    assert.equal(await outcome(get(as.worker, claimCheck)), 'ok');
    assert.equal(await outcome(get(as.verifier, claimCheck)), 'AccessDenied 403');
    assert.equal(await outcome(put(as.worker, `${BUCKET.prefixes.claimChecks}forged.json`)), 'AccessDenied 403');
    // Quarantined and unrecognised bodies are the worker's to write; workout streams are the backfill's.
    assert.equal(await outcome(put(as.worker, `${BUCKET.prefixes.quarantine}held.json`)), 'ok');
    assert.equal(await outcome(put(as.worker, `${BUCKET.prefixes.unrecognised}kept.json`)), 'ok');
    assert.equal(await outcome(put(as.backfill, `${BUCKET.prefixes.unrecognised}kept.json`)), 'AccessDenied 403');
    assert.equal(await outcome(put(as.worker, `${BUCKET.prefixes.workoutStreams}stream.json`)), 'AccessDenied 403');
    assert.equal(await outcome(put(as.backfill, `${BUCKET.prefixes.workoutStreams}stream.json`)), 'ok');
    assert.equal(await outcome(get(as.backfill, claimCheck)), 'AccessDenied 403');
  });

  it('answers 403, not 404, for a missing key to a role that may not list the bucket, and 404 to one that may', async () => {
    const missing = { Bucket: resources.bucket, Key: `${BUCKET.prefixes.claimChecks}missing.json` };
    // A HEAD answer has no body, so the SDK names no error code: only the status tells.
    assert.equal(await outcome(as.worker.s3.send(new HeadObjectCommand(missing))), 'Unknown 403');
    assert.equal(await outcome(as.worker.s3.send(new GetObjectCommand(missing))), 'AccessDenied 403');
    assert.equal(await outcome(admin.s3.send(new HeadObjectCommand(missing))), 'NotFound 404');
    // The store that reads before it writes copes with S3's answer (a first stream has no object yet).
    const streams = new S3WorkoutStreamStore(as.backfill.s3, resources.bucket);
    const stream = { userId: 'user-iam', provider: 'garmin', workoutId: 'workout-iam', body: '{}' };
    assert.equal(await streams.put({ ...stream, order: '1' }), true);
    assert.equal(await streams.put({ ...stream, order: '2' }), true, 'and replaces it when newer');
  });

  it('lets each function use only its queues, in the direction its role allows', async () => {
    const { events, backfill } = resources.queues;
    const send = (clients: StandInClients, url: string) => clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{}' }));
    assert.equal(await outcome(send(as.verifier, events.url)), 'ok');
    assert.equal(await outcome(send(as.verifier, backfill.url)), 'AccessDenied 403');
    assert.equal(await outcome(send(as.worker, backfill.url)), 'ok');
    // Nothing but Lambda's redrive writes a dead-letter queue.
    assert.equal(await outcome(send(as.worker, events.deadLetterUrl)), 'AccessDenied 403');
    // Lambda polls a queue with the consumer's role: the worker's is the events queue, not the backfill queue.
    const receive = (clients: StandInClients, url: string) => clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 0 }));
    assert.equal(await outcome(receive(as.worker, backfill.url)), 'AccessDenied 403');
    assert.equal(await outcome(receive(as.backfill, events.url)), 'AccessDenied 403');
  });

  it('refuses a request it cannot name the IAM action of, rather than let it through', async () => {
    const tagging = new GetObjectTaggingCommand({ Bucket: resources.bucket, Key: `${BUCKET.prefixes.claimChecks}present.json` });
    assert.equal(await outcome(as.worker.s3.send(tagging)), 'AccessDenied 403');
  });
});

describe('the stack\'s policies moved onto local resources', () => {
  const template: SynthesizedTemplate = {
    Resources: {
      Fn: { Type: 'AWS::Lambda::Function', Properties: { Role: { 'Fn::GetAtt': ['Role', 'Arn'] }, Environment: { Variables: { BUCKET: { Ref: 'Bucket' } } } } },
      Role: { Type: 'AWS::IAM::Role', Properties: {} },
      Bucket: { Type: 'AWS::S3::Bucket', Properties: {} },
      Key: { Type: 'AWS::KMS::Key', Properties: {} },
      Policy: {
        Type: 'AWS::IAM::Policy',
        Properties: {
          Roles: [{ Ref: 'Role' }],
          PolicyDocument: {
            Statement: [
              { Effect: 'Allow', Action: 's3:GetObject', Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['Bucket', 'Arn'] }, '/*']] } },
              { Effect: 'Allow', Action: 's3:PutObject', Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['Other', 'Arn'] }, '/*']] } },
            ],
          },
        },
      },
      BucketPolicy: {
        Type: 'AWS::S3::BucketPolicy',
        Properties: {
          Bucket: { Ref: 'Bucket' },
          PolicyDocument: { Statement: [{ Effect: 'Deny', Principal: { AWS: '*' }, Action: 's3:GetObject', Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['Bucket', 'Arn'] }, '/secret/*']] } }] },
        },
      },
    },
  };
  const model = localAccessModel(template, { verifier: 'Fn', worker: 'Fn', backfill: 'Fn' }, { BUCKET: 'local-bucket' });
  const access = new AccessEvaluator(model);
  const caller = functionCredentials('worker').accessKeyId;

  it('resolves references through the environment the handlers get, and nothing else', () => {
    const statements = model.functions[0]!.identityPolicies[0]!.policy.Statement;
    assert.equal(statements[0]!.Resource, 'arn:aws:s3:::local-bucket/*');
    // A resource no function is told about resolves to an ARN no local resource has: it can only deny.
    assert.equal(statements[1]!.Resource, 'arn:aws:unresolved:us-east-1:000000000000:Other.Arn/*');
  });

  it('applies the resource policy: its explicit deny wins over the role\'s allow', async () => {
    const read = (objectKey: string) => access.decide(caller, [{ action: 's3:GetObject', resource: `arn:aws:s3:::local-bucket/${objectKey}` }]);
    assert.deepEqual(await read('open/a.json'), { allowed: true });
    const refused = await read('secret/a.json');
    assert.equal(refused.allowed, false);
    assert.match(refused.allowed ? '' : refused.message, /with an explicit deny$/);
  });
});
