import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EventBridgeClient, ListRulesCommand, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { SQSClient, ListQueuesCommand } from '@aws-sdk/client-sqs';
import { EVENTBRIDGE_CLIENT_SETTINGS } from '../../functions/adapters/eventbridge-client';
import { CHANGE_EVENT_BUS } from '../../functions/shared/resources';
import { functionCredentials } from '../../local/aws-access';
import { startEventBridge, type DeliveredEvent, type RunningEventBridge } from '../../local/eventbridge-stand-in';
import { enforceStackAccess } from '../../local/stack-access';
import { LOCAL_AWS } from '../../local/stand-ins';
import { LOCAL_ACCOUNT } from '../../local/synthesized-access';

/**
 * The EventBridge stand-in refuses what EventBridge refuses, in the shapes the SDK client reads
 * (whole calls as errors, entries in `Entries` with `FailedEntryCount`), and delivers what it accepts
 * as EventBridge delivers events to a target: one JSON line per event in its file, and to `onEvent`.
 * Held to the stack's IAM, it lets a function publish only where its role allows.
 */

const BUS = 'stand-in-test-bus';
let folder: string;
let eventsFile: string;
let eventBridge: RunningEventBridge;
let client: EventBridgeClient;
const heard: DeliveredEvent[] = [];

before(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'eventbridge-stand-in-'));
  eventsFile = path.join(folder, 'nested', 'change-events.jsonl');
  eventBridge = await startEventBridge({ busName: BUS, eventsFile, onEvent: (event) => heard.push(event) });
  client = new EventBridgeClient({ ...EVENTBRIDGE_CLIENT_SETTINGS, endpoint: eventBridge.endpoint, ...LOCAL_AWS });
});

after(async () => {
  client?.destroy();
  await eventBridge?.stop();
  if (folder) await rm(folder, { recursive: true, force: true });
});

const entry = (detail: string, overrides: Partial<PutEventsRequestEntry> = {}): PutEventsRequestEntry => ({
  Source: 'stand-in.test',
  DetailType: 'Checked',
  Detail: detail,
  EventBusName: BUS,
  ...overrides,
});

const put = (entries: PutEventsRequestEntry[]) => client.send(new PutEventsCommand({ Entries: entries }));

/** The error code and HTTP status of a call refused as a whole. */
async function refusal(call: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await call;
  } catch (error) {
    return { name: (error as Error).name, status: (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode };
  }
  assert.fail('the call was accepted');
}

const fileEvents = async (): Promise<DeliveredEvent[]> =>
  (await readFile(eventsFile, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as DeliveredEvent);

describe('EventBridge stand-in', () => {
  it('delivers an accepted entry as EventBridge delivers an event: in its file and to onEvent', async () => {
    const answer = await put([entry('{"user_id":"u-1","records":{"created":1}}')]);
    assert.equal(answer.FailedEntryCount, 0);
    const [event] = await fileEvents();
    assert.deepEqual(Object.keys(event!).sort(), ['account', 'detail', 'detail-type', 'id', 'region', 'resources', 'source', 'time', 'version']);
    assert.deepEqual(
      { ...event, id: undefined, time: undefined },
      { version: '0', id: undefined, 'detail-type': 'Checked', source: 'stand-in.test', account: LOCAL_ACCOUNT.accountId, time: undefined, region: LOCAL_AWS.region, resources: [], detail: { user_id: 'u-1', records: { created: 1 } } },
    );
    assert.equal(event!.id, answer.Entries![0]!.EventId);
    assert.match(event!.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    assert.deepEqual(heard, [event]);
  });

  it('refuses a call of no entries or more than 10, or of entries totalling 256 KB or more, as ValidationException', async () => {
    assert.deepEqual(await refusal(put(Array.from({ length: 11 }, () => entry('{}')))), { name: 'ValidationException', status: 400 });
    assert.deepEqual(await refusal(put([])), { name: 'ValidationException', status: 400 });
    // Two entries of 131,072 bytes of Detail each, before Source and DetailType count.
    const half = `{"x":"${'a'.repeat(128 * 1024 - 8)}"}`;
    assert.deepEqual(await refusal(put([entry(half), entry(half)])), { name: 'ValidationException', status: 400 });
    assert.equal((await put(Array.from({ length: 10 }, () => entry('{}')))).FailedEntryCount, 0, 'ten is allowed');
  });

  it('fails an entry whose Detail is not a JSON object (MalformedDetail) or that lacks a field (InvalidArgument), and accepts the rest', async () => {
    const before = (await fileEvents()).length;
    const answer = await put([
      entry('[1, 2]'),
      entry('"text"'),
      entry('not json'),
      entry('{"kept":true}'),
      entry('{}', { DetailType: undefined }),
      entry('{}', { Source: '' }),
    ]);
    assert.equal(answer.FailedEntryCount, 5);
    assert.deepEqual(answer.Entries!.map((each) => each.ErrorCode ?? 'accepted'), ['MalformedDetail', 'MalformedDetail', 'MalformedDetail', 'accepted', 'InvalidArgument', 'InvalidArgument']);
    assert.deepEqual((await fileEvents()).slice(before).map((event) => event.detail), [{ kept: true }]);
  });

  it('refuses a bus other than its own, by name or ARN, as ResourceNotFoundException; takes its own ARN', async () => {
    assert.deepEqual(await refusal(put([entry('{}', { EventBusName: 'another-bus' })])), { name: 'ResourceNotFoundException', status: 400 });
    assert.deepEqual(await refusal(put([entry('{}', { EventBusName: undefined })])), { name: 'ResourceNotFoundException', status: 400 });
    assert.deepEqual(await refusal(put([entry('{}', { EventBusName: eventBridge.busArn.replace(BUS, 'another-bus') })])), { name: 'ResourceNotFoundException', status: 400 });
    assert.equal((await put([entry('{}', { EventBusName: eventBridge.busArn })])).FailedEntryCount, 0);
  });

  it('answers any other operation with UnknownOperationException, and a client of another service as AWS would', async () => {
    assert.deepEqual(await refusal(client.send(new ListRulesCommand({}))), { name: 'UnknownOperationException', status: 400 });
    const sqs = new SQSClient({ endpoint: eventBridge.endpoint, ...LOCAL_AWS, maxAttempts: 1 });
    try {
      assert.deepEqual(await refusal(sqs.send(new ListQueuesCommand({}))), { name: 'InvalidSignatureException', status: 400 });
    } finally {
      sqs.destroy();
    }
  });

  it('holds each function to its role once the stack\'s access is enforced: the worker publishes, the verifier may not', async () => {
    enforceStackAccess([eventBridge], { [CHANGE_EVENT_BUS.envVar]: BUS });
    const as = (name: 'worker' | 'verifier') => new EventBridgeClient({ ...EVENTBRIDGE_CLIENT_SETTINGS, endpoint: eventBridge.endpoint, region: LOCAL_AWS.region, credentials: functionCredentials(name) });
    const [worker, verifier] = [as('worker'), as('verifier')];
    try {
      assert.equal((await worker.send(new PutEventsCommand({ Entries: [entry('{}')] }))).FailedEntryCount, 0);
      assert.deepEqual(await refusal(verifier.send(new PutEventsCommand({ Entries: [entry('{}')] }))), { name: 'AccessDeniedException', status: 400 });
      assert.deepEqual(await refusal(worker.send(new PutEventsCommand({ Entries: [entry('{}', { EventBusName: 'default' })] }))), { name: 'AccessDeniedException', status: 400 }, 'not on another bus');
    } finally {
      for (const client of [worker, verifier]) client.destroy();
      eventBridge.enforce(undefined);
    }
  });

  it('fails entries and calls on a test\'s request, as EventBridge fails them', async () => {
    eventBridge.failNext(1, 'InternalFailure');
    const answer = await put([entry('{"n":1}'), entry('{"n":2}')]);
    assert.deepEqual(answer.Entries!.map((each) => each.ErrorCode ?? 'accepted'), ['InternalFailure', 'accepted']);
    eventBridge.failNextCalls(1, 'ThrottlingException');
    assert.deepEqual(await refusal(put([entry('{}')])), { name: 'ThrottlingException', status: 400 });
    eventBridge.failNextCalls(1, 'InternalException');
    assert.deepEqual(await refusal(put([entry('{}')])), { name: 'InternalException', status: 500 });
    assert.equal((await put([entry('{}')])).FailedEntryCount, 0, 'then it accepts again');
  });
});
