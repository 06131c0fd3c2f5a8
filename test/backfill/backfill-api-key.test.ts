import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context, SQSEvent } from 'aws-lambda';
import { GetQueueAttributesCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { readBackfills } from '../../cli/record-queries';
import { LOCAL_AWS } from '../../local/stand-ins';
import { createBackfillHandler, type BackfillHandlerDependencies } from '../../functions/backfill';
import { CachedApiKey, VitalApiClient } from '../../functions/adapters/vital-api-client';
import {
  API_KEY_MAX_WAIT_MS,
  API_KEY_RETRY_DELAY_SECONDS,
  apiKeyRetryDelaySeconds,
  classifyBackfillError,
  classifyVitalAnswer,
  type BackfillFailureClass,
  type VitalAnswer,
} from '../../functions/domain/backfill-failure';
import { InvalidBackfillRangeError, planBackfill } from '../../functions/domain/backfill-plan';
import {
  VitalApiClientError,
  VitalApiKeyNotSetError,
  VitalApiKeyRejectedError,
  VitalApiMalformedResponseError,
  VitalApiRateLimitedError,
  VitalApiUnavailableError,
} from '../../functions/domain/backfill-source';
import type { BackfillJobKey } from '../../functions/domain/backfill-job';
import { resourceNamed } from '../../functions/domain/catalogue';
import { newMessageId, orderKeyOfDelivery } from '../../functions/domain/message-order';
import { QUEUES } from '../../functions/shared/resources';
import { API_KEY, startHarness, type Harness } from './harness';

/**
 * The first hour after deploy loses no backfill: while the Vital API key secret holds the stack's
 * placeholder, a historical notice waits (`waiting_for_api_key`) instead of failing, without
 * spending the receives of its message, and goes on by itself, from its checkpoint, once the key is
 * stored. The rule that decides it (transient / waiting for the key / permanent) is one pure
 * function, tested first.
 */

const START = '2026-03-01T00:00:00+00:00';
const END = '2026-04-15T00:00:00+00:00'; // 45 days: two 30-day windows
const LONG_END = '2026-06-28T00:00:00+00:00'; // 119 days: four windows
const PLACEHOLDER = 'Xq7-placeholder-generated-by-secrets-manager';
const http = (status: number, body?: unknown): VitalAnswer => ({ kind: 'http', status, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

describe('classifyVitalAnswer: what each answer of the Data Access API means to a backfill job', () => {
  const cases: [string, VitalAnswer, BackfillFailureClass][] = [
    ['no answer (network error, timeout)', { kind: 'no_response' }, 'transient'],
    ['a 2xx that is not the documented shape', { kind: 'malformed' }, 'permanent'],
    ['401 with the fake\'s body', http(401, { detail: 'Invalid API key' }), 'waiting_for_api_key'],
    ['401 as seen from Junction for an expired key', http(401, { detail: 'invalid token' }), 'waiting_for_api_key'],
    ['401 without a body', http(401), 'waiting_for_api_key'],
    ['401 with a body that is not JSON', { kind: 'http', status: 401, body: '<html>Unauthorized</html>' }, 'waiting_for_api_key'],
    ['403 "Not authenticated" (a missing or unreadable key)', http(403, { detail: 'Not authenticated' }), 'waiting_for_api_key'],
    ['403 naming the API key', http(403, { detail: 'Invalid API Key for this region' }), 'waiting_for_api_key'],
    ['403 in Vital\'s error schema, blaming the credentials', http(403, { error_type: 'invalid_credentials', error_message: 'bad credentials' }), 'waiting_for_api_key'],
    ['403 refusing something else', http(403, { detail: 'Your team has no access to this feature' }), 'permanent'],
    ['403 without a body', http(403), 'permanent'],
    ['408', http(408), 'transient'],
    ['429', http(429, { detail: 'Too Many Requests' }), 'transient'],
    ['500', http(500), 'transient'],
    ['502', http(502), 'transient'],
    ['503', http(503), 'transient'],
    ['504', http(504), 'transient'],
    ['400', http(400), 'permanent'],
    ['404 (unknown user or workout)', http(404, { detail: 'Not Found' }), 'permanent'],
    ['422 (validation)', http(422, { detail: [{ type: 'missing', loc: ['query', 'start_date'] }] }), 'permanent'],
    ['an unfollowed 3xx', http(302), 'permanent'],
  ];
  for (const [what, answer, expected] of cases) {
    it(`${what} → ${expected}`, () => assert.equal(classifyVitalAnswer(answer), expected));
  }
});

describe('classifyBackfillError: what each error of a backfill step means', () => {
  const cases: [string, unknown, BackfillFailureClass][] = [
    ['a key Vital rejected after a fresh read', new VitalApiKeyRejectedError('HTTP 401', 401), 'waiting_for_api_key'],
    ['an empty key secret', new VitalApiKeyNotSetError('no value'), 'waiting_for_api_key'],
    ['429/503 after the in-process retries', new VitalApiRateLimitedError('HTTP 503 after 4 attempts'), 'transient'],
    ['network, timeout, 408, other 5xx', new VitalApiUnavailableError('timed out'), 'transient'],
    ['another 4xx', new VitalApiClientError('HTTP 422', 422), 'permanent'],
    ['a malformed 2xx', new VitalApiMalformedResponseError('not JSON'), 'permanent'],
    ['an unreadable range', new InvalidBackfillRangeError('start_date is not a date'), 'permanent'],
    ['a DynamoDB error', new ConditionalCheckFailedException({ message: 'conditional', $metadata: {} }), 'transient'],
    ['any other error', new Error('socket hang up'), 'transient'],
    ['something thrown that is not an Error', 'boom', 'transient'],
  ];
  for (const [what, error, expected] of cases) {
    it(`${what} → ${expected}`, () => assert.equal(classifyBackfillError(error), expected));
  }

  it('a rejected key is still a 4xx client error with its status (the 404 rule for streams reads it)', () => {
    const error = new VitalApiKeyRejectedError('HTTP 401', 401);
    assert.ok(error instanceof VitalApiClientError);
    assert.equal(error.status, 401);
  });

  it('the waiting delay is SQS\'s longest (900 s), scaled for tests to whole seconds, never below 1 s; the wait lasts 14 days', () => {
    assert.equal(API_KEY_RETRY_DELAY_SECONDS, 900);
    assert.equal(apiKeyRetryDelaySeconds(), 900);
    assert.equal(apiKeyRetryDelaySeconds(1 / 40), 23);
    assert.equal(apiKeyRetryDelaySeconds(1 / 10_000), 1);
    assert.equal(API_KEY_MAX_WAIT_MS, QUEUES.backfill.messageRetentionSeconds * 1000);
  });
});

/** A Secrets Manager stand-in: what the operator stored, and how often the backfill read it. */
function secretStore(initial: string) {
  const store = { value: initial, reads: 0, forcedReads: 0 };
  const source = (now?: () => number) =>
    new CachedApiKey({
      fetch: async (forceFetch) => {
        store.reads += 1;
        if (forceFetch) store.forcedReads += 1;
        return store.value;
      },
      // Longer than any test: only the read forced by a rejection can pick up a newly stored key.
      maxAgeMs: 3_600_000,
      minRefreshIntervalMs: 0,
      ...(now ? { now } : {}),
    });
  return { store, source };
}

describe('CachedApiKey: the key secret, cached, and read afresh when Vital rejects the key', () => {
  it('serves the cached value until maxAge, reads afresh on refresh (at most every minRefreshInterval), and calls an empty secret "not set"', async () => {
    let now = 0;
    const reads: boolean[] = [];
    let value = PLACEHOLDER;
    const key = new CachedApiKey({ fetch: async (force) => (reads.push(force), value), maxAgeMs: 300_000, minRefreshIntervalMs: 30_000, now: () => now });
    assert.equal(await key.get(), PLACEHOLDER);
    value = API_KEY; // the operator stores the key
    now = 10_000;
    assert.equal(await key.get(), PLACEHOLDER, 'cached');
    assert.equal(await key.refresh(), PLACEHOLDER, 'read 10 s ago: fresh enough, not read again');
    now = 31_000;
    assert.equal(await key.refresh(), API_KEY, 'read afresh');
    assert.deepEqual(reads, [false, true]);
    value = API_KEY.toUpperCase();
    now = 31_000 + 300_000;
    assert.equal(await key.get(), API_KEY.toUpperCase(), 'maxAge passed: read again');
    value = '  ';
    now += 300_000;
    await assert.rejects(key.get(), VitalApiKeyNotSetError);
  });
});

const lambdaContext = { getRemainingTimeInMillis: () => 60_000, functionName: 'backfill', awsRequestId: 'test' } as unknown as Context;
let users = 0;
const freshUser = () => `api-key-user-${(users += 1)}`;

describe('a backfill while the Vital API key is not (yet) stored', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ fake: { pageSize: 200 } });
  });
  after(() => h.stop());
  beforeEach(() => h.beginCase());
  afterEach(async () => {
    await h.endCase();
    h.fake.setApiKey(API_KEY); // beginCase restores faults and counters, not the accepted key
  });

  /** The handler's dependencies as deployed (the case's queue, as the backfill's role), with the given key store and a 1 s wait. */
  function waitingDependencies(keys: ReturnType<typeof secretStore>, overrides: Partial<BackfillHandlerDependencies> = {}): Partial<BackfillHandlerDependencies> {
    return {
      source: new VitalApiClient({ baseUrl: h.fake.url, apiKey: keys.source(), maxRequestsPerSecond: 200, retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 1_000 } }),
      // 900 s in AWS; SQS's shortest delay here, so a test sees many tries in seconds.
      apiKeyRetryDelaySeconds: 1,
      ...overrides,
    };
  }

  async function queueCounts(url: string): Promise<{ visible: number; inFlight: number; delayed: number }> {
    const { Attributes } = await h.sqs.send(new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }));
    return {
      visible: Number(Attributes?.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
      delayed: Number(Attributes?.ApproximateNumberOfMessagesDelayed ?? 0),
    };
  }

  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
      await sleep(50);
    }
  }

  async function storedActivityIds(userId: string): Promise<string[]> {
    const stored = await h.records.querySummaries(userId, 'activity', { from: '2026-01-01T00:00:00Z', to: '2026-12-31T00:00:00Z' });
    return stored.map((record) => record.object.id as string);
  }

  it('waits (not failed, nothing dead-lettered, nothing stored) through more tries than maxReceiveCount, then completes by itself once the key is stored', async () => {
    const keys = secretStore(PLACEHOLDER); // just deployed: the secret holds the stack's placeholder
    await h.startBackfill({ overrides: waitingDependencies(keys) });
    const key: BackfillJobKey = { userId: freshUser(), provider: 'oura', resource: 'activity' };
    const runId = await h.historical(key, START, END);

    const waiting = await h.waitForState(key, runId, ['waiting_for_api_key', 'failed', 'completed'], 30_000);
    assert.equal(waiting.state, 'waiting_for_api_key');
    assert.match(waiting.waitingReason ?? '', /HTTP 401/);
    assert.ok(!(waiting.waitingReason ?? '').includes(PLACEHOLDER), 'the reason never carries the key');
    assert.ok(waiting.waitingSince && waiting.nextAttemptAt && Date.parse(waiting.nextAttemptAt) > Date.parse(waiting.waitingSince));
    assert.equal(waiting.windowIndex, 0);
    assert.equal(waiting.lastError, undefined, 'a wait is not an error');

    // More tries than the queue's maxReceiveCount: each is a new, delayed message, so none dead-letters.
    const tries = QUEUES.backfill.maxReceiveCount + 2;
    const stillWaiting = await until(`${tries} rejected tries`, async () => {
      const status = await h.statuses.get(key);
      assert.equal(status?.state, 'waiting_for_api_key', `still waiting, never failed: ${JSON.stringify(status)}`);
      return (h.fake.counters.byStatus.get(401) ?? 0) >= tries ? status : undefined;
    });
    assert.equal(stillWaiting.waitingSince, waiting.waitingSince, 'the wait keeps the time it began');
    assert.ok(stillWaiting.stepSeq >= tries - 1, 'every try was one optimistic step');
    assert.deepEqual(await queueCounts(h.queue.deadLetterUrl), { visible: 0, inFlight: 0, delayed: 0 }, 'nothing in the backfill DLQ');
    assert.deepEqual(await storedActivityIds(key.userId), [], 'no record stored');
    assert.equal(h.fake.counters.dataResponses, 0);
    assert.ok(keys.store.forcedReads >= tries - 1, 'every rejection read the secret afresh before concluding');

    // What `vital-pipeline inspect backfills` shows meanwhile, for a stack and for the local pipeline.
    const dynamodb = new DynamoDBClient({ endpoint: h.endpoints.dynamodb, ...LOCAL_AWS });
    try {
      const [{ row, lastError }] = await readBackfills(dynamodb, h.resources.tables.backfills, key.userId, { stack: { name: 'vital-prod' } });
      assert.equal(row.status, 'waiting_for_api_key');
      assert.equal(row.waiting_since, waiting.waitingSince);
      assert.match(row.waiting_reason ?? '', /HTTP 401/);
      assert.ok(row.next_attempt_at);
      assert.match(row.hint ?? '', /store the Vital API key: vital-pipeline secrets set --stack vital-prod/);
      assert.equal(lastError, undefined);
      const [local] = await readBackfills(dynamodb, h.resources.tables.backfills, key.userId);
      assert.match(local!.row.hint ?? '', /set VITAL_API_KEY and restart the local pipeline/);
      assert.ok(!JSON.stringify([row, local]).includes(PLACEHOLDER), 'the key is shown nowhere');
    } finally {
      dynamodb.destroy();
    }

    keys.store.value = API_KEY; // the operator stores the real key; nothing else is done
    const done = await h.waitForState(key, runId, ['completed', 'failed'], 30_000);
    assert.equal(done.state, 'completed', done.lastError);
    assert.equal(done.waitingSince, undefined);
    assert.equal(done.waitingReason, undefined);
    assert.equal(done.nextAttemptAt, undefined);
    const after = new DynamoDBClient({ endpoint: h.endpoints.dynamodb, ...LOCAL_AWS });
    try {
      const [{ row }] = await readBackfills(after, h.resources.tables.backfills, key.userId, { stack: { name: 'vital-prod' } });
      assert.deepEqual(Object.keys(row).sort(), ['end_date', 'held_back', 'provider', 'records', 'resource', 'start_date', 'status'], 'no wait, no hint');
    } finally {
      after.destroy();
    }
    const expected = h.fake.identitiesFor(key.userId, key.provider, 'activity', START, END);
    const stored = await storedActivityIds(key.userId);
    assert.ok(expected.size > 0);
    assert.equal(stored.length, new Set(stored).size, 'no record stored twice');
    assert.deepEqual(new Set(stored), expected, 'every record of the range stored');
    assert.equal(done.windowsDone, done.windowsTotal);
    await until('the queue to drain', async () => {
      const counts = await queueCounts(h.queue.url);
      return counts.visible + counts.inFlight + counts.delayed === 0 ? true : undefined;
    });
    assert.deepEqual(await queueCounts(h.queue.deadLetterUrl), { visible: 0, inFlight: 0, delayed: 0 });
  });

  it('a key that stops working mid-run waits at its checkpoint and goes on from there, re-fetching no window it had done', async () => {
    const keys = secretStore(API_KEY);
    await h.startBackfill({ overrides: waitingDependencies(keys) });
    // Slow answers, so the key can be turned off between two windows of one invocation.
    h.fake.setFaults({ delayMs: 250 });
    const key: BackfillJobKey = { userId: freshUser(), provider: 'oura', resource: 'activity' };
    const runId = await h.historical(key, START, LONG_END);
    await until('a window stored', async () => ((await h.statuses.get(key))?.windowsDone ?? 0) >= 1 ? true : undefined);
    h.fake.setApiKey('rotated-in-the-dashboard'); // Vital stops accepting the stored key
    const waiting = await h.waitForState(key, runId, ['waiting_for_api_key', 'failed', 'completed'], 30_000);
    h.fake.setFaults({});
    assert.equal(waiting.state, 'waiting_for_api_key', 'waiting, with windows already done');
    assert.ok(waiting.windowIndex >= 1 && waiting.windowIndex < waiting.windowsTotal, `waits at window ${waiting.windowIndex} of ${waiting.windowsTotal}`);
    const checkpoint = { windowIndex: waiting.windowIndex, cursor: waiting.cursor, pagesDone: waiting.pagesDone, recordsStored: waiting.recordsStored };
    const fetchedBeforeTheWait = h.fake.counters.dataRequests.length;
    const rejected = h.fake.counters.byStatus.get(401) ?? 0;
    await until('two more rejected tries', async () => ((h.fake.counters.byStatus.get(401) ?? 0) >= rejected + 2 ? true : undefined));
    const held = await h.statuses.get(key);
    assert.equal(held?.state, 'waiting_for_api_key');
    assert.deepEqual(
      { windowIndex: held?.windowIndex, cursor: held?.cursor, pagesDone: held?.pagesDone, recordsStored: held?.recordsStored },
      checkpoint,
      'the checkpoint is kept while waiting',
    );

    keys.store.value = 'rotated-in-the-dashboard'; // the operator stores the new key
    const done = await h.waitForState(key, runId, ['completed', 'failed'], 30_000);
    assert.equal(done.state, 'completed', done.lastError);
    assert.equal(done.windowsDone, done.windowsTotal);
    const expected = h.fake.identitiesFor(key.userId, key.provider, 'activity', START, LONG_END);
    const stored = await storedActivityIds(key.userId);
    assert.equal(stored.length, new Set(stored).size, 'no record stored twice');
    assert.deepEqual(new Set(stored), expected, 'every record of the range stored');
    // After the wait, only the windows from the checkpoint on were asked for.
    const { windows } = planBackfill(resourceNamed('activity')!, START, LONG_END);
    const doneBefore = new Set(windows.slice(0, checkpoint.windowIndex).map((window) => window.startDate));
    const askedAfter = h.fake.counters.dataRequests.slice(fetchedBeforeTheWait).map((request) => new URL(request, 'http://fake').searchParams.get('start_date'));
    assert.ok(askedAfter.length >= windows.length - checkpoint.windowIndex);
    assert.deepEqual(askedAfter.filter((startDate) => doneBefore.has(startDate ?? '')), [], 'no window done before the wait fetched again');
  });

  /** Takes the job message off the queue as the event source mapping would hand it over. */
  async function jobEvent(receiveCount = 1): Promise<SQSEvent> {
    const received = await h.sqs.send(new ReceiveMessageCommand({ QueueUrl: h.queue.url, WaitTimeSeconds: 2 }));
    const message = received.Messages?.[0];
    assert.ok(message, 'a job message is queued');
    return eventOf(message, receiveCount);
  }

  function eventOf(message: Message, receiveCount: number): SQSEvent {
    return {
      Records: [{
        messageId: message.MessageId!, receiptHandle: message.ReceiptHandle!, body: message.Body!,
        attributes: { ApproximateReceiveCount: String(receiveCount), SentTimestamp: '0', SenderId: 'test', ApproximateFirstReceiveTimestamp: '0' },
        messageAttributes: {}, md5OfBody: '', eventSource: 'aws:sqs', eventSourceARN: h.queue.arn, awsRegion: 'us-east-1',
      }],
    };
  }

  it('after the longest wait the run fails with api_key_never_set and its message is left to SQS (then the DLQ); a replay once the key is stored completes it', async () => {
    const keys = secretStore(PLACEHOLDER);
    const key: BackfillJobKey = { userId: freshUser(), provider: 'oura', resource: 'activity' };
    const runId = await h.historical(key, START, END);
    const event = await jobEvent();
    const expired = createBackfillHandler(h.dependencies(waitingDependencies(keys, { apiKeyMaxWaitMs: 0 })));
    assert.deepEqual(await expired(event, lambdaContext), { batchItemFailures: [{ itemIdentifier: event.Records[0]!.messageId }] });
    const failed = await h.statuses.get(key);
    assert.equal(failed?.state, 'failed');
    assert.equal(failed?.runId, runId);
    assert.match(failed?.lastError ?? '', /^api_key_never_set: .*HTTP 401.*replay the job from the backfill DLQ/);
    assert.deepEqual(await queueCounts(h.queue.url), { visible: 0, inFlight: 1, delayed: 0 }, 'nothing re-sent: the message itself stays with SQS');

    keys.store.value = API_KEY;
    const replay = await expired({ Records: event.Records.map((record) => ({ ...record, attributes: { ...record.attributes, ApproximateReceiveCount: '1' } })) }, lambdaContext);
    assert.deepEqual(replay.batchItemFailures, []);
    const completed = await h.statuses.get(key);
    assert.equal(completed?.state, 'completed');
    assert.deepEqual(new Set(await storedActivityIds(key.userId)), h.fake.identitiesFor(key.userId, key.provider, 'activity', START, END));
  });

  it('a workout stream job waits too, carrying the start of its wait in the re-sent message; past the wait it is left to SQS', async () => {
    const keys = secretStore(PLACEHOLDER);
    const userId = freshUser();
    const order = orderKeyOfDelivery(newMessageId(), Date.now());
    await h.requests.requestWorkoutStream({ userId, provider: 'strava', workoutId: 'workout-1', order });
    const event = await jobEvent();
    const handler = createBackfillHandler(h.dependencies(waitingDependencies(keys)));
    assert.deepEqual((await handler(event, lambdaContext)).batchItemFailures, [], 'acknowledged: it waits in a delayed message');
    await sleep(1_100);
    const resent = await h.sqs.send(new ReceiveMessageCommand({ QueueUrl: h.queue.url, WaitTimeSeconds: 2 }));
    const parked = resent.Messages?.[0];
    assert.ok(parked, 'the job was sent again');
    const body = JSON.parse(parked.Body!) as Record<string, unknown>;
    assert.equal(body.type, 'workout_stream');
    assert.equal(body.workoutId, 'workout-1');
    assert.ok(typeof body.waitingSince === 'string' && Date.parse(body.waitingSince) <= Date.now());

    const expired = createBackfillHandler(h.dependencies(waitingDependencies(keys, { apiKeyMaxWaitMs: 0 })));
    const again = eventOf(parked, 1);
    assert.deepEqual(await expired(again, lambdaContext), { batchItemFailures: [{ itemIdentifier: again.Records[0]!.messageId }] });
  });

  it('a 401 reads the key afresh once before concluding: a key stored since the last read is used at once', async () => {
    const keys = secretStore(PLACEHOLDER);
    const client = new VitalApiClient({ baseUrl: h.fake.url, apiKey: keys.source(), maxRequestsPerSecond: 1000 });
    const activity = resourceNamed('activity')!;
    const window = { startDate: '2026-03-01T00:00:00.000Z', endDate: '2026-03-03T00:00:00.000Z' };
    await assert.rejects(client.fetchSummaries(activity, 'u', 'oura', window), VitalApiKeyRejectedError);
    assert.deepEqual({ reads: keys.store.reads, forced: keys.store.forcedReads, requests: h.fake.counters.requests }, { reads: 2, forced: 1, requests: 1 },
      'one cached read, one forced read; the same key is not sent twice');
    keys.store.value = API_KEY;
    const fetched = await client.fetchSummaries(activity, 'u', 'oura', window);
    assert.ok(fetched.objects.length > 0, 'the cached placeholder was rejected, the fresh key read and used');
    assert.deepEqual({ forced: keys.store.forcedReads, requests: h.fake.counters.requests }, { forced: 2, requests: 3 });
    // The next request uses the key now cached, without another read.
    await client.fetchSummaries(activity, 'u', 'oura', window);
    assert.deepEqual({ reads: keys.store.reads, requests: h.fake.counters.requests }, { reads: 3, requests: 4 });

    const empty = secretStore('');
    await assert.rejects(new VitalApiClient({ baseUrl: h.fake.url, apiKey: empty.source() }).fetchSummaries(activity, 'u', 'oura', window), VitalApiKeyNotSetError);
    assert.equal(classifyBackfillError(new VitalApiKeyNotSetError('x')), 'waiting_for_api_key');
  });
});
