import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { createVerifierHandler, verifierFromEnvironment } from '../../functions/verifier';
import { createWorkerHandler, workerFromEnvironment } from '../../functions/worker';
import { backfillFromEnvironment, createBackfillHandler } from '../../functions/backfill';
import { exampleEvent, EXAMPLE_DEFAULTS, type ExampleEnvelope } from '../../functions/domain/example-events';
import { logger } from '../../functions/shared/observability';
import { toSqsRecord } from '../../local/event-source-mapping';
import { startEventBridge } from '../../local/eventbridge-stand-in';
import { startFakeVitalApi, type FakeVitalApi } from '../../local/fake-vital-api';
import { createLocalResources, type LocalResources } from '../../local/local-resources';
import { LOCAL_AWS, standInEnvironment, startSqsAndS3, type RunningStandIn } from '../../local/stand-ins';
import { svixHeaders } from '../support/signing';
import { captureProcessOutput, type CapturedOutput } from './capture-output';
import { webhookRequestEvent } from '../support/http-api-event';
import { startTestDynamoDb, uniquePrefix } from '../support/dynamodb-local';

/**
 * Log hygiene: drives every path of the three real handlers (wired by their own `*FromEnvironment`
 * functions, as in Lambda) against the stand-ins, with unmistakable sentinel values planted in every
 * payload field that could leak, in the signing secret, the Vital API key and the API's answers;
 * captures everything the process writes to stdout/stderr at DEBUG level; and asserts that none of
 * the sentinels, secrets or computed `svix-signature` values appears in it.
 */

const SENTINEL = {
  sampleValue: '987.6543',
  summaryNumber: '876.5439',
  apiValue: '765.4329',
  noteText: 'SNTL-note-felt-dizzy-7f3a',
  clientUserId: 'SNTL-client-user-4b1d',
  personName: 'SNTL-name-Jane-Roe',
  calendarDate: '1987-06-05',
  hypnogram: 'SNTL-hypnogram-AALLDDRRAA',
  externalUserId: 'SNTL-external-user-91c2',
  connectionText: 'SNTL-connection-error-text',
  deviceModel: 'SNTL-device-model-x1',
  unknownPayload: 'SNTL-unknown-event-payload',
  notJsonBody: 'SNTL-not-json-body',
  apiNote: 'SNTL-api-note-text',
  apiErrorBody: 'SNTL-api-error-body',
  apiMalformedBody: 'SNTL-api-malformed-body',
  apiKey: 'SNTL-vital-api-key-0d9e55',
} as const;

const SECRET_KEY_TEXT = 'SNTL-signing-secret-bytes-0123';
const SIGNING_SECRET = `whsec_${Buffer.from(SECRET_KEY_TEXT).toString('base64')}`;
const OTHER_SECRET = `whsec_${Buffer.from('SNTL-attacker-secret-bytes-99').toString('base64')}`;
const TEAM_ID = EXAMPLE_DEFAULTS.teamId;

const userId = (name: string): string => {
  const hex = createHash('sha256').update(name).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
};
const USERS = {
  ok: userId('log-hygiene-ok'),
  clientError: userId('log-hygiene-4xx'),
  retried: userId('log-hygiene-503-then-ok'),
  exhausted: userId('log-hygiene-503-always'),
  malformed: userId('log-hygiene-malformed'),
};

const num = Number;

/** Plants sentinels in every field of an example envelope that carries user data. */
function planted(envelope: ExampleEnvelope): Record<string, unknown> {
  const copy = structuredClone(envelope) as unknown as Record<string, unknown> & { data: Record<string, unknown> };
  copy.client_user_id = SENTINEL.clientUserId;
  const data = copy.data;
  if (Array.isArray(data.data)) {
    for (const sample of data.data as Record<string, unknown>[]) {
      if (typeof sample.value === 'string') sample.value = SENTINEL.noteText;
      else if ('value' in sample) sample.value = num(SENTINEL.sampleValue);
      if ('systolic' in sample) Object.assign(sample, { systolic: num(SENTINEL.sampleValue), diastolic: num(SENTINEL.sampleValue) });
      if (Array.isArray(sample.tags)) sample.tags = [SENTINEL.noteText];
    }
    return copy;
  }
  if (typeof data.id === 'string' && typeof data.updated_at === 'string') {
    // A summary: every measured number, the day, names, free text, and a hypnogram.
    for (const [key, value] of Object.entries(data)) if (typeof value === 'number' && key !== 'timezone_offset') data[key] = num(SENTINEL.summaryNumber);
    if ('calendar_date' in data) data.calendar_date = SENTINEL.calendarDate;
    for (const key of ['title', 'name']) if (key in data) data[key] = SENTINEL.personName;
    Object.assign(data, { hypnogram: SENTINEL.hypnogram, notes: SENTINEL.noteText });
    return copy;
  }
  if ('external_user_id' in data) {
    data.external_user_id = SENTINEL.externalUserId;
    (data.provider as Record<string, unknown>).name = SENTINEL.personName;
  }
  if ('error_type' in data) Object.assign(data, { message: SENTINEL.connectionText, error_details: SENTINEL.connectionText });
  if ('model' in data) Object.assign(data, { model: SENTINEL.deviceModel, manufacturer: SENTINEL.personName });
  if ('workout_id' in data) Object.assign(data, { message: SENTINEL.noteText, sport: { id: 1, name: SENTINEL.personName, slug: 'running' } });
  return copy;
}

function lambdaContext(name: string, remainingMs = 60_000): Context {
  const deadline = Date.now() + remainingMs;
  return {
    functionName: name,
    awsRequestId: `request-${name}-${Date.now()}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  } as unknown as Context;
}

/**
 * A proxy in front of the fake Vital API: rewrites its answers so that every value carries a
 * sentinel, and answers for some users with the failures a backfill must survive, their bodies
 * carrying sentinels too. The fake itself is untouched.
 */
async function startSentinelProxy(fake: FakeVitalApi): Promise<{ url: string; stop(): Promise<void> }> {
  const retriedCounts = new Map<string, number>();
  const rewrite = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rewrite);
    if (typeof value !== 'object' || value === null) return value;
    const object = { ...(value as Record<string, unknown>) };
    if (Array.isArray(object.time)) {
      // A workout stream: every series but the clock becomes the sentinel.
      for (const key of Object.keys(object)) if (key !== 'time' && Array.isArray(object[key])) object[key] = (object[key] as unknown[]).map(() => num(SENTINEL.apiValue));
      return object;
    }
    for (const [key, field] of Object.entries(object)) {
      if (['value', 'systolic', 'diastolic', 'calories', 'height'].includes(key)) object[key] = typeof field === 'string' ? SENTINEL.apiNote : num(SENTINEL.apiValue);
      else object[key] = rewrite(field);
    }
    if (typeof object.id === 'string' || 'timestamp' in object) object.note = SENTINEL.apiNote;
    return object;
  };
  const server: Server = createServer((request, response) => {
    const path = request.url ?? '/';
    const answer = (status: number, text: string, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'content-type': 'application/json', ...headers });
      response.end(text);
    };
    if (path.includes(USERS.clientError)) {
      const detail = [{ type: 'date_from_datetime_parsing', loc: ['query', 'start_date'], msg: 'Input should be a valid date', input: SENTINEL.apiErrorBody }];
      return answer(422, JSON.stringify({ detail }));
    }
    if (path.includes(USERS.exhausted)) return answer(503, JSON.stringify({ detail: SENTINEL.apiErrorBody }), { 'retry-after': '0' });
    if (path.includes(USERS.retried)) {
      const seen = retriedCounts.get(path) ?? 0;
      retriedCounts.set(path, seen + 1);
      if (seen < 2) return answer(seen === 0 ? 503 : 429, JSON.stringify({ detail: SENTINEL.apiErrorBody }), { 'retry-after': '0' });
    }
    if (path.includes(USERS.malformed)) return answer(200, `<html>${SENTINEL.apiMalformedBody}</html>`);
    fetch(fake.url + path, { headers: { 'x-vital-api-key': String(request.headers['x-vital-api-key'] ?? '') } })
      .then(async (upstream) => {
        const text = await upstream.text();
        let body = text;
        try {
          body = JSON.stringify(rewrite(JSON.parse(text)));
        } catch {
          // not JSON: passed on as it is
        }
        answer(upstream.status, body);
      })
      .catch(() => answer(502, '{}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

describe('log hygiene: no payload value, secret or signature reaches the logs on any handler path', () => {
  const standIns: RunningStandIn[] = [];
  let fake: FakeVitalApi;
  let proxy: { url: string; stop(): Promise<void> };
  let sqs: SQSClient;
  let resources: LocalResources;
  const savedEnv = { ...process.env };
  /** Every `svix-signature` value computed in this test (valid or not). */
  const signatures: string[] = [];
  let output: CapturedOutput | undefined;
  const results: Record<string, unknown> = {};
  let eventsFolder: string | undefined;

  before(async () => {
    const [dynamo, sqsAndS3] = await Promise.all([startTestDynamoDb(), startSqsAndS3()]);
    standIns.push(dynamo, sqsAndS3);
    const dynamodb = new DynamoDBClient({ endpoint: dynamo.endpoint, ...LOCAL_AWS });
    sqs = new SQSClient({ endpoint: sqsAndS3.endpoint, ...LOCAL_AWS });
    const s3 = new S3Client({ endpoint: sqsAndS3.endpoint, forcePathStyle: true, ...LOCAL_AWS });
    resources = await createLocalResources({ dynamodb, sqs, s3, sqsEndpoint: sqsAndS3.endpoint, namePrefix: uniquePrefix('hygiene-') });
    dynamodb.destroy();
    s3.destroy();
    // Change events go to a bus of their own; what they say is checked against their schemas elsewhere.
    eventsFolder = await mkdtemp(path.join(tmpdir(), 'hygiene-events-'));
    const eventBridge = await startEventBridge({ busName: resources.changeEventBus, eventsFile: path.join(eventsFolder, 'change-events.jsonl') });
    standIns.push(eventBridge);
    fake = await startFakeVitalApi({ apiKey: SENTINEL.apiKey });
    proxy = await startSentinelProxy(fake);
    // The handlers' own wiring reads these, exactly as in Lambda (local endpoints instead of AWS).
    Object.assign(process.env, {
      ...standInEnvironment({ dynamodb: dynamo.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint, eventBridge: eventBridge.endpoint }),
      ...resources.environment,
      VITAL_WEBHOOK_SECRET: SIGNING_SECRET,
      VITAL_API_KEY: SENTINEL.apiKey,
      VITAL_API_BASE_URL: proxy.url,
      VITAL_API_MAX_REQUESTS_PER_SECOND: '1000',
      BACKFILL_TIME_RESERVE_MS: '1000',
      EXPECTED_TEAM_ID: TEAM_ID,
    });
  });

  after(async () => {
    output?.restore();
    for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
    Object.assign(process.env, savedEnv);
    sqs?.destroy();
    await proxy?.stop();
    await fake?.stop();
    await Promise.all(standIns.map((standIn) => standIn.stop()));
    if (eventsFolder) await rm(eventsFolder, { recursive: true, force: true });
  });

  async function receiveAll(queueUrl: string): Promise<Message[]> {
    const messages: Message[] = [];
    for (;;) {
      const { Messages } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'], WaitTimeSeconds: 0 }),
      );
      if (!Messages?.length) return messages;
      messages.push(...Messages);
    }
  }

  it('drives every verifier, worker and backfill path with sentinels planted, logging at DEBUG', async () => {
    const previousLevel = logger.getLevelName();
    logger.setLogLevel('DEBUG');
    output = captureProcessOutput();
    try {
      const verifier = createVerifierHandler(verifierFromEnvironment());
      const worker = createWorkerHandler(workerFromEnvironment());
      const backfill = createBackfillHandler(backfillFromEnvironment());

      const sign = (body: string, secret = SIGNING_SECRET, at = new Date(), svixId?: string) => {
        const headers = svixHeaders(secret, body, at, svixId);
        signatures.push(...headers['svix-signature'].split(' ').map((entry) => entry.slice(entry.indexOf(',') + 1)));
        return headers;
      };
      const deliver = async (body: string, headers = sign(body)) => (await verifier(webhookRequestEvent(headers, body))).statusCode;
      const event = (type: string, options: Parameters<typeof exampleEvent>[1] = {}) => JSON.stringify(planted(exampleEvent(type, { userId: USERS.ok, ...options })));

      // --- verifier: accepted, claim-checked, every refusal, queue unavailable ---
      const statuses: Record<string, number | undefined> = {};
      const sleepBody = event('daily.data.sleep.created');
      const sleepHeaders = sign(sleepBody);
      statuses.accepted = await deliver(sleepBody, sleepHeaders);
      const bigBatch = event('daily.data.heartrate.created', { sampleCount: 12_000, sampleIntervalSeconds: 1, seed: 7 });
      assert.ok(Buffer.byteLength(bigBatch) > 1024 * 1024, 'the claim-checked batch exceeds one SQS message');
      statuses.claimChecked = await deliver(bigBatch);
      statuses.missingHeaders = (await verifier(webhookRequestEvent({}, sleepBody))).statusCode;
      statuses.badSignature = await deliver(sleepBody, sign(sleepBody, OTHER_SECRET));
      statuses.staleTimestamp = await deliver(sleepBody, sign(sleepBody, SIGNING_SECRET, new Date(Date.now() - 3_600_000)));
      statuses.notJson = await deliver(`${SENTINEL.notJsonBody} ${SENTINEL.noteText}`);
      statuses.noEventType = await deliver(JSON.stringify({ data: { note: SENTINEL.noteText }, client_user_id: SENTINEL.clientUserId }));
      const oversized = JSON.stringify({ ...planted(exampleEvent('daily.data.note.created')), padding: SENTINEL.noteText.repeat(300_000) });
      statuses.tooLarge = await deliver(oversized);
      process.env.EVENTS_QUEUE_URL = `${resources.queues.events.url}-missing`;
      const unavailable = createVerifierHandler(verifierFromEnvironment());
      process.env.EVENTS_QUEUE_URL = resources.queues.events.url;
      const unavailableBody = event('daily.data.steps.created');
      statuses.queueUnavailable = (await unavailable(webhookRequestEvent(sign(unavailableBody), unavailableBody))).statusCode;
      results.verifier = statuses;

      // --- worker, first wave: every kind of event ---
      const firstWave = [
        event('daily.data.activity.updated'),
        event('daily.data.heartrate.created'),
        event('daily.data.steps.created'),
        event('daily.data.calories_active.created'),
        event('daily.data.note.created'),
        event('daily.data.blood_pressure.created'),
        event('daily.data.workouts.created'),
        event('daily.data.workout_stream.created'),
        event('provider.connection.created'),
        event('provider.connection.error'),
        event('provider.device.created'),
        event('historical.data.sleep.created'),
        event('historical.data.heartrate.created'),
        event('historical.data.workouts.created'),
        ...Object.entries(USERS)
          .filter(([name]) => name !== 'ok')
          .map(([, user]) => event('historical.data.sleep.created', { userId: user })),
        JSON.stringify({ event_type: 'daily.data.teleportation.created', data: { value: SENTINEL.unknownPayload }, user_id: USERS.ok, client_user_id: SENTINEL.clientUserId, team_id: TEAM_ID }),
        JSON.stringify({ event_type: 'labtest.order.created', data: { result: SENTINEL.unknownPayload, patient: SENTINEL.personName }, user_id: USERS.ok, client_user_id: SENTINEL.clientUserId, team_id: TEAM_ID }),
        JSON.stringify({ ...planted(exampleEvent('daily.data.sleep.created', { seed: 3 })), team_id: '00000000-0000-4000-a000-000000000000' }),
        JSON.stringify({ ...planted(exampleEvent('daily.data.sleep.created', { seed: 4 })), data: { notes: SENTINEL.noteText, calendar_date: SENTINEL.calendarDate } }),
      ];
      for (const body of firstWave) assert.equal(await deliver(body), 202);
      const runWorker = async (messages: Message[], extra: SQSRecord[] = []) => {
        const records = [...messages.map((message) => toSqsRecord(message, resources.queues.events.arn)), ...extra];
        const failures: string[] = [];
        for (let index = 0; index < records.length; index += 10) {
          const response = (await worker({ Records: records.slice(index, index + 10) } as SQSEvent, lambdaContext('worker'))) as SQSBatchResponse;
          failures.push(...response.batchItemFailures.map((failure) => failure.itemIdentifier));
        }
        return { records: records.length, failures: failures.length };
      };
      const notAQueuedEvent = toSqsRecord({ MessageId: 'not-queued', ReceiptHandle: 'r', Body: JSON.stringify({ note: SENTINEL.noteText }) }, resources.queues.events.arn);
      results.firstWave = await runWorker(await receiveAll(resources.queues.events.url), [notAQueuedEvent]);

      // --- worker, second wave: a duplicate delivery (a Svix retry) and an older version ---
      assert.equal(await deliver(sleepBody, sign(sleepBody, SIGNING_SECRET, new Date(), sleepHeaders['svix-id'])), 202);
      assert.equal(await deliver(event('daily.data.activity.created')), 202);
      results.secondWave = await runWorker(await receiveAll(resources.queues.events.url));

      // --- backfill: every job the worker queued, until the queue is empty ---
      const outcomes: { user: string; type: string; failures: number }[] = [];
      for (let round = 0; round < 20; round += 1) {
        const messages = await receiveAll(resources.queues.backfill.url);
        if (messages.length === 0) break;
        for (const message of messages) {
          const record = toSqsRecord(message, resources.queues.backfill.arn);
          const job = JSON.parse(record.body) as { userId: string; type: string };
          // The always-503 job fails once, then comes to its last receive: the handler marks the run failed and lets it go.
          const receives = job.userId === USERS.exhausted ? ['1', '5'] : [record.attributes.ApproximateReceiveCount];
          for (const receive of receives) {
            record.attributes.ApproximateReceiveCount = receive;
            let failures: number;
            try {
              failures = ((await backfill({ Records: [record] }, lambdaContext('backfill'))) as SQSBatchResponse).batchItemFailures.length;
            } catch {
              // A batch of one whose record failed: Powertools throws, the invocation fails, SQS redelivers.
              failures = 1;
            }
            outcomes.push({ user: job.userId, type: job.type, failures });
          }
        }
      }
      results.backfill = outcomes;
    } finally {
      output.restore();
      logger.setLogLevel(previousLevel as Parameters<typeof logger.setLogLevel>[0]);
      // LOG_HYGIENE_DUMP=<file> keeps what was captured, to read what the handlers actually log.
      if (process.env.LOG_HYGIENE_DUMP) writeFileSync(process.env.LOG_HYGIENE_DUMP, output.text());
    }

    // Each path was really taken.
    assert.deepEqual(results.verifier, {
      accepted: 202,
      claimChecked: 202,
      missingHeaders: 401,
      badSignature: 401,
      staleTimestamp: 401,
      notJson: 400,
      noEventType: 400,
      tooLarge: 413,
      queueUnavailable: 503,
    });
    // 22 deliveries of the wave, the accepted and the claim-checked one, and one message that is no queued
    // event; the malformed envelope and that message fail (to be retried, then kept in the DLQ).
    assert.deepEqual(results.firstWave, { records: 25, failures: 2 });
    assert.deepEqual(results.secondWave, { records: 2, failures: 0 });
    const backfills = results.backfill as { user: string; type: string; failures: number }[];
    const failuresOf = (user: string) => backfills.filter((outcome) => outcome.user === user).map((outcome) => outcome.failures);
    assert.ok(backfills.some((outcome) => outcome.type === 'workout_stream'), 'a workout stream job ran');
    assert.ok(failuresOf(USERS.ok).length >= 4, 'sleep, heartrate, workouts and the stream ran for the ordinary user');
    assert.deepEqual(failuresOf(USERS.clientError), [0], '4xx: failed permanently, message consumed');
    assert.deepEqual(failuresOf(USERS.retried), [0], '503/429 then success within the invocation');
    assert.deepEqual(failuresOf(USERS.exhausted), [1, 1], 'a transient failure, then the last receive: the run is marked failed and the message fails');
    assert.deepEqual(failuresOf(USERS.malformed), [0], 'a malformed answer fails the run permanently');
  });

  it('captured a non-trivial amount of log output, from every handler and every level', () => {
    assert.ok(output, 'the drive ran');
    const lines = output.lines();
    assert.ok(lines.length >= 60, `expected at least 60 log lines, captured ${lines.length}`);
    const text = output.text();
    for (const message of [
      'Delivery enqueued',
      'Delivery refused',
      'Could not enqueue a verified delivery',
      'Delivery processed',
      'Signed body breaks its schema',
      'Queue message is not a queued event',
      'Backfill page stored',
      'Backfill invocation done',
      'Vital API retry',
      'Backfill failed',
      'Backfill step failed',
      'Backfill job goes to the DLQ',
    ]) {
      assert.ok(text.includes(message), `the logs contain "${message}"`);
    }
    assert.ok(text.includes('"level":"DEBUG"'), 'DEBUG lines were written');
  });

  it('no sentinel, secret or computed signature appears anywhere in what the process wrote, change events included', () => {
    assert.ok(output, 'the drive ran');
    assert.ok(signatures.length >= 10, 'signatures were computed');
    const forbidden: [string, string][] = [
      ...Object.entries(SENTINEL),
      ['signingSecret', SIGNING_SECRET],
      ['signingSecretKey', SIGNING_SECRET.slice('whsec_'.length)],
      ['signingSecretText', SECRET_KEY_TEXT],
      ['otherSecret', OTHER_SECRET.slice('whsec_'.length)],
      ['sentinelPrefix', 'SNTL-'],
      ...signatures.map((signature, index): [string, string] => [`svix-signature #${index}`, signature]),
    ];
    const leaks: string[] = [];
    const check = (lines: readonly string[], checked: readonly [string, string][]) => {
      for (const line of lines) {
        for (const [name, value] of checked) {
          if (line.includes(value)) leaks.push(`${name} (${value.slice(0, 40)}) in: ${line.slice(0, 300)}`);
        }
      }
    };
    check(output.lines(), forbidden);
    // The change events the handlers published name records, never hold them. Their contract
    // (docs/events/) does carry who and when: the client user id and the time range touched (here
    // the sentinel calendar date), so those two, and the prefix of the one, are allowed there only.
    const published = readFileSync(path.join(eventsFolder!, 'change-events.jsonl'), 'utf8').split('\n').filter(Boolean);
    assert.ok(published.length >= 3, 'change events were published');
    const namedByContract = new Set(['clientUserId', 'calendarDate', 'sentinelPrefix']);
    check(published, forbidden.filter(([name]) => !namedByContract.has(name)));
    assert.deepEqual(leaks, [], `leaked into the logs or change events:\n${leaks.join('\n')}`);
  });
});
