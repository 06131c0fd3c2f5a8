import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { EventBridgeChangePublisher } from '../../functions/adapters/change-event-publisher';
import { EVENTBRIDGE_CLIENT_SETTINGS } from '../../functions/adapters/eventbridge-client';
import type { ChangeEvent } from '../../functions/domain/change-events';
import { TABLES } from '../../functions/shared/resources';
import { CHANGE_EVENTS_FILE } from '../../local/config';
import { startEventBridge, type DeliveredEvent, type RunningEventBridge } from '../../local/eventbridge-stand-in';
import { STATE_FILE_NAME } from '../../local/pipeline-state';
import { LOCAL_AWS, startSqsAndS3, type RunningStandIn } from '../../local/stand-ins';
import { isolatedAwsEnvironment, runCli, startCli, writeStandInPipelineState, type CliRun } from '../support/cli-process';
import { assertDocumentedChangeEvents } from '../support/change-events';
import { FAKE_ACCOUNT, startFakeAws, type FakeAws } from '../support/fake-aws';

/**
 * `vital-pipeline events`, run as a user runs it (a child process), on change events the
 * EventBridge stand-in delivered from the real publisher: locally from the data folder's
 * `change-events.jsonl` (the pipeline stopped, or running and naming its file in its state), and for
 * a stack from its tap queue (fauxqs, found through a fake CloudFormation's `ChangeEventsQueueUrl`),
 * where what is printed is consumed. Filters by user and detail-type, one JSON line per event with
 * --json, a wrong --type answered with the closest detail-types, --follow printing an event
 * published after it started until Ctrl-C.
 */

const BUS = 'events-cli-test-bus';
const STACK = 'VitalWebhookPipeline-events';
const REGION = LOCAL_AWS.region;

let dataDir: string;
let eventBridge: RunningEventBridge;
let client: EventBridgeClient;
let publisher: EventBridgeChangePublisher;
let sqsAndS3: RunningStandIn;
let sqs: SQSClient;
let tapQueueUrl: string;
let fakeAws: FakeAws;
/** Events the stand-in delivered, in order: each also goes to the tap queue, as the stack's rule sends them. */
const tapped: Promise<unknown>[] = [];

const recordsChanged: ChangeEvent = {
  detailType: 'Records Changed',
  detail: {
    user_id: 'user-a',
    provider: 'oura',
    source_type: 'ring',
    resource: 'heartrate',
    kind: 'timeseries',
    time_range: { from: '2026-05-14T00:00:00.000000Z', to: '2026-05-14T23:45:00.000000Z' },
    records: { created: 95, updated: 0, unchanged: 1 },
    svix_id: 'msg_records_a',
  },
};
const connectionChanged: ChangeEvent = {
  detailType: 'Connection Changed',
  detail: { user_id: 'user-b', provider: 'garmin', change: 'error', error_type: 'token_refresh_failed', result: 'applied', svix_id: 'msg_connection_b' },
};
const backfillProgress: ChangeEvent = {
  detailType: 'Backfill Progress',
  detail: { user_id: 'user-a', provider: 'oura', resource: 'sleep', backfill_run: 'msg_run_a', windows_done: 2, windows_total: 5, pages_done: 3, records_stored: 40 },
};
const heldBack: ChangeEvent = {
  detailType: 'Events Held Back',
  detail: { reason: 'unrecognised_event_type', count: 1, event_type: 'daily.data.brand_new.created', svix_id: 'msg_held_back' },
};

const localCli = (args: string[], folder = dataDir): Promise<CliRun> => runCli(['events', ...args], isolatedAwsEnvironment(folder, REGION), '', 30_000);

const stackEnvironment = (): Record<string, string> => ({
  ...isolatedAwsEnvironment(dataDir, REGION),
  ...fakeAws.endpointEnvironment,
  AWS_ENDPOINT_URL_SQS: sqsAndS3.endpoint,
});
const stackCli = (args: string[], stack = STACK): Promise<CliRun> => runCli(['events', '--stack', stack, ...args], stackEnvironment(), '', 30_000);

/** The events of a `--json` run, one per line. */
function jsonLines(run: CliRun): DeliveredEvent[] {
  assert.equal(run.code, 0, `exit ${run.code}, stderr: ${run.stderr}`);
  return run.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as DeliveredEvent);
}

/** The events the stand-in kept in the data folder (each checked against its documented schema). */
async function kept(): Promise<DeliveredEvent[]> {
  const events = (await readFile(path.join(dataDir, CHANGE_EVENTS_FILE), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as DeliveredEvent);
  assertDocumentedChangeEvents(events);
  return events;
}

const svixIds = (events: readonly DeliveredEvent[]) => events.map((event) => event.detail.svix_id ?? event.detail.backfill_run);

/** The outputs of this pipeline's stack; only the tap queue is real. */
function stackOutputs(): Record<string, string> {
  const outputs: Record<string, string> = {
    WebhookUrl: 'http://127.0.0.1:9/webhooks/vital',
    EventsQueueUrl: 'http://127.0.0.1:9/000000000000/events',
    EventsDlqUrl: 'http://127.0.0.1:9/000000000000/events-dlq',
    BackfillQueueUrl: 'http://127.0.0.1:9/000000000000/backfill',
    BackfillDlqUrl: 'http://127.0.0.1:9/000000000000/backfill-dlq',
    RawBodyBucketName: 'raw-bodies',
    SigningSecretArn: `arn:aws:secretsmanager:${REGION}:${FAKE_ACCOUNT}:secret:SigningSecret-AbC123`,
    VitalApiKeySecretArn: `arn:aws:secretsmanager:${REGION}:${FAKE_ACCOUNT}:secret:VitalApiKey-XyZ789`,
    ChangeEventsQueueUrl: tapQueueUrl,
  };
  for (const definition of Object.values(TABLES)) outputs[`${definition.id}TableName`] = definition.id;
  return outputs;
}

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'events-cli-'));
  [sqsAndS3, fakeAws] = await Promise.all([startSqsAndS3(), startFakeAws({ region: REGION })]);
  sqs = new SQSClient({ endpoint: sqsAndS3.endpoint, ...LOCAL_AWS });
  // A short visibility timeout, so that what a filtered read leaves is visible to the next one soon.
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'events-cli-tap', Attributes: { VisibilityTimeout: '1' } }));
  tapQueueUrl = new URL(new URL(QueueUrl!).pathname, sqsAndS3.endpoint).toString();
  fakeAws.stacks.set(STACK, stackOutputs());
  const { ChangeEventsQueueUrl: _, ...olderOutputs } = stackOutputs();
  fakeAws.stacks.set(`${STACK}-older`, olderOutputs);

  // The pipeline stopped: its events are in the data folder's file, where the stand-in wrote them.
  eventBridge = await startEventBridge({
    busName: BUS,
    eventsFile: path.join(dataDir, CHANGE_EVENTS_FILE),
    onEvent: (event) => tapped.push(sqs.send(new SendMessageCommand({ QueueUrl: tapQueueUrl, MessageBody: JSON.stringify(event) }))),
  });
  client = new EventBridgeClient({ ...EVENTBRIDGE_CLIENT_SETTINGS, endpoint: eventBridge.endpoint, ...LOCAL_AWS });
  publisher = new EventBridgeChangePublisher({ eventBusName: BUS, client: async () => client });
  // In this order: separate calls, so the file holds them in it.
  for (const event of [recordsChanged, connectionChanged, backfillProgress, heldBack]) await publisher.publish([event]);
  await Promise.all(tapped);
});

after(async () => {
  client?.destroy();
  sqs?.destroy();
  await Promise.all([eventBridge?.stop(), sqsAndS3?.stop(), fakeAws?.stop()]);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('vital-pipeline events (local pipeline)', () => {
  it('prints one line per kept event: time, detail-type, user, provider/resource, range, counts, svix-id or run', async () => {
    const run = await localCli([]);
    assert.equal(run.code, 0, run.stderr);
    const times = (await kept()).map((event) => event.time);
    assert.deepEqual(run.stdout.split('\n').filter(Boolean), [
      `${times[0]}  Records Changed     user user-a  oura/heartrate  2026-05-14T00:00:00.000000Z..2026-05-14T23:45:00.000000Z  95 created, 0 updated, 1 unchanged  msg_records_a`,
      `${times[1]}  Connection Changed  user user-b  garmin  -  error (token_refresh_failed), applied  msg_connection_b`,
      `${times[2]}  Backfill Progress   user user-a  oura/sleep  -  window 2 of 5, 3 pages, 40 records stored  run msg_run_a`,
      `${times[3]}  Events Held Back    user -  daily.data.brand_new.created  -  1 held back: unrecognised_event_type  msg_held_back`,
    ]);
  });

  it('--json prints each event as delivered; --user and --type (any case) keep only those', async () => {
    const [all, userA, records, userAProgress] = await Promise.all([
      localCli(['--json']),
      localCli(['--json', '--user', 'user-a']),
      localCli(['--json', '--type', 'records changed']),
      localCli(['--json', '--user', 'user-a', '--type', 'BACKFILL-progress']),
    ]);
    assert.deepEqual(jsonLines(all), await kept());
    assert.deepEqual(svixIds(jsonLines(userA)), ['msg_records_a', 'msg_run_a']);
    assert.deepEqual(svixIds(jsonLines(records)), ['msg_records_a']);
    assert.deepEqual(svixIds(jsonLines(userAProgress)), ['msg_run_a']);
  });

  it('a wrong --type is a usage error naming the closest detail-types', async () => {
    const [typo, word] = await Promise.all([localCli(['--type', 'recods']), localCli(['--type', 'backfil'])]);
    assert.equal(typo.code, 2);
    assert.equal(typo.stdout, '');
    assert.match(typo.stderr, /^vital-pipeline: --type must be a detail-type \(Records Changed, Connection Changed, Backfill Progress, Backfill Finished, Events Held Back\), not "recods"\. Did you mean Records Changed\? \(see vital-pipeline events --help\)\n$/);
    assert.equal(word.code, 2);
    assert.match(word.stderr, /Did you mean Backfill Progress, Backfill Finished\?/);
  });

  it('reads the file the running pipeline names in its state, and says when there are none', async () => {
    const running = await mkdtemp(path.join(tmpdir(), 'events-cli-running-'));
    try {
      // A pipeline that answers nothing; `events` reads only the change-event file of its state.
      const nowhere = 'http://127.0.0.1:9';
      await writeStandInPipelineState(running, { dynamodb: nowhere, sqs: nowhere, s3: nowhere }, { tables: {} as never, queues: {} as never, bucket: 'none' });
      const empty = await localCli([], running);
      assert.equal(empty.code, 0, empty.stderr);
      assert.equal(empty.stderr, `No change events in ${path.join(running, CHANGE_EVENTS_FILE)}\n`);
      const stateFile = path.join(running, STATE_FILE_NAME);
      const state = JSON.parse(await readFile(stateFile, 'utf8')) as { changeEvents: { file: string } };
      state.changeEvents.file = path.join(dataDir, CHANGE_EVENTS_FILE);
      await writeFile(stateFile, JSON.stringify(state));
      assert.deepEqual(jsonLines(await localCli(['--json'], running)), await kept());
    } finally {
      await rm(running, { recursive: true, force: true });
    }
  });

  it('--follow prints the kept events, then those published after it started, until Ctrl-C', async () => {
    const follow = startCli(['events', '--follow', '--type', 'records-changed'], isolatedAwsEnvironment(dataDir, REGION));
    try {
      await follow.printed(/msg_records_a\n/);
      await publisher.publish([{ detailType: 'Backfill Finished', detail: { user_id: 'user-d', provider: 'oura', resource: 'sleep', backfill_run: 'msg_run_d', state: 'completed', start_date: '2026-04-01', end_date: '2026-05-01', records_stored: 30 } }]);
      await publisher.publish([{ ...recordsChanged, detail: { ...recordsChanged.detail, user_id: 'user-c', svix_id: 'msg_records_c' } }]);
      const printed = await follow.printed(/msg_records_c\n/);
      assert.deepEqual(printed.split('\n').filter(Boolean).map((line) => line.split('  ').at(-1)), ['msg_records_a', 'msg_records_c'], 'Records Changed only');
    } finally {
      follow.kill('SIGINT');
    }
    const ended = await follow.ended;
    assert.equal(ended.code, 0, ended.stderr);
    assert.equal(ended.stderr, '');
  });
});

describe('vital-pipeline events --stack (the tap queue)', () => {
  it('prints what the tap holds and consumes it; what a filter leaves stays for the next read', async () => {
    await Promise.all(tapped);
    const userA = jsonLines(await stackCli(['--json', '--user', 'user-a']));
    assert.deepEqual(svixIds(userA).sort(), ['msg_records_a', 'msg_run_a']);
    const rest = jsonLines(await stackCli(['--json']));
    // Each once, whatever order the queue returns them in; the two --follow events came after.
    assert.deepEqual(svixIds(rest).sort(), ['msg_connection_b', 'msg_held_back', 'msg_records_c', 'msg_run_d']);
    const empty = await stackCli([]);
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, '');
    assert.equal(empty.stderr, `No change events in the tap queue of stack ${STACK}\n`);
  });

  it('--follow prints an event reaching the tap after it started', async () => {
    const follow = startCli(['events', '--stack', STACK, '--follow'], stackEnvironment());
    try {
      await publisher.publish([{ detailType: 'Connection Changed', detail: { user_id: 'user-e', provider: 'garmin', change: 'created', result: 'applied', svix_id: 'msg_connection_e' } }]);
      await follow.printed(/Connection Changed {2}user user-e {2}garmin {2}- {2}created, applied {2}msg_connection_e\n/);
    } finally {
      follow.kill('SIGINT');
    }
    assert.equal((await follow.ended).code, 0);
  });

  it('says so for a stack deployed before it had a tap queue', async () => {
    const run = await stackCli([], `${STACK}-older`);
    assert.equal(run.code, 1);
    assert.equal(run.stderr, `vital-pipeline: stack ${STACK}-older has no output ChangeEventsQueueUrl: deploy this version of the pipeline to it to get its change events\n`);
  });
});
