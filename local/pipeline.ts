import type { SQSRecord } from 'aws-lambda';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { BackfillHandlerDependencies } from '../functions/backfill';
import type { VerifierDependencies } from '../functions/verifier';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ATTRIBUTE } from '../functions/domain/queued-event';
import { SERVICE_NAME } from '../functions/shared/service';
import { backfillTimeReserveMs, VERIFIER_TIMEOUT_SECONDS, WEBHOOK_ROUTE } from '../functions/shared/resources';
import { CHANGE_EVENTS_FILE, devWebhookSecret, PORT_SETTINGS, type LocalPipelineConfig } from './config';
import { acquireDataFolderLock } from './data-folder-lock';
import { createServer } from 'node:net';
import { apiKeyRetryDelaySeconds } from '../functions/domain/backfill-failure';
import { changeEventLine, describeDelivery, routePowertoolsLogs, type DeliveryLog, type Output } from './console-output';
import { startEventBridge, type RunningEventBridge } from './eventbridge-stand-in';
import { SqsEventSourceMapping, type MessageOutcome, type SqsFunction } from './event-source-mapping';
import { startHttpApi, type HandledRequest, type HttpFunction, type RunningHttpApi } from './http-api';
import { createLocalResources, type LocalResources, type QueueName } from './local-resources';
import { removePipelineState, writePipelineState, type PipelineState } from './pipeline-state';
import { startFakeVitalApi } from './fake-vital-api';
import { vitalApiBaseUrlFromEnvironment } from '../functions/adapters/vital-api-client';
import { randomBytes } from 'node:crypto';
import { LOCAL_AWS, standInAccessHint, standInClients, standInEnvironment, startDynamoDb, startSqsAndS3, type RunningDynamoDb, type RunningStandIn } from './stand-ins';

/**
 * The whole pipeline on one machine: the stand-ins, the resources the CDK stack deploys (from the
 * same definitions), the verifier behind a local HTTP API, and each consumer behind a local SQS event
 * source mapping. Handlers run through their real `handler` exports, configured by the environment
 * variables the stack sets, so a local run exercises the wiring that runs in AWS. Tests inject
 * faults into this same wiring through `LocalPipelineHooks`.
 */

/** A function consuming one of the pipeline's queues; adding a consumer is one entry in `CONSUMERS`. */
interface ConsumerDefinition {
  readonly queue: QueueName;
  readonly name: string;
  /**
   * Imports the handler module and gives its handler, as the hooks change it; called only once the
   * environment is set, as Lambda's cold start would.
   */
  readonly load: (hooks: LocalPipelineHooks) => Promise<SqsFunction['handler']>;
}

const CONSUMERS: readonly ConsumerDefinition[] = [
  {
    queue: 'events',
    name: 'worker',
    load: async ({ wrapWorker }) => {
      const { handler } = await import('../functions/worker');
      return wrapWorker ? wrapWorker(handler) : handler;
    },
  },
  {
    queue: 'backfill',
    name: 'backfill',
    load: async ({ backfillDependencies }) => {
      const backfill = await import('../functions/backfill');
      return handlerWith(backfill.handler, backfill.createBackfillHandler, backfill.backfillFromEnvironment, backfillDependencies);
    },
  },
];

/**
 * What a test changes in the pipeline `startLocalPipeline` starts: the seams through which it
 * injects faults (the reliability storm runs on this wiring, not on a copy of it), and where the
 * stand-ins keep their data. `npm start` passes none: every one left out leaves the pipeline as
 * `npm start` runs it.
 */
export interface LocalPipelineHooks {
  /** Keeps the stand-ins' data in memory, not in the data folder: for a pipeline thrown away at its end, which it speeds up. */
  readonly standInsInMemory?: boolean;
  /** The Data Access API the backfill fetches from (VITAL_API_BASE_URL, VITAL_API_KEY), instead of `config.vitalApi`'s. */
  readonly vitalApi?: { readonly url: string; readonly apiKey: string };
  /** The team whose events the worker stores (the stack's EXPECTED_TEAM_ID); another team's are quarantined. */
  readonly expectedTeamId?: string;
  /**
   * Called with the SDK clients the handlers send with, and the queues they send to, before any
   * invocation: where SDK middleware that injects faults goes.
   */
  readonly handlerClients?: (clients: { readonly sqs: SQSClient; readonly dynamodb: DynamoDBClient }, queues: LocalResources['queues']) => void;
  /** Used in place of the verifier's dependencies of the same names from its environment (a secret store the test rotates). */
  readonly verifierDependencies?: Partial<VerifierDependencies>;
  /** Used in place of the backfill's dependencies of the same names from its environment (a Vital client with shorter timeouts). */
  readonly backfillDependencies?: Partial<BackfillHandlerDependencies>;
  /** Wraps the worker as the events queue's mapping invokes it (a worker that crashes mid-batch). */
  readonly wrapWorker?: (worker: SqsFunction['handler']) => SqsFunction['handler'];
  /** Told what became of each message a consumer was handed, as its console line is. */
  readonly onMessageOutcome?: (queue: QueueName, outcome: MessageOutcome) => void;
}

/**
 * A function's handler: its module's `handler` export, or, when a hook replaces some of its
 * dependencies, the handler its factory builds over the others its environment gives.
 */
function handlerWith<Dependencies, Handler>(
  exported: Handler,
  create: (dependencies: Dependencies) => Handler,
  fromEnvironment: () => Dependencies,
  replaced: Partial<Dependencies> | undefined,
): Handler {
  return replaced ? create({ ...fromEnvironment(), ...replaced }) : exported;
}

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
  endpoints: Parameters<typeof standInEnvironment>[0],
  webhookSecret: string,
  timeScale: number,
  vitalApi: { readonly url: string; readonly apiKey: string } | undefined,
  expectedTeamId: string | undefined,
): Record<string, string> {
  return {
    ...standInEnvironment(endpoints),
    ...resources.environment,
    // The backfill reads these exactly as in AWS; the simulated API is just another base URL.
    ...(vitalApi ? { VITAL_API_BASE_URL: vitalApi.url, VITAL_API_KEY: vitalApi.apiKey } : {}),
    ...(expectedTeamId ? { EXPECTED_TEAM_ID: expectedTeamId } : {}),
    // The backfill's time reserve is a share of its timeout, scaled with it.
    BACKFILL_TIME_RESERVE_MS: String(Math.round(backfillTimeReserveMs(timeScale))),
    // A backfill waiting for the API key tries again sooner with --fast-retries.
    BACKFILL_API_KEY_RETRY_SECONDS: String(apiKeyRetryDelaySeconds(timeScale)),
    // The stack gives the verifier SIGNING_SECRET_ID (Secrets Manager); locally it reads the secret itself.
    VITAL_WEBHOOK_SECRET: webhookSecret,
    // Powertools' dev mode logs through the global console, which the local output reformats.
    POWERTOOLS_DEV: 'true',
    POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
    // INFO, so the worker's "Delivery processed" line tells the console what each delivery did;
    // what is shown of the rest follows the user's level (`shownLogLevel`).
    POWERTOOLS_LOG_LEVEL: 'INFO',
    POWERTOOLS_TRACE_ENABLED: 'false',
  };
}

function attribute(record: SQSRecord, name: string): string | undefined {
  return record.messageAttributes[name]?.stringValue;
}

/** The handlers' log lines shown: the user's `POWERTOOLS_LOG_LEVEL` (or `LOG_LEVEL`), warnings by default. */
const shownLogLevel = (env: NodeJS.ProcessEnv): string => env.POWERTOOLS_LOG_LEVEL ?? env.LOG_LEVEL ?? 'WARN';

/**
 * What the worker said it did with each delivery, by svix-id, until the message's outcome line
 * takes it: the worker logs before it answers the batch, so the log is always here first.
 */
class DeliveryLogs {
  private readonly waiting = new Map<string, DeliveryLog[]>();
  add(delivery: DeliveryLog): void {
    this.waiting.set(delivery.svixId, [...(this.waiting.get(delivery.svixId) ?? []), delivery]);
  }
  take(svixId: string | undefined): DeliveryLog | undefined {
    const logs = svixId ? this.waiting.get(svixId) : undefined;
    const first = logs?.shift();
    if (logs?.length === 0) this.waiting.delete(svixId!);
    return first;
  }
}

function describeOutcome(outcome: MessageOutcome, visibilityTimeoutSeconds: number, delivery: DeliveryLog | undefined): string {
  if (outcome.result === 'processed') return delivery ? describeDelivery(delivery) : 'processed';
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

/** A port the pipeline listens on is taken: says which, what it serves, and the setting that moves it. */
export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    readonly setting: (typeof PORT_SETTINGS)[keyof typeof PORT_SETTINGS],
  ) {
    super(`Port ${port} (${setting.serves}) is in use: stop what runs there or set ${setting.name}`);
  }
}

/** Fails fast, before any stand-in starts, when a port to listen on is taken (port 0: any free one). */
async function refuseBusyPort(port: number, setting: PortInUseError['setting']): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE' ? new PortInUseError(port, setting) : error));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

/**
 * The simulated Vital Data Access API: the project's fake (local/fake-vital-api.ts) with a fixed
 * seed, so a user and provider get the same history on every start, at about one heart-rate sample
 * every 15 minutes. It answers for any user and provider, which `vital-pipeline simulate connect` uses.
 */
export const SIMULATED_VITAL = { seed: 1, samplesPerDay: 96 } as const;

/** Starts everything; resolves once the webhook endpoint accepts requests. */
export async function startLocalPipeline(config: LocalPipelineConfig, output: Output, hooks: LocalPipelineHooks = {}): Promise<RunningPipeline> {
  const teardown = new Teardown();
  try {
    await mkdir(config.dataDir, { recursive: true });
    // Before anything else: a second pipeline on this folder would run a second database on its files.
    const lock = await acquireDataFolderLock(config.dataDir, { onStaleLock: (message) => output.plain(message) });
    teardown.add(() => lock.release());
    const standInPorts = config.standInPorts ?? { dynamodb: 0, sqsAndS3: 0, eventBridge: 0 };
    await refuseBusyPort(config.port, PORT_SETTINGS.webhook);
    await refuseBusyPort(standInPorts.dynamodb, PORT_SETTINGS.dynamodb);
    await refuseBusyPort(standInPorts.sqsAndS3, PORT_SETTINGS.sqsAndS3);
    await refuseBusyPort(standInPorts.eventBridge, PORT_SETTINGS.eventBridge);
    const secret = config.webhookSecret
      ? { secret: config.webhookSecret, path: undefined, created: false }
      : await devWebhookSecret(config.dataDir);
    if (secret.path) {
      output.plain(`Signing secret: ${secret.secret} (${secret.created ? 'generated now, ' : ''}kept in ${secret.path})`);
    } else {
      output.plain('Signing secret: from VITAL_WEBHOOK_SECRET');
    }

    output.plain('Starting DynamoDB and fauxqs (SQS, S3)...');
    const standInDirs = hooks.standInsInMemory
      ? undefined
      : { dynamodb: path.join(config.dataDir, 'dynamodb'), sqsAndS3: path.join(config.dataDir, 'sqs-s3') };
    // DynamoDB Local quietly exits when its folder is missing.
    if (standInDirs) await Promise.all([mkdir(standInDirs.dynamodb, { recursive: true }), mkdir(standInDirs.sqsAndS3, { recursive: true })]);
    const standIns = await Promise.allSettled([
      startDynamoDb({ ...(standInDirs ? { dataDir: standInDirs.dynamodb } : {}), port: standInPorts.dynamodb }),
      startSqsAndS3({ ...(standInDirs ? { dataDir: standInDirs.sqsAndS3 } : {}), port: standInPorts.sqsAndS3 }),
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
    for (const line of standInAccessHint({ dynamodb: dynamoDb.endpoint, sqsAndS3: sqsAndS3.endpoint }, resources.tables.summaries)) {
      output.plain(line);
    }
    const changeEventsFile = path.join(config.dataDir, CHANGE_EVENTS_FILE);
    let eventBridge: RunningEventBridge;
    try {
      eventBridge = await startEventBridge({
        busName: resources.changeEventBus,
        eventsFile: changeEventsFile,
        port: standInPorts.eventBridge,
        onEvent: (event) => output.line(changeEventLine(event)),
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new PortInUseError(standInPorts.eventBridge, PORT_SETTINGS.eventBridge);
      throw error;
    }
    teardown.add(() => eventBridge.stop());
    output.plain(`EventBridge: change events on bus ${eventBridge.busName} at ${eventBridge.endpoint}, kept in ${changeEventsFile}. Watch them: npx vital-pipeline events --follow`);
    if (config.timeScale !== 1) {
      const { events } = resources.queues;
      output.plain(`Fast retries: the worker times out after ${events.functionTimeoutSeconds} s and a failed event is retried after ${events.visibilityTimeoutSeconds} s`);
    }

    let simulatedVital: { url: string; apiKey: string } | undefined;
    if (hooks.vitalApi) {
      output.plain(`Vital API: ${hooks.vitalApi.url}`);
    } else if (config.vitalApi === 'simulated') {
      const apiKey = `simulated_${randomBytes(12).toString('hex')}`;
      const api = await startFakeVitalApi({ apiKey, ...SIMULATED_VITAL });
      teardown.add(() => api.stop());
      simulatedVital = { url: api.url, apiKey };
      output.plain(`Vital API: simulated, seeded history for any user and provider (${api.url}). Try: npx vital-pipeline simulate connect --provider oura`);
      output.plain('  To fetch from Junction instead, start with VITAL_API_KEY set.');
    } else {
      output.plain(`Vital API: ${vitalApiBaseUrlFromEnvironment()}${process.env.VITAL_API_KEY ? '' : ' (no VITAL_API_KEY: backfills will wait for one)'}`);
    }

    const deliveryLogs = new DeliveryLogs();
    routePowertoolsLogs(output, 'handler', { minLevel: shownLogLevel(process.env), onDelivery: (delivery) => deliveryLogs.add(delivery) });
    const vitalApi = hooks.vitalApi ?? simulatedVital;
    Object.assign(process.env, handlerEnvironment(resources, { ...endpoints, eventBridge: eventBridge.endpoint }, secret.secret, config.timeScale, vitalApi, hooks.expectedTeamId));
    if (hooks.handlerClients) {
      const [{ sqsClient }, { dynamoDbClient }] = await Promise.all([import('../functions/adapters/sqs-client'), import('../functions/adapters/dynamodb-client')]);
      hooks.handlerClients({ sqs: sqsClient(), dynamodb: dynamoDbClient() }, resources.queues);
    }
    const [verifier, ...consumers] = await Promise.all([
      import('../functions/verifier'),
      ...CONSUMERS.map((consumer) => consumer.load(hooks)),
    ]);

    const mappings = CONSUMERS.map((consumer, index) => {
      const queue = resources.queues[consumer.queue];
      return new SqsEventSourceMapping({
        sqs,
        queueUrl: queue.url,
        queueArn: queue.arn,
        settings: queue.definition,
        function: { name: consumer.name, timeoutSeconds: queue.functionTimeoutSeconds, handler: consumers[index]! },
        onOutcome: (outcome) => {
          hooks.onMessageOutcome?.(consumer.queue, outcome);
          output.line({
            source: consumer.name,
            level: outcome.result === 'processed' ? 'INFO' : 'WARN',
            id: attribute(outcome.record, ATTRIBUTE.svixId) ?? outcome.record.messageId,
            ...(attribute(outcome.record, ATTRIBUTE.eventType) ? { eventType: attribute(outcome.record, ATTRIBUTE.eventType)! } : {}),
            text: describeOutcome(
              outcome,
              queue.visibilityTimeoutSeconds,
              // Only the worker logs deliveries; a backfill job carries its notice's svix-id too.
              consumer.queue === 'events' ? deliveryLogs.take(attribute(outcome.record, ATTRIBUTE.svixId)) : undefined,
            ),
          });
        },
        onPollError: (error) => output.line({ source: consumer.name, level: 'ERROR', text: `polling failed: ${error.message}` }),
      });
    });
    // Stopping a mapping that never started is a no-op, so the teardown covers a start that fails half-way.
    teardown.add(async () => {
      await Promise.all(mappings.map((mapping) => mapping.stop()));
    });
    await Promise.all(mappings.map((mapping) => mapping.start()));

    const verifierHandler = handlerWith(verifier.handler, verifier.createVerifierHandler, verifier.verifierFromEnvironment, hooks.verifierDependencies);
    const verifierFunction: HttpFunction = {
      name: 'verifier',
      timeoutSeconds: VERIFIER_TIMEOUT_SECONDS,
      handler: (event) => verifierHandler(event),
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
        throw new PortInUseError(config.port, PORT_SETTINGS.webhook);
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
        Object.entries(resources.queues).map(([name, queue]) => [name, { url: queue.url, deadLetterUrl: queue.deadLetterUrl, functionTimeoutSeconds: queue.functionTimeoutSeconds }]),
      ) as PipelineState['queues'],
      bucket: resources.bucket,
      secret: secret.path ? { source: 'file', path: secret.path } : { source: 'environment' },
      vitalApi: simulatedVital ? { source: 'simulated', url: simulatedVital.url } : { source: 'configured', url: vitalApiBaseUrlFromEnvironment() },
      changeEvents: { endpoint: eventBridge.endpoint, bus: eventBridge.busName, file: changeEventsFile },
    };
    await writePipelineState(config.dataDir, state);
    teardown.add(() => removePipelineState(config.dataDir));
    return { webhookUrl: state.webhookUrl, state, stop: () => teardown.run() };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}
