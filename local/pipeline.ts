import type { SQSRecord } from 'aws-lambda';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ATTRIBUTE } from '../functions/domain/queued-event';
import { SERVICE_NAME } from '../functions/shared/service';
import { backfillTimeReserveMs, VERIFIER_TIMEOUT_SECONDS, WEBHOOK_ROUTE } from '../functions/shared/resources';
import { devWebhookSecret, type LocalPipelineConfig } from './config';
import { acquireDataFolderLock } from './data-folder-lock';
import { createServer } from 'node:net';
import { apiKeyRetryDelaySeconds } from '../functions/domain/backfill-failure';
import { routePowertoolsLogs, type Output } from './console-output';
import { SqsEventSourceMapping, type MessageOutcome, type SqsFunction } from './event-source-mapping';
import { startHttpApi, type HandledRequest, type HttpFunction, type RunningHttpApi } from './http-api';
import { createLocalResources, type LocalResources, type QueueName } from './local-resources';
import { removePipelineState, writePipelineState, type PipelineState } from './pipeline-state';
import { LOCAL_AWS, standInClients, standInEnvironment, startDynamoDb, startSqsAndS3, type RunningDynamoDb, type RunningStandIn } from './stand-ins';

/**
 * The whole pipeline on one machine: the stand-ins, the resources the CDK stack deploys (from the
 * same definitions), the verifier behind a local HTTP API, and each consumer behind a local SQS event
 * source mapping. Handlers run through their real `handler` exports, configured by the environment
 * variables the stack sets, so a local run exercises the wiring that runs in AWS.
 */

/** A function consuming one of the pipeline's queues; adding a consumer is one line in `CONSUMERS`. */
interface ConsumerDefinition {
  readonly queue: QueueName;
  readonly name: string;
  /** Imports the handler module; called only once the environment is set, as Lambda's cold start would. */
  readonly load: () => Promise<{ readonly handler: SqsFunction['handler'] }>;
}

const CONSUMERS: readonly ConsumerDefinition[] = [
  { queue: 'events', name: 'worker', load: () => import('../functions/worker') },
  { queue: 'backfill', name: 'backfill', load: () => import('../functions/backfill') },
];

export interface RunningPipeline {
  readonly webhookUrl: string;
  readonly state: PipelineState;
  /** Stops taking requests, lets invocations in flight finish, then stops the stand-ins. */
  stop(): Promise<void>;
}

/** Undoes the steps of a start in reverse order; used for a clean stop and after a failed start. */
class Teardown {
  private readonly steps: (() => Promise<void>)[] = [];
  add(step: () => Promise<void>): void {
    this.steps.unshift(step);
  }
  async run(): Promise<void> {
    for (const step of this.steps.splice(0)) await step().catch(() => undefined);
  }
}

/** The handler environment: stand-in endpoints, local credentials, resource names and local settings. */
function handlerEnvironment(
  resources: LocalResources,
  endpoints: PipelineState['endpoints'],
  webhookSecret: string,
  timeScale: number,
): Record<string, string> {
  return {
    ...standInEnvironment(endpoints),
    ...resources.environment,
    // The backfill's time reserve is a share of its timeout, scaled with it.
    BACKFILL_TIME_RESERVE_MS: String(Math.round(backfillTimeReserveMs(timeScale))),
    // A backfill waiting for the API key tries again sooner with --fast-retries.
    BACKFILL_API_KEY_RETRY_SECONDS: String(apiKeyRetryDelaySeconds(timeScale)),
    // The stack gives the verifier SIGNING_SECRET_ID (Secrets Manager); locally it reads the secret itself.
    VITAL_WEBHOOK_SECRET: webhookSecret,
    // Powertools' dev mode logs through the global console, which the local output reformats.
    POWERTOOLS_DEV: 'true',
    POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'WARN',
    POWERTOOLS_TRACE_ENABLED: 'false',
  };
}

function attribute(record: SQSRecord, name: string): string | undefined {
  return record.messageAttributes[name]?.stringValue;
}

function describeOutcome(outcome: MessageOutcome, visibilityTimeoutSeconds: number): string {
  if (outcome.result === 'processed') return 'processed';
  const reason = outcome.batchError ? `${outcome.batchError.name}: ${outcome.batchError.message}; ` : '';
  const attempt = `attempt ${outcome.receiveCount} of ${outcome.maxReceiveCount}`;
  return outcome.receiveCount >= outcome.maxReceiveCount
    ? `failed (${reason}${attempt}: moves to the dead-letter queue)`
    : `failed (${reason}${attempt}: retried in ${visibilityTimeoutSeconds} s)`;
}

/** The one line a webhook request gets: its svix-id, its event type once verified, and the answer. */
function describeRequest(request: HandledRequest): { id?: string; eventType?: string; text: string; level: 'INFO' | 'WARN' } {
  const ok = request.statusCode >= 200 && request.statusCode < 300;
  let eventType: string | undefined;
  let reason: string | undefined;
  try {
    if (ok) eventType = (JSON.parse(request.requestBody.toString('utf8')) as { event_type?: string }).event_type;
    const answer = JSON.parse(request.responseBody) as { status?: string; error?: string; message?: string };
    reason = answer.status ?? answer.error ?? answer.message;
  } catch {
    // A body that is not JSON has no event type to show; the status code says enough.
  }
  return {
    ...(request.headers['svix-id'] ? { id: request.headers['svix-id'] } : {}),
    ...(eventType ? { eventType } : {}),
    text: `${reason ?? 'answered'} (${request.statusCode}, ${request.durationMs} ms)`,
    level: ok ? 'INFO' : 'WARN',
  };
}

/** Fails fast, before any stand-in starts, when the webhook port is taken (port 0: any free one). */
async function refuseBusyPort(port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new Error(`Port ${port} is in use: stop what runs there or set PORT`) : error),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

/** Starts everything; resolves once the webhook endpoint accepts requests. */
export async function startLocalPipeline(config: LocalPipelineConfig, output: Output): Promise<RunningPipeline> {
  const teardown = new Teardown();
  try {
    await mkdir(config.dataDir, { recursive: true });
    // Before anything else: a second pipeline on this folder would run a second database on its files.
    const lock = await acquireDataFolderLock(config.dataDir, { onStaleLock: (message) => output.plain(message) });
    teardown.add(() => lock.release());
    await refuseBusyPort(config.port);
    const secret = config.webhookSecret
      ? { secret: config.webhookSecret, path: undefined, created: false }
      : await devWebhookSecret(config.dataDir);
    if (secret.path) {
      output.plain(`Signing secret: ${secret.secret} (${secret.created ? 'generated now, ' : ''}kept in ${secret.path})`);
    } else {
      output.plain('Signing secret: from VITAL_WEBHOOK_SECRET');
    }

    output.plain('Starting DynamoDB and fauxqs (SQS, S3)...');
    const dynamoDbDir = path.join(config.dataDir, 'dynamodb');
    const sqsAndS3Dir = path.join(config.dataDir, 'sqs-s3');
    // DynamoDB Local quietly exits when its folder is missing.
    await Promise.all([mkdir(dynamoDbDir, { recursive: true }), mkdir(sqsAndS3Dir, { recursive: true })]);
    const standIns = await Promise.allSettled([
      startDynamoDb({ dataDir: dynamoDbDir }),
      startSqsAndS3({ dataDir: sqsAndS3Dir }),
    ]);
    for (const started of standIns) {
      if (started.status === 'fulfilled') teardown.add(() => (started.value as RunningStandIn).stop());
    }
    const [dynamoDb, sqsAndS3] = standIns.map((started) => {
      if (started.status === 'rejected') throw started.reason;
      return started.value;
    }) as [RunningStandIn, RunningStandIn];
    if (dynamoDb.processId !== undefined) await lock.recordDynamoDbLocal(dynamoDb.processId);
    output.plain(
      (dynamoDb as RunningDynamoDb).engine === 'dynalite'
        ? 'DynamoDB: dynalite, in this process (no Java found; install a Java runtime to run AWS\'s DynamoDB Local, as the tests do)'
        : 'DynamoDB: DynamoDB Local (Java)',
    );
    const endpoints = { dynamodb: dynamoDb.endpoint, sqs: sqsAndS3.endpoint, s3: sqsAndS3.endpoint };

    const clients = standInClients(endpoints);
    const { dynamodb, sqs, s3 } = clients;
    teardown.add(async () => clients.destroy());
    const resources = await createLocalResources({
      dynamodb,
      sqs,
      s3,
      sqsEndpoint: endpoints.sqs,
      timeScale: config.timeScale,
    });
    if (config.timeScale !== 1) {
      const { events } = resources.queues;
      output.plain(`Fast retries: the worker times out after ${events.functionTimeoutSeconds} s and a failed event is retried after ${events.visibilityTimeoutSeconds} s`);
    }

    Object.assign(process.env, handlerEnvironment(resources, endpoints, secret.secret, config.timeScale));
    routePowertoolsLogs(output, 'handler');
    const [verifier, ...consumers] = await Promise.all([
      import('../functions/verifier'),
      ...CONSUMERS.map((consumer) => consumer.load()),
    ]);

    const mappings = CONSUMERS.map((consumer, index) => {
      const queue = resources.queues[consumer.queue];
      return new SqsEventSourceMapping({
        sqs,
        queueUrl: queue.url,
        queueArn: queue.arn,
        settings: queue.definition,
        function: { name: consumer.name, timeoutSeconds: queue.functionTimeoutSeconds, handler: consumers[index]!.handler },
        onOutcome: (outcome) =>
          output.line({
            source: consumer.name,
            level: outcome.result === 'processed' ? 'INFO' : 'WARN',
            id: attribute(outcome.record, ATTRIBUTE.svixId) ?? outcome.record.messageId,
            ...(attribute(outcome.record, ATTRIBUTE.eventType) ? { eventType: attribute(outcome.record, ATTRIBUTE.eventType)! } : {}),
            text: describeOutcome(outcome, queue.visibilityTimeoutSeconds),
          }),
        onPollError: (error) => output.line({ source: consumer.name, level: 'ERROR', text: `polling failed: ${error.message}` }),
      });
    });
    // Stopping a mapping that never started is a no-op, so the teardown covers a start that fails half-way.
    teardown.add(async () => {
      await Promise.all(mappings.map((mapping) => mapping.stop()));
    });
    await Promise.all(mappings.map((mapping) => mapping.start()));

    const verifierFunction: HttpFunction = {
      name: 'verifier',
      timeoutSeconds: VERIFIER_TIMEOUT_SECONDS,
      handler: (event) => verifier.handler(event),
    };
    let api: RunningHttpApi;
    try {
      api = await startHttpApi({
        port: config.port,
        routes: [{ ...WEBHOOK_ROUTE, function: verifierFunction }],
        onRequest: (request) => output.line({ source: 'webhook', ...describeRequest(request) }),
        onFunctionError: (_, error) => output.line({ source: 'webhook', level: 'ERROR', text: `verifier failed: ${error.name}` }),
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new Error(`Port ${config.port} is in use: stop what runs there or set PORT`);
      }
      throw error;
    }
    teardown.add(() => api.close());

    const state: PipelineState = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      port: api.port,
      webhookUrl: `${api.url}${WEBHOOK_ROUTE.path}`,
      region: LOCAL_AWS.region,
      endpoints,
      tables: resources.tables,
      queues: Object.fromEntries(
        Object.entries(resources.queues).map(([name, queue]) => [name, { url: queue.url, deadLetterUrl: queue.deadLetterUrl }]),
      ) as PipelineState['queues'],
      bucket: resources.bucket,
      secret: secret.path ? { source: 'file', path: secret.path } : { source: 'environment' },
    };
    await writePipelineState(config.dataDir, state);
    teardown.add(() => removePipelineState(config.dataDir));
    return { webhookUrl: state.webhookUrl, state, stop: () => teardown.run() };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}
