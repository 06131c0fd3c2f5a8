/**
 * Cost model: what one webhook event and one user-month cost at AWS list prices, from the requests
 * and item sizes the pipeline actually makes. Runs the REAL handlers (wired by their own
 * `*FromEnvironment`, as in Lambda) against the local stand-ins, behind counting proxies that see
 * every request the handlers send:
 *
 *  - DynamoDB Local: each request gets `ReturnConsumedCapacity: TOTAL` added (the stores do not ask
 *    for it), and the units DynamoDB Local reports are summed (reads and writes apart).
 *  - fauxqs (SQS and S3 on one endpoint): requests by action; SQS payload in 64 KB chunks.
 *  - the EventBridge stand-in: the change events the handlers publish, as PutEvents bills them
 *    (entries in 64 KB chunks), and the calls they take.
 *  - stdout/stderr at INFO level: the bytes CloudWatch Logs would ingest from the functions (EMF
 *    metric lines included), plus the Lambda platform lines, which are estimated.
 *  - handler wall time per invocation: a LOCAL PROXY for Lambda duration (loopback stand-ins, no
 *    network latency, a warm process), not a Lambda measurement.
 *
 * The SQS event source mapping's own ReceiveMessage/DeleteMessageBatch calls are not run through the
 * proxy: they are modelled (one receive and one delete per batch), and its idle long polling is a
 * fixed cost. Run alone: `tsx bench/cost-model.ts [--json out.json]`.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { DynamoDBClient, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { createVerifierHandler, verifierFromEnvironment } from '../functions/verifier';
import { createWorkerHandler, workerFromEnvironment } from '../functions/worker';
import { backfillFromEnvironment, createBackfillHandler } from '../functions/backfill';
import { exampleEvent } from '../functions/domain/example-events';
import { logger } from '../functions/shared/observability';
import { toSqsRecord } from '../local/event-source-mapping';
import { startFakeVitalApi } from '../local/fake-vital-api';
import { createLocalResources } from '../local/local-resources';
import { LOCAL_AWS, startDynamoDbLocal, startSqsAndS3 } from '../local/stand-ins';
import { captureProcessOutput } from '../test/observability/capture-output';
import { svixHeaders } from '../test/support/signing';
import { webhookRequestEvent } from '../test/support/http-api-event';
import { describePublished, startBenchEventBridge, type PublishedChangeEvents } from './change-events';

// ---------------------------------------------------------------------------------------------
// Counting proxies
// ---------------------------------------------------------------------------------------------

interface Counters {
  dynamoRequests: Map<string, number>;
  /** Units reported, by action. */
  unitsByAction: Map<string, number>;
  writeUnits: number;
  readUnits: number;
  /** Writes refused by their condition: DynamoDB charges them, DynamoDB Local reports no units (1 counted each). */
  conditionalFailures: number;
  sqsRequests: Map<string, number>;
  /** SendMessage payload in 64 KB chunks: what SQS bills as requests. */
  sqsBilledSends: number;
  s3Requests: Map<string, number>;
  s3PutBytes: number;
}

const newCounters = (): Counters => ({
  dynamoRequests: new Map(),
  unitsByAction: new Map(),
  writeUnits: 0,
  readUnits: 0,
  conditionalFailures: 0,
  sqsRequests: new Map(),
  sqsBilledSends: 0,
  s3Requests: new Map(),
  s3PutBytes: 0,
});

let counters = newCounters();
const bump = (map: Map<string, number>, key: string, by = 1) => map.set(key, (map.get(key) ?? 0) + by);

const READ_ACTIONS = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem', 'TransactGetItems']);
const CAPACITY_ACTIONS = new Set([...READ_ACTIONS, 'PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);

async function readBody(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** An HTTP proxy to `target` that lets `inspect` see (and for DynamoDB, amend) each exchange. */
async function startProxy(
  target: string,
  inspect: {
    request(request: IncomingMessage, body: Buffer): Buffer;
    response(request: IncomingMessage, requestBody: Buffer, status: number, body: Buffer): void;
  },
): Promise<{ url: string; stop(): Promise<void> }> {
  const targetUrl = new URL(target);
  const server: Server = createServer(async (request, response) => {
    const original = await readBody(request);
    const body = inspect.request(request, original);
    const headers = { ...request.headers, host: targetUrl.host, 'content-length': String(body.byteLength) };
    const upstream = httpRequest(
      { hostname: targetUrl.hostname, port: targetUrl.port, path: request.url, method: request.method, headers },
      async (answer) => {
        const answerBody = await readBody(answer);
        inspect.response(request, body, answer.statusCode ?? 0, answerBody);
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        response.end(answerBody);
      },
    );
    upstream.on('error', () => {
      response.writeHead(502);
      response.end();
    });
    upstream.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const actionOf = (request: IncomingMessage): string => String(request.headers['x-amz-target'] ?? '').split('.').pop() ?? '';

const dynamoInspector = {
  request(request: IncomingMessage, body: Buffer): Buffer {
    const action = actionOf(request);
    bump(counters.dynamoRequests, action);
    if (!CAPACITY_ACTIONS.has(action)) return body;
    const input = JSON.parse(body.toString('utf8')) as { ReturnConsumedCapacity?: string };
    if (input.ReturnConsumedCapacity && input.ReturnConsumedCapacity !== 'NONE') return body;
    // DynamoDB Local does not check SigV4 signatures, so the amended body is accepted.
    return Buffer.from(JSON.stringify({ ...input, ReturnConsumedCapacity: 'TOTAL' }));
  },
  response(request: IncomingMessage, _requestBody: Buffer, status: number, body: Buffer): void {
    const action = actionOf(request);
    const text = body.toString('utf8');
    if (status >= 400) {
      if (text.includes('ConditionalCheckFailed') || text.includes('TransactionCanceled')) counters.conditionalFailures += 1;
      return;
    }
    if (!CAPACITY_ACTIONS.has(action)) return;
    const consumed = (JSON.parse(text) as { ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[] }).ConsumedCapacity;
    const units = [consumed ?? []].flat().reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0);
    bump(counters.unitsByAction, action, units);
    if (consumed === undefined) bump(counters.unitsByAction, `${action}:unreported`);
    if (READ_ACTIONS.has(action)) counters.readUnits += units;
    else counters.writeUnits += units;
  },
};

const CHUNK = 64 * 1024;

const sqsAndS3Inspector = {
  request(request: IncomingMessage, body: Buffer): Buffer {
    const target = actionOf(request);
    if (target) {
      bump(counters.sqsRequests, target);
      if (target === 'SendMessage') counters.sqsBilledSends += Math.max(1, Math.ceil(body.byteLength / CHUNK));
      if (target === 'SendMessageBatch') counters.sqsBilledSends += Math.max(1, Math.ceil(body.byteLength / CHUNK));
    } else {
      bump(counters.s3Requests, `${request.method}`);
      if (request.method === 'PUT') counters.s3PutBytes += body.byteLength;
    }
    return body;
  },
  response(): void {},
};

// ---------------------------------------------------------------------------------------------
// The measured run
// ---------------------------------------------------------------------------------------------

const SIGNING_SECRET = `whsec_${Buffer.from('cost-model-signing-secret-key!!').toString('base64')}`;
const API_KEY = 'cost-model-api-key';
const USER = '3f1c9a52-7b0e-4d8a-9c61-2e5b7f40a1d3';
const DAY = '2024-05-14';
const DAY_MS = Date.parse(`${DAY}T00:00:00Z`);
/** Backfill window measured (days); the per-day figures are scaled to BACKFILL_DAYS_ASSUMED. */
const BACKFILL_DAYS_MEASURED = 3;
const HEART_RATE_EVERY_SECONDS = 5;

interface PhaseResult {
  name: string;
  events: number;
  invocations: { verifier: number; worker: number; backfill: number };
  durationMs: { verifier: number; worker: number; backfill: number };
  logBytes: { verifier: number; worker: number; backfill: number };
  logLines: number;
  emfLines: number;
  counters: Counters;
  apiRequests: number;
  /** Messages the event source mapping would receive and delete (events + backfill jobs). */
  esm: { eventsMessages: number; backfillMessages: number };
  changeEvents: PublishedChangeEvents;
  /** What one verifier and one worker invocation wrote, to read line sizes. */
  sampleLog: string[];
}

function context(name: string, timeoutSeconds: number): Context {
  const deadline = Date.now() + timeoutSeconds * 1000;
  return {
    functionName: name,
    awsRequestId: `${name}-${performance.now()}`,
    memoryLimitInMB: '512',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  } as unknown as Context;
}

/** The events of one user-day, by kind. */
function dayOfEvents(): Record<string, string[]> {
  const at = (minute: number) => new Date(DAY_MS + minute * 60_000);
  const batches = (type: string, sampleCount: number, sampleIntervalSeconds: number) =>
    Array.from({ length: 288 }, (_, index) =>
      JSON.stringify(exampleEvent(type, { userId: USER, at: at(index * 5), seed: index, sampleCount, sampleIntervalSeconds })),
    );
  const summary = (resource: string) => [
    JSON.stringify(exampleEvent(`daily.data.${resource}.created`, { userId: USER, at: at(0) })),
    JSON.stringify(exampleEvent(`daily.data.${resource}.updated`, { userId: USER, at: at(0), updatedAt: at(600) })),
    JSON.stringify(exampleEvent(`daily.data.${resource}.updated`, { userId: USER, at: at(0), updatedAt: at(1200) })),
  ];
  return {
    'heartrate (5-min batches, 1 sample / 5 s)': batches('daily.data.heartrate.created', 300 / HEART_RATE_EVERY_SECONDS, HEART_RATE_EVERY_SECONDS),
    'steps (5-min batches, 1 / min)': batches('daily.data.steps.created', 5, 60),
    'calories_active (5-min batches, 1 / min)': batches('daily.data.calories_active.created', 5, 60),
    'daily summaries (sleep, activity: created + 2 updates)': [...summary('sleep'), ...summary('activity')],
  };
}

function historicalEvents(): string[] {
  const end = new Date(DAY_MS);
  const start = new Date(DAY_MS - BACKFILL_DAYS_MEASURED * 86_400_000);
  return ['heartrate', 'sleep', 'activity'].map((resource) => {
    const event = exampleEvent(`historical.data.${resource}.created`, { userId: USER, at: end });
    return JSON.stringify({ ...event, data: { ...event.data, start_date: start.toISOString(), end_date: end.toISOString() } });
  });
}

async function main(): Promise<void> {
  const jsonOut = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : undefined;
  const [dynamo, sqsAndS3, changeEvents] = await Promise.all([startDynamoDbLocal(), startSqsAndS3(), startBenchEventBridge()]);
  const fake = await startFakeVitalApi({ apiKey: API_KEY, samplesPerDay: 86_400 / HEART_RATE_EVERY_SECONDS, pageSize: 100 });
  const dynamoProxy = await startProxy(dynamo.endpoint, dynamoInspector);
  const fauxqsProxy = await startProxy(sqsAndS3.endpoint, sqsAndS3Inspector);
  const direct = {
    dynamodb: new DynamoDBClient({ endpoint: dynamo.endpoint, ...LOCAL_AWS }),
    sqs: new SQSClient({ endpoint: sqsAndS3.endpoint, ...LOCAL_AWS }),
    s3: new S3Client({ endpoint: sqsAndS3.endpoint, forcePathStyle: true, ...LOCAL_AWS }),
  };
  const resources = await createLocalResources({ ...direct, sqsEndpoint: sqsAndS3.endpoint, namePrefix: 'cost-' });
  Object.assign(process.env, {
    AWS_REGION: LOCAL_AWS.region,
    AWS_ACCESS_KEY_ID: LOCAL_AWS.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_AWS.credentials.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: dynamoProxy.url,
    AWS_ENDPOINT_URL_SQS: fauxqsProxy.url,
    AWS_ENDPOINT_URL_S3: fauxqsProxy.url,
    // The SQS client sends to the host of the queue URL, so the handlers get URLs on the proxy.
    ...Object.fromEntries(Object.entries(resources.environment).map(([name, value]) => [name, value.replace(sqsAndS3.endpoint.replace(/\/$/, ''), fauxqsProxy.url)])),
    VITAL_WEBHOOK_SECRET: SIGNING_SECRET,
    VITAL_API_KEY: API_KEY,
    VITAL_API_BASE_URL: fake.url,
    VITAL_API_MAX_REQUESTS_PER_SECOND: '1000',
    ...changeEvents.environment,
  });
  delete process.env.POWERTOOLS_METRICS_DISABLED;
  const verifier = createVerifierHandler(verifierFromEnvironment());
  const worker = createWorkerHandler(workerFromEnvironment());
  const backfill = createBackfillHandler(backfillFromEnvironment());
  logger.setLogLevel('INFO');

  const drain = async (queueUrl: string): Promise<Message[]> => {
    const all: Message[] = [];
    for (;;) {
      const { Messages } = await direct.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'] }),
      );
      if (!Messages?.length) return all;
      all.push(...Messages);
      await direct.sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle! })) }),
      );
    }
  };

  async function phase(name: string, bodies: string[]): Promise<PhaseResult> {
    counters = newCounters();
    fake.resetCounters();
    changeEvents.reset();
    const result: PhaseResult = {
      name,
      events: bodies.length,
      invocations: { verifier: 0, worker: 0, backfill: 0 },
      durationMs: { verifier: 0, worker: 0, backfill: 0 },
      logBytes: { verifier: 0, worker: 0, backfill: 0 },
      logLines: 0,
      emfLines: 0,
      counters,
      apiRequests: 0,
      esm: { eventsMessages: 0, backfillMessages: 0 },
      changeEvents: changeEvents.published(),
      sampleLog: [],
    };
    const timed = async <T>(fn: 'verifier' | 'worker' | 'backfill', run: () => Promise<T>): Promise<T> => {
      const output = captureProcessOutput();
      const started = performance.now();
      try {
        return await run();
      } finally {
        result.durationMs[fn] += performance.now() - started;
        result.invocations[fn] += 1;
        output.restore();
        result.logBytes[fn] += output.bytes();
        result.logLines += output.lines().length;
        result.emfLines += output.lines().filter((line) => line.includes('"_aws"')).length;
        if (result.invocations[fn] === 1) result.sampleLog.push(...output.lines());
      }
    };
    for (const body of bodies) {
      const response = await timed('verifier', () => verifier(webhookRequestEvent(svixHeaders(SIGNING_SECRET, body), body)));
      if (response.statusCode !== 202) throw new Error(`verifier answered ${response.statusCode} in ${name}`);
    }
    // Worker: one event per invocation, as a single user's events arrive (minutes apart).
    const events = await drain(resources.queues.events.url);
    result.esm.eventsMessages = events.length;
    for (const message of events) {
      const record = toSqsRecord(message, resources.queues.events.arn);
      const response = (await timed('worker', () => worker({ Records: [record] } as SQSEvent, context('worker', 30)))) as SQSBatchResponse;
      if (response.batchItemFailures.length) throw new Error(`worker failed a record in ${name}`);
    }
    // Backfill: every job, continuations included, until the queue is empty.
    for (let round = 0; round < 1000; round += 1) {
      const jobs = await drain(resources.queues.backfill.url);
      if (jobs.length === 0) break;
      result.esm.backfillMessages += jobs.length;
      for (const message of jobs) {
        const record = toSqsRecord(message, resources.queues.backfill.arn);
        await timed('backfill', () => backfill({ Records: [record] }, context('backfill', 120)));
      }
    }
    result.apiRequests = fake.counters.requests;
    result.changeEvents = changeEvents.published();
    return result;
  }

  const phases: PhaseResult[] = [];
  for (const [name, bodies] of Object.entries(dayOfEvents())) phases.push(await phase(name, bodies));
  phases.push(await phase(`backfill at connection (heartrate 1/5 s, sleep, activity; ${BACKFILL_DAYS_MEASURED} days measured)`, historicalEvents()));

  // Storage: bytes of what is kept, by table (DynamoDB's item size ≈ attribute names + values).
  const storedBytes: Record<string, { items: number; bytes: number }> = {};
  for (const [name, table] of Object.entries(resources.tables)) {
    let startKey: Record<string, AttributeValue> | undefined;
    const total = { items: 0, bytes: 0 };
    do {
      const page = await direct.dynamodb.send(new ScanCommand({ TableName: table, ExclusiveStartKey: startKey }));
      for (const item of page.Items ?? []) {
        total.items += 1;
        total.bytes += itemBytes(item);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    storedBytes[name] = total;
  }

  const report = { phases: phases.map(serialisable), storedBytes, backfillDaysMeasured: BACKFILL_DAYS_MEASURED };
  process.stdout.write(`${renderMeasurements(report)}\n`);
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(report, null, 2));

  for (const client of Object.values(direct)) client.destroy();
  await Promise.all([dynamoProxy.stop(), fauxqsProxy.stop(), fake.stop(), changeEvents.stop()]);
  await Promise.all([dynamo.stop(), sqsAndS3.stop()]);
}

/** DynamoDB's item size: UTF-8 names and values, numbers ~ their digits, binary its bytes (+ small overheads ignored). */
function itemBytes(item: Record<string, AttributeValue>): number {
  const valueBytes = (value: AttributeValue): number => {
    if (value.S !== undefined) return Buffer.byteLength(value.S);
    if (value.N !== undefined) return Math.ceil(value.N.length / 2) + 1;
    if (value.B !== undefined) return value.B.byteLength;
    if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
    if (value.L) return 3 + value.L.reduce((sum, entry) => sum + 1 + valueBytes(entry), 0);
    if (value.M) return 3 + Object.entries(value.M).reduce((sum, [key, entry]) => sum + 1 + Buffer.byteLength(key) + valueBytes(entry), 0);
    if (value.SS) return value.SS.reduce((sum, entry) => sum + Buffer.byteLength(entry), 0);
    return 0;
  };
  return Object.entries(item).reduce((sum, [key, value]) => sum + Buffer.byteLength(key) + valueBytes(value), 0);
}

function serialisable(result: PhaseResult) {
  const { counters: c, ...rest } = result;
  return {
    ...rest,
    counters: {
      dynamoRequests: Object.fromEntries(c.dynamoRequests),
      unitsByAction: Object.fromEntries(c.unitsByAction),
      writeUnits: c.writeUnits,
      readUnits: c.readUnits,
      conditionalFailures: c.conditionalFailures,
      sqsRequests: Object.fromEntries(c.sqsRequests),
      sqsBilledSends: c.sqsBilledSends,
      s3Requests: Object.fromEntries(c.s3Requests),
      s3PutBytes: c.s3PutBytes,
    },
  };
}

type Report = { phases: ReturnType<typeof serialisable>[]; storedBytes: Record<string, { items: number; bytes: number }>; backfillDaysMeasured: number };

const fmt = (value: number, digits = 2) => (Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(digits));

function renderMeasurements(report: Report): string {
  const lines = [
    '## Measured per event (one event per invocation; local stand-ins)',
    '',
    '| phase | events | DDB requests / event | WCU / event | RCU / event | cond. failures / event | SQS sends (64 KB chunks) / event | S3 requests / event | PutEvents entries (64 KB chunks) / event | verifier ms | worker ms | backfill ms (total) | log bytes / event (verifier + worker + backfill) | EMF lines / event | Vital API requests |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const phase of report.phases) {
    const c = phase.counters;
    const per = (value: number) => fmt(value / phase.events);
    const ddb = Object.values(c.dynamoRequests).reduce((sum, count) => sum + count, 0);
    const s3 = Object.values(c.s3Requests).reduce((sum, count) => sum + count, 0);
    lines.push(
      `| ${phase.name} | ${phase.events} | ${per(ddb)} | ${per(c.writeUnits)} | ${per(c.readUnits)} | ${per(c.conditionalFailures)} | ${per(c.sqsBilledSends)} | ${per(s3)} | ${per(phase.changeEvents.billed)} | ` +
        `${fmt(phase.durationMs.verifier / Math.max(1, phase.invocations.verifier), 1)} | ${fmt(phase.durationMs.worker / Math.max(1, phase.invocations.worker), 1)} | ` +
        `${fmt(phase.durationMs.backfill, 0)} | ${per(phase.logBytes.verifier + phase.logBytes.worker + phase.logBytes.backfill)} | ${per(phase.emfLines)} | ${phase.apiRequests} |`,
    );
  }
  lines.push('', 'DynamoDB requests by action:', '');
  for (const phase of report.phases) lines.push(`- ${phase.name}: ${JSON.stringify(phase.counters.dynamoRequests)}, units ${JSON.stringify(phase.counters.unitsByAction)}; SQS ${JSON.stringify(phase.counters.sqsRequests)}; S3 ${JSON.stringify(phase.counters.s3Requests)}; backfill invocations ${phase.invocations.backfill}, job messages ${phase.esm.backfillMessages}`);
  lines.push('', 'Change events published (PutEvents, billed per entry in 64 KB chunks):', '');
  for (const phase of report.phases) {
    const published = phase.changeEvents;
    lines.push(
      `- ${phase.name}: ${published.entries} entries, ${published.billed} billed, in ${published.calls} calls (${describePublished(published)}); ` +
        `largest ${published.largest} bytes${phase.apiRequests ? `; per Vital API request ${fmt(published.entries / phase.apiRequests)}` : ''}`,
    );
  }
  lines.push('', 'Stored after the run (one user-day + the backfill):', '');
  for (const [table, { items, bytes }] of Object.entries(report.storedBytes)) lines.push(`- ${table}: ${items} items, ${bytes} bytes`);
  return lines.join('\n');
}

await main();
