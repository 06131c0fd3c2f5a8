import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { S3KeptBodyStore, keptBodyKey } from '../../functions/adapters/kept-body-store';
import type { Delivery } from '../../functions/domain/event-processing';
import { exampleEvent } from '../../functions/domain/example-events';
import { newMessageId } from '../../functions/domain/message-order';
import { encodeAttributes } from '../../functions/domain/queued-event';
import { BUCKET } from '../../functions/shared/resources';
import { replayUnrecognised } from '../../cli/commands/unrecognised';
import { localTarget } from '../../cli/target';
import { localPipelineConfig } from '../../local/config';
import { createLocalResources, type LocalResources } from '../../local/local-resources';
import { LOCAL_AWS, standInClients, startSqsAndS3, type RunningStandIn } from '../../local/stand-ins';
import { isolatedAwsEnvironment, PROJECT_ROOT, runCli, writeStandInPipelineState, type CliRun } from '../support/cli-process';
import { startTestDynamoDb, uniquePrefix } from '../support/dynamodb-local';

/**
 * `inspect unrecognised` and `replay --unrecognised` on the local pipeline: the resources of
 * `npm start` on the stand-ins, found through the state file it writes (here written by the test,
 * with this process as the pipeline's), and bodies kept under `unrecognised/` by the worker's own
 * store. The CLI runs as a child process, as a user runs it; the replay whose catalogue "now knows" a
 * new type runs in process, with the catalogue check injected.
 */

let dynamoDb: RunningStandIn;
let sqsAndS3: RunningStandIn;
let dynamodb: DynamoDBClient;
let sqs: SQSClient;
let s3: S3Client;
let resources: LocalResources;
let dataDir: string;
let kept: S3KeptBodyStore;

const cli = (...args: string[]): Promise<CliRun> => runCli(args, isolatedAwsEnvironment(dataDir, LOCAL_AWS.region), '', 30_000);

function json<T>(run: CliRun): T {
  assert.equal(run.code, 0, `exit ${run.code}, stderr: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

/** A delivery as the worker keeps it: the facts the verifier queued it with, and the body. */
function deliveryOf(body: object, receivedAt: string): Delivery {
  const text = JSON.stringify(body);
  return { svixId: newMessageId(new Date(receivedAt)), svixTimestamp: String(Math.floor(Date.parse(receivedAt) / 1000)), eventType: (body as { event_type: string }).event_type, receivedAt, body: text };
}

async function drainEvents(): Promise<Message[]> {
  const messages: Message[] = [];
  for (;;) {
    const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: resources.queues.events.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
    if (!Messages?.length) return messages;
    for (const message of Messages) await sqs.send(new DeleteMessageCommand({ QueueUrl: resources.queues.events.url, ReceiptHandle: message.ReceiptHandle! }));
    messages.push(...Messages);
  }
}

/** The message as the verifier would have queued the delivery: its body and exactly its attributes. */
const asQueued = (delivery: Delivery) => ({ body: delivery.body, attributes: encodeAttributes(delivery) });
const queuedOf = (message: Message) => ({
  body: message.Body,
  attributes: Object.fromEntries(Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [name, value.StringValue])),
});

const exists = (delivery: Delivery) =>
  s3.send(new HeadObjectCommand({ Bucket: resources.bucket, Key: keptBodyKey(BUCKET.prefixes.unrecognised, delivery) })).then(() => true, () => false);

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'unrecognised-'));
  [dynamoDb, sqsAndS3] = await Promise.all([startTestDynamoDb(), startSqsAndS3()]);
  const endpoints = { dynamodb: dynamoDb.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint };
  ({ dynamodb, sqs, s3 } = standInClients(endpoints));
  resources = await createLocalResources({ dynamodb, sqs, s3, sqsEndpoint: endpoints.sqs, namePrefix: uniquePrefix('unrecognised-test-') });
  await writeStandInPipelineState(dataDir, endpoints, resources);
  kept = new S3KeptBodyStore(s3, resources.bucket, BUCKET.prefixes.unrecognised);
});

after(async () => {
  for (const client of [dynamodb, sqs, s3]) client?.destroy();
  await Promise.all([dynamoDb?.stop(), sqsAndS3?.stop()]);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('vital-pipeline inspect unrecognised / replay --unrecognised (local pipeline)', () => {
  // A type no catalogue knows, and one this catalogue knows: kept by a worker that ran an older one.
  const brandNew = deliveryOf({ event_type: 'daily.data.brand_new.created', user_id: 'user-secret-body', team_id: 't', data: { reading: 42 } }, '2024-05-14T12:00:00.000Z');
  const nowKnown = deliveryOf(exampleEvent('daily.data.sleep.created', { userId: 'user-secret-body' }), '2024-05-14T12:05:00.000Z');

  it('inspect lists each kept body by svix-id, event type, receive time and size, never the body', async () => {
    for (const delivery of [nowKnown, brandNew]) await kept.keep(delivery, 'unrecognised_event_type');
    const run = await cli('inspect', 'unrecognised', '--json');
    assert.deepEqual(json(run), [
      { svix_id: brandNew.svixId, event_type: brandNew.eventType, received_at: brandNew.receivedAt, bytes: Buffer.byteLength(brandNew.body) },
      { svix_id: nowKnown.svixId, event_type: nowKnown.eventType, received_at: nowKnown.receivedAt, bytes: Buffer.byteLength(nowKnown.body) },
    ]);
    const table = await cli('inspect', 'unrecognised');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`${brandNew.svixId}\\s+daily\\.data\\.brand_new\\.created\\s+2024-05-14T12:00:00\\.000Z\\s+${Buffer.byteLength(brandNew.body)}`));
    for (const output of [run.stdout, table.stdout]) assert.doesNotMatch(output, /user-secret-body|reading/, 'no body in the listing');
  });

  it('replay queues a body whose type the catalogue now knows, as the verifier queued it, and skips a type still unknown', async () => {
    const run = await cli('replay', '--unrecognised', '--json');
    const listed = (delivery: Delivery) => ({ svix_id: delivery.svixId, event_type: delivery.eventType, received_at: delivery.receivedAt, bytes: Buffer.byteLength(delivery.body) });
    assert.deepEqual(json(run), { replayed: [listed(nowKnown)], skipped: [listed(brandNew)], not_found: [] });
    assert.deepEqual((await drainEvents()).map(queuedOf), [asQueued(nowKnown)], 'original svix-id, timestamp, type and receive time');
    assert.equal(await exists(nowKnown), false, 'removed once queued');
    assert.equal(await exists(brandNew), true, 'a type still unknown stays kept');
    const text = await cli('replay', '--unrecognised');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`skipped ${brandNew.svixId}  daily\\.data\\.brand_new\\.created: this catalogue does not know the type yet`));
    assert.match(text.stdout, /0 replayed into the events queue, 1 skipped/);
  });

  it('replay of a type the updated catalogue knows (injected) queues it once; an unknown --svix-id is reported', async () => {
    const target = await localTarget(dataDir);
    try {
      const result = await replayUnrecognised(target, { svixIds: [brandNew.svixId, 'msg_not_kept'], knows: (type) => type === 'daily.data.brand_new.created' });
      assert.deepEqual(result.replayed.map((event) => event.svix_id), [brandNew.svixId]);
      assert.deepEqual(result.skipped, []);
      assert.deepEqual(result.not_found, ['msg_not_kept']);
      assert.deepEqual((await drainEvents()).map(queuedOf), [asQueued(brandNew)]);
      assert.equal(await exists(brandNew), false);
      // Nothing left: a second replay queues nothing (and a duplicate would change nothing anyway).
      assert.deepEqual(await replayUnrecognised(target, { knows: () => true }), { replayed: [], skipped: [], not_found: [] });
    } finally {
      target.close();
    }
  });

  it('replay --unrecognised --svix-id of an id nothing is kept under names it, with exit code 1, as a DLQ replay does', async () => {
    for (const json of [[], ['--json']]) {
      const run = await cli('replay', '--unrecognised', '--svix-id', 'msg_never_kept', ...json);
      assert.equal(run.code, 1, run.stderr);
      assert.equal(run.stderr, 'vital-pipeline: not kept, so not replayed: msg_never_kept (vital-pipeline inspect unrecognised lists what is kept)\n');
      if (json.length > 0) assert.deepEqual(JSON.parse(run.stdout), { replayed: [], skipped: [], not_found: ['msg_never_kept'] });
      else assert.match(run.stdout, /^not found msg_never_kept: no kept event/m);
    }
  });

  it('replay --unrecognised with --queue is a usage error (exit 2), as it always replays into the events queue', async () => {
    const run = await cli('replay', '--unrecognised', '--queue', 'backfill');
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--unrecognised replays into the events queue/);
  });

  it('from a subdirectory, the CLI finds the data folder npm start uses: a relative LOCAL_DATA_DIR is taken from the project folder', async () => {
    // From cli/ this path leads nowhere; from the project folder, to this pipeline's data folder.
    const relative = path.relative(PROJECT_ROOT, dataDir);
    const env = { ...isolatedAwsEnvironment(dataDir, LOCAL_AWS.region), LOCAL_DATA_DIR: relative };
    assert.equal(localPipelineConfig(env, []).dataDir, dataDir, 'the folder npm start runs on');
    const run = await runCli(['inspect', 'unrecognised', '--json'], env, '', 30_000, path.join(PROJECT_ROOT, 'cli'));
    assert.equal(run.code, 0, run.stderr);
    assert.ok(Array.isArray(JSON.parse(run.stdout)));
  });
});
