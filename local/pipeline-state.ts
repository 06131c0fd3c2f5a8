import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { QueueName, TableName } from './local-resources';

/**
 * The small state file a running local pipeline keeps in its data folder (`pipeline.json`), through
 * which the CLI finds the stand-ins' endpoints and the resource names. It exists only while the
 * pipeline runs.
 */

export interface PipelineState {
  readonly pid: number;
  readonly startedAt: string;
  readonly port: number;
  readonly webhookUrl: string;
  readonly region: string;
  readonly endpoints: { readonly dynamodb: string; readonly sqs: string; readonly s3: string };
  readonly tables: Readonly<Record<TableName, string>>;
  /** Each queue, with its consumer's timeout as this pipeline runs it (scaled by `--fast-retries`; absent in files of older versions). */
  readonly queues: Readonly<Record<QueueName, { readonly url: string; readonly deadLetterUrl: string; readonly functionTimeoutSeconds?: number }>>;
  readonly bucket: string;
  /** Where the signing secret is: a file in the data folder, or only the pipeline's environment. */
  readonly secret: { readonly source: 'file'; readonly path: string } | { readonly source: 'environment' };
  /** The Data Access API the backfill fetches from: the simulated one the pipeline started, or the configured one. */
  readonly vitalApi: { readonly source: 'simulated' | 'configured'; readonly url: string };
  /** The change events: the EventBridge stand-in's endpoint and bus, and the file its events are kept in. */
  readonly changeEvents: { readonly endpoint: string; readonly bus: string; readonly file: string };
}

/** The local pipeline is not running (no state file, or its process is gone). */
export class PipelineNotRunningError extends Error {
  constructor(dataDir: string) {
    super(`The local pipeline is not running (no live ${path.join(dataDir, STATE_FILE_NAME)}): start it with npm start`);
  }
}

export const STATE_FILE_NAME = 'pipeline.json';

const stateFile = (dataDir: string) => path.join(dataDir, STATE_FILE_NAME);

export async function writePipelineState(dataDir: string, state: PipelineState): Promise<void> {
  await writeFile(stateFile(dataDir), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

export async function removePipelineState(dataDir: string): Promise<void> {
  await rm(stateFile(dataDir), { force: true });
}

/** Whether a process lives (EPERM: it does, as another user's). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reads the state of the pipeline running on `dataDir`; throws `PipelineNotRunningError` otherwise. */
export async function readPipelineState(dataDir: string): Promise<PipelineState> {
  let state: PipelineState;
  try {
    state = JSON.parse(await readFile(stateFile(dataDir), 'utf8')) as PipelineState;
  } catch {
    throw new PipelineNotRunningError(dataDir);
  }
  if (!isAlive(state.pid)) throw new PipelineNotRunningError(dataDir);
  return state;
}
