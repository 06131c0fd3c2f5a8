import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSigningSecrets } from '../functions/domain/signing-secrets';

/**
 * The local pipeline's settings, all from the environment:
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `PORT` | 3000 | port of `http://127.0.0.1:$PORT/webhooks/vital`; 0: a free port, and free ports for the stand-ins too |
 * | `LOCAL_DYNAMODB_PORT` | `PORT`+1 | port of the DynamoDB endpoint that AWS CLI and SDK clients reach the local tables on |
 * | `LOCAL_SQS_S3_PORT` | `PORT`+2 | port of the SQS and S3 endpoint (one for both) |
 * | `LOCAL_EVENTBRIDGE_PORT` | `PORT`+3 | port of the EventBridge endpoint, whose one bus takes the change events |
 * | `LOCAL_DATA_DIR` | `.local/` | DynamoDB Local's database, fauxqs's queues and objects, the dev secret, `pipeline.json`, the change events (`change-events.jsonl`); a relative path is taken from the project folder |
 * | `VITAL_WEBHOOK_SECRET` | generated once into `$LOCAL_DATA_DIR/webhook-secret` | the Svix signing secret (`whsec_...`) |
 * | `VITAL_API_KEY` | none | team API key the backfill function fetches history with; without it (and without `VITAL_API_BASE_URL`) the backfill fetches from the simulated Vital API |
 * | `VITAL_ENVIRONMENT`, `VITAL_REGION` | `production`, `us` | pick the Data Access API host |
 * | `VITAL_API_BASE_URL` | none | overrides both (a sandbox, a fake API) |
 * | `LOCAL_TIME_SCALE` | 1 | scales every consumer's timeout and its queue's visibility timeout together (0 to 1); `npm start -- --fast-retries` sets 1/30 |
 *
 * The `VITAL_API_*` settings are read by the backfill handler itself, exactly as in AWS; they are
 * checked here only so that a typo fails at start, not at the first backfill.
 */

/** A setting has a value the local pipeline cannot use. */
export class InvalidLocalSettingError extends Error {}

export interface LocalPipelineConfig {
  readonly port: number;
  readonly dataDir: string;
  /** From `VITAL_WEBHOOK_SECRET`; otherwise the pipeline uses the dev secret in the data folder. */
  readonly webhookSecret?: string;
  /** Scales consumer and visibility timeouts together (`consumerTimeouts`); 1 runs them as deployed. */
  readonly timeScale: number;
  /**
   * Ports of the stand-ins' endpoints, the ones AWS CLI and SDK clients reach: fixed, so that a
   * user's `--endpoint-url` or script keeps working over a restart. 0 is a free port on each start.
   * @default { dynamodb: 0, sqsAndS3: 0, eventBridge: 0 }
   */
  readonly standInPorts?: StandInPorts;
  /**
   * Which Data Access API the backfill fetches from: Junction's (`VITAL_API_KEY`, or a URL of the
   * user's own in `VITAL_API_BASE_URL`), or, with neither, the simulated one the pipeline starts
   * (local/fake-vital-api.ts, seeded), so that backfills can be tried without a Vital team.
   * @default 'configured': the handlers read `VITAL_API_*` from the environment, as in AWS
   */
  readonly vitalApi?: 'configured' | 'simulated';
}

export interface StandInPorts {
  readonly dynamodb: number;
  /** fauxqs serves SQS and S3 on one endpoint. */
  readonly sqsAndS3: number;
  readonly eventBridge: number;
}

export const DEFAULT_PORT = 3000;
/**
 * The setting naming each port, for the settings and for the message refusing a port in use; the
 * stand-ins' ports sit right above `PORT` (by `offset`) unless set on their own.
 */
export const PORT_SETTINGS = {
  webhook: { name: 'PORT', serves: 'the webhook endpoint' },
  dynamodb: { name: 'LOCAL_DYNAMODB_PORT', serves: 'the DynamoDB endpoint', offset: 1 },
  sqsAndS3: { name: 'LOCAL_SQS_S3_PORT', serves: 'the SQS and S3 endpoint', offset: 2 },
  eventBridge: { name: 'LOCAL_EVENTBRIDGE_PORT', serves: 'the EventBridge endpoint', offset: 3 },
} as const;
export const DEFAULT_DATA_DIR = '.local';
export const DEV_SECRET_FILE = 'webhook-secret';
/**
 * The change events the local pipeline published, in the data folder: one JSON line per event as
 * EventBridge delivers it, kept over restarts, so `vital-pipeline events` shows them even when the
 * pipeline is stopped.
 */
export const CHANGE_EVENTS_FILE = 'change-events.jsonl';
/**
 * `--fast-retries`: the worker times out after 1 s and a failed event is retried after 6 s, so a
 * poison event reaches the dead-letter queue in about 30 s instead of 15 minutes.
 */
export const FAST_RETRIES_TIME_SCALE = 1 / 30;

function timeScaleSetting(env: NodeJS.ProcessEnv, args: readonly string[]): number {
  if (args.includes('--fast-retries')) return FAST_RETRIES_TIME_SCALE;
  const raw = env.LOCAL_TIME_SCALE;
  if (raw === undefined || raw === '') return 1;
  const value = Number(raw);
  if (!(value > 0 && value <= 1)) throw new InvalidLocalSettingError(`LOCAL_TIME_SCALE must be a number above 0 and at most 1, not "${raw}"`);
  return value;
}

function integerSetting(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidLocalSettingError(`${name} must be an integer from ${min} to ${max}, not "${raw}"`);
  }
  return value;
}

/** A stand-in's port: its own setting, else `offset` above the webhook's (a free one with `PORT=0`). */
function standInPort(env: NodeJS.ProcessEnv, setting: { readonly name: string; readonly offset: number }, webhookPort: number): number {
  const own = integerSetting(env, setting.name, 0, 65_535);
  if (own !== undefined) return own;
  if (webhookPort === 0) return 0;
  const derived = webhookPort + setting.offset;
  if (derived > 65_535) {
    throw new InvalidLocalSettingError(`PORT ${webhookPort} leaves no port for ${setting.name} (PORT+${setting.offset}): set a lower PORT, or set ${setting.name}`);
  }
  return derived;
}

function oneOf(env: NodeJS.ProcessEnv, name: string, allowed: readonly string[]): void {
  const value = env[name];
  if (value && !allowed.includes(value)) {
    throw new InvalidLocalSettingError(`${name} must be one of ${allowed.join(', ')}, not "${value}"`);
  }
}

/**
 * The project's folder (the one holding package.json), found from where this file sits in it rather
 * than from the working directory: `npm start` runs at the project root, the CLI wherever its user
 * is, and both must find the same data folder.
 */
const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The data folder a process works on, absolute: `LOCAL_DATA_DIR` or `.local/`, a relative one taken
 * from the project folder. The CLI and the local pipeline both find it here, so they always agree.
 */
export function localDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(PROJECT_ROOT, env.LOCAL_DATA_DIR || DEFAULT_DATA_DIR);
}

/** Reads and checks the settings; throws `InvalidLocalSettingError` on the first bad one. */
export function localPipelineConfig(env: NodeJS.ProcessEnv = process.env, args: readonly string[] = process.argv.slice(2)): LocalPipelineConfig {
  const unknown = args.filter((arg) => arg !== '--fast-retries');
  if (unknown.length > 0) throw new InvalidLocalSettingError(`Unknown option ${unknown[0]}: npm start takes only --fast-retries`);
  oneOf(env, 'VITAL_ENVIRONMENT', ['sandbox', 'production']);
  oneOf(env, 'VITAL_REGION', ['us', 'eu']);
  if (env.VITAL_API_BASE_URL && !URL.canParse(env.VITAL_API_BASE_URL)) {
    throw new InvalidLocalSettingError(`VITAL_API_BASE_URL is not a URL: "${env.VITAL_API_BASE_URL}"`);
  }
  const webhookSecret = env.VITAL_WEBHOOK_SECRET || undefined;
  if (webhookSecret) {
    try {
      parseSigningSecrets(webhookSecret);
    } catch (error) {
      throw new InvalidLocalSettingError(`VITAL_WEBHOOK_SECRET: ${(error as Error).message}`);
    }
  }
  const port = integerSetting(env, PORT_SETTINGS.webhook.name, 0, 65_535) ?? DEFAULT_PORT;
  const standInPorts = {
    dynamodb: standInPort(env, PORT_SETTINGS.dynamodb, port),
    sqsAndS3: standInPort(env, PORT_SETTINGS.sqsAndS3, port),
    eventBridge: standInPort(env, PORT_SETTINGS.eventBridge, port),
  };
  const ports = [port, standInPorts.dynamodb, standInPorts.sqsAndS3, standInPorts.eventBridge];
  const fixed = ports.filter((value) => value !== 0);
  if (new Set(fixed).size < fixed.length) {
    const names = Object.values(PORT_SETTINGS).map((setting) => setting.name);
    throw new InvalidLocalSettingError(`${names.slice(0, -1).join(', ')} and ${names.at(-1)} must differ, not ${ports.slice(0, -1).join(', ')} and ${ports.at(-1)}`);
  }
  return {
    port,
    standInPorts,
    dataDir: localDataDir(env),
    ...(webhookSecret ? { webhookSecret } : {}),
    timeScale: timeScaleSetting(env, args),
    vitalApi: env.VITAL_API_KEY || env.VITAL_API_BASE_URL ? 'configured' : 'simulated',
  };
}

/** A fresh `whsec_` secret, shaped as Svix issues them. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/**
 * The dev secret kept in the data folder: read it, or create it on first use. `created` says whether
 * this call made it (the pipeline prints it then).
 */
export async function devWebhookSecret(dataDir: string): Promise<{ secret: string; path: string; created: boolean }> {
  const file = path.join(dataDir, DEV_SECRET_FILE);
  try {
    return { secret: (await readFile(file, 'utf8')).trim(), path: file, created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = newWebhookSecret();
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return { secret, path: file, created: true };
}
