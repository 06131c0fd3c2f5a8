import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import {
  ChangeEventsNotPublishedError,
  EventBridgeChangePublisher,
  PUT_EVENTS_SIZE_LIMIT,
  changeEventPublisherFromEnvironment,
} from '../../functions/adapters/change-event-publisher';
import { EVENTBRIDGE_CLIENT_SETTINGS } from '../../functions/adapters/eventbridge-client';
import { CHANGE_EVENT_SOURCE, type ChangeEvent } from '../../functions/domain/change-events';
import { CHANGE_EVENT_BUS } from '../../functions/shared/resources';
import { startEventBridge, type DeliveredEvent, type RunningEventBridge } from '../../local/eventbridge-stand-in';
import { LOCAL_AWS } from '../../local/stand-ins';
import { assertDocumentedChangeEvents } from '../support/change-events';

/**
 * The EventBridge publisher against the EventBridge stand-in, through the real SDK client made as
 * the handlers make it (one attempt per call): publishes made close together share `PutEvents`
 * calls of at most 10 entries and under 256 KB; entries and calls EventBridge fails transiently are
 * retried; a publish resolves only once all of its own events are accepted, and rejects with the
 * counts and codes (never a detail) otherwise, without failing the publishes that shared its calls.
 */

const BUS = 'publisher-test-bus';
let folder: string;
let eventsFile: string;
let eventBridge: RunningEventBridge;
let client: EventBridgeClient;

before(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'change-event-publisher-'));
  eventsFile = path.join(folder, 'change-events.jsonl');
  eventBridge = await startEventBridge({ busName: BUS, eventsFile });
  client = new EventBridgeClient({ ...EVENTBRIDGE_CLIENT_SETTINGS, endpoint: eventBridge.endpoint, ...LOCAL_AWS });
});

after(async () => {
  client?.destroy();
  await eventBridge?.stop();
  if (folder) await rm(folder, { recursive: true, force: true });
});

beforeEach(() => {
  (eventBridge.calls as unknown[]).length = 0;
  eventBridge.failEntries(undefined);
});

const publisherOn = (bus: string = BUS) => new EventBridgeChangePublisher({ eventBusName: bus, client: async () => client });

const recordsChanged = (userId: string, svixId = `msg_${userId}`, sourceType = 'ring'): ChangeEvent => ({
  detailType: 'Records Changed',
  detail: { user_id: userId, provider: 'oura', source_type: sourceType, resource: 'heartrate', kind: 'timeseries', records: { created: 3, updated: 0, unchanged: 0 }, svix_id: svixId },
});

/** The events the stand-in delivered so far, from its file (each checked against its documented schema). */
async function delivered(): Promise<DeliveredEvent[]> {
  const text = await readFile(eventsFile, 'utf8').catch(() => '');
  const events = text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as DeliveredEvent);
  assertDocumentedChangeEvents(events);
  return events;
}

const usersDelivered = async (): Promise<string[]> => (await delivered()).map((event) => String(event.detail.user_id));

describe('EventBridgeChangePublisher', () => {
  it('coalesces publishes made together into ceil(n/10) PutEvents calls, each event delivered once', async () => {
    const before = (await delivered()).length;
    const users = Array.from({ length: 23 }, (_, index) => `coalesced-${index}`);
    const publisher = publisherOn();
    await Promise.all(users.map((user) => publisher.publish([recordsChanged(user)])));
    assert.deepEqual(eventBridge.calls.map((call) => call.entries), [10, 10, 3]);
    const events = (await delivered()).slice(before);
    assert.deepEqual(events.map((event) => event.detail.user_id).sort(), [...users].sort());
    for (const event of events) {
      assert.equal(event.source, CHANGE_EVENT_SOURCE);
      assert.equal(event['detail-type'], 'Records Changed');
    }
  });

  it('coalesces publishes of one publisher a macrotask apart, as concurrent records make them', async () => {
    const publisher = publisherOn();
    const published: Promise<void>[] = [];
    for (let index = 0; index < 8; index += 1) {
      published.push(publisher.publish([recordsChanged(`apart-${index}`)]));
      await nextMacrotask();
    }
    await Promise.all(published);
    assert.ok(eventBridge.calls.length < 8, `${eventBridge.calls.length} calls for 8 publishes`);
    assert.equal(eventBridge.calls.reduce((sum, call) => sum + call.accepted, 0), 8);
  });

  it('keeps each call under 256 KB by EventBridge\'s measure (UTF-8 bytes, not characters)', async () => {
    // Each entry is about 90 KB of UTF-8 but 45 K characters: two fit in a call, three do not;
    // counted in characters, all four would seem to fit, and the stand-in would refuse the call.
    const wide = (index: number): ChangeEvent => recordsChanged(`wide-${index}`, `msg_wide_${index}`, 'é'.repeat(45_000));
    const entryBytes = Buffer.byteLength(CHANGE_EVENT_SOURCE) + Buffer.byteLength('Records Changed') + Buffer.byteLength(JSON.stringify(wide(0).detail));
    assert.ok(2 * entryBytes < PUT_EVENTS_SIZE_LIMIT && 3 * entryBytes > PUT_EVENTS_SIZE_LIMIT && 4 * JSON.stringify(wide(0).detail).length < PUT_EVENTS_SIZE_LIMIT);
    await publisherOn().publish([0, 1, 2, 3].map(wide));
    assert.deepEqual(eventBridge.calls.map((call) => [call.entries, call.accepted]), [[2, 2], [2, 2]]);
    assert.ok(eventBridge.calls.every((call) => call.bytes < PUT_EVENTS_SIZE_LIMIT));
  });

  it('retries the entries EventBridge failed, and the calls it throttled or failed, then resolves', async () => {
    eventBridge.failNext(3, 'InternalFailure');
    const users = ['retried-0', 'retried-1', 'retried-2', 'retried-3', 'retried-4'];
    await publisherOn().publish(users.map((user) => recordsChanged(user)));
    assert.deepEqual(eventBridge.calls.map((call) => [call.entries, call.accepted]), [[5, 2], [3, 3]], 'only the failed entries again');

    (eventBridge.calls as unknown[]).length = 0;
    eventBridge.failNextCalls(1, 'ThrottlingException');
    await publisherOn().publish([recordsChanged('after-throttling')]);
    eventBridge.failNextCalls(1, 'InternalException');
    await publisherOn().publish([recordsChanged('after-internal-error')]);
    assert.deepEqual(eventBridge.calls.map((call) => call.accepted), [0, 1, 0, 1]);
    const delivered = await usersDelivered();
    for (const user of [...users, 'after-throttling', 'after-internal-error']) assert.equal(delivered.filter((each) => each === user).length, 1, user);
  });

  it('rejects only the publishes whose entries kept failing, naming counts and codes, never a detail', async () => {
    eventBridge.failEntries((entry) => (entry.detail.user_id === 'user-keeps-failing' ? 'ThrottlingException' : undefined));
    const publisher = publisherOn();
    const [first, failing, last] = await Promise.allSettled([
      publisher.publish([recordsChanged('shares-a-call-0')]),
      publisher.publish([recordsChanged('user-keeps-failing', 'msg_secret_svix'), recordsChanged('accepted-beside-it')]),
      publisher.publish([recordsChanged('shares-a-call-1')]),
    ]);
    assert.equal(first.status, 'fulfilled');
    assert.equal(last.status, 'fulfilled');
    assert.equal(failing.status, 'rejected');
    const error = (failing as PromiseRejectedResult).reason as ChangeEventsNotPublishedError;
    assert.ok(error instanceof ChangeEventsNotPublishedError);
    assert.equal(error.name, 'ChangeEventsNotPublishedError');
    assert.equal(error.message, '1 of 2 change events were not published: ThrottlingException ×1');
    assert.deepEqual({ failed: error.failed, total: error.total, codes: error.errorCodes }, { failed: 1, total: 2, codes: { ThrottlingException: 1 } });
    // One call for all four entries, then the failing one alone, three more times.
    assert.deepEqual(eventBridge.calls.map((call) => [call.entries, call.accepted]), [[4, 3], [1, 0], [1, 0], [1, 0]]);
    assert.ok((await usersDelivered()).includes('accepted-beside-it'));
  });

  it('does not retry what cannot succeed: a final entry code, or a call refused as a whole', async () => {
    eventBridge.failEntries((entry) => (entry.detail.user_id === 'user-denied' ? 'AccessDeniedException' : undefined));
    await assert.rejects(publisherOn().publish([recordsChanged('user-denied')]), /^ChangeEventsNotPublishedError: 1 of 1 change events were not published: AccessDeniedException ×1$/);
    assert.equal(eventBridge.calls.length, 1);
    await assert.rejects(publisherOn('no-such-bus').publish([recordsChanged('wrong-bus-0'), recordsChanged('wrong-bus-1')]), (error: Error) => {
      assert.equal(error.message, '2 of 2 change events were not published: ResourceNotFoundException ×2');
      return true;
    });
    assert.equal(eventBridge.calls.length, 1, 'the refused call is not counted by the bus, and not repeated');
  });

  it('takes the bus by its ARN too', async () => {
    await publisherOn(eventBridge.busArn).publish([recordsChanged('by-arn')]);
    assert.ok((await usersDelivered()).includes('by-arn'));
  });
});

describe('changeEventPublisherFromEnvironment', () => {
  it('publishes on the bus CHANGE_EVENT_BUS names, at the endpoint AWS_ENDPOINT_URL_EVENTBRIDGE names', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      [CHANGE_EVENT_BUS.envVar]: BUS,
      AWS_ENDPOINT_URL_EVENTBRIDGE: eventBridge.endpoint,
      AWS_REGION: LOCAL_AWS.region,
      AWS_ACCESS_KEY_ID: LOCAL_AWS.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_AWS.credentials.secretAccessKey,
    });
    try {
      await changeEventPublisherFromEnvironment().publish([recordsChanged('from-environment')]);
      assert.ok((await usersDelivered()).includes('from-environment'));
      delete process.env[CHANGE_EVENT_BUS.envVar];
      assert.throws(() => changeEventPublisherFromEnvironment(), /Environment variable CHANGE_EVENT_BUS is not set/);
    } finally {
      process.env = saved;
    }
  });
});
