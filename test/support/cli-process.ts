import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writePipelineState, type PipelineState } from '../../local/pipeline-state';
import { LOCAL_AWS } from '../../local/stand-ins';

/**
 * The `vital-pipeline` CLI run as a user runs it: a child process on the project's Node, its
 * environment given whole (nothing inherited by accident), stdin piped.
 */

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The environment of a CLI that may reach AWS only through the endpoints added to it: fake
 * credentials, no profile, no shared config or credential files, no instance metadata. `home` is an
 * empty folder; it is also the local data folder, so a local-pipeline fallback finds nothing there.
 */
export function isolatedAwsEnvironment(home: string, region: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: home,
    AWS_CONFIG_FILE: path.join(home, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'no-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_REGION: region,
    AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKEFAKE',
    AWS_SECRET_ACCESS_KEY: 'fake-secret-access-key',
    LOCAL_DATA_DIR: home,
  };
}

/**
 * Runs `vital-pipeline <args>` with exactly `env`, in `cwd` (the project folder unless given); `input`
 * is written to its stdin, which is then closed.
 */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv, input = '', timeoutMs = 90_000, cwd = PROJECT_ROOT): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [path.join(PROJECT_ROOT, 'cli', 'vital-pipeline.mjs'), ...args],
      { cwd, env, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin!.end(input);
  });
}

/**
 * Makes `dataDir` the data folder of a local pipeline on the given stand-ins and resources, as
 * `npm start` would (its state file, with this process as the pipeline's), so the CLI's default
 * target finds them. Its webhook URL answers nothing, the signing secret is the environment's, and
 * the Data Access API is `vitalApi` (by default a configured one that answers nothing).
 */
export async function writeStandInPipelineState(
  dataDir: string,
  endpoints: PipelineState['endpoints'],
  resources: Pick<PipelineState, 'tables' | 'queues' | 'bucket'>,
  vitalApi: PipelineState['vitalApi'] = { source: 'configured', url: 'http://127.0.0.1:9' },
): Promise<void> {
  await writePipelineState(dataDir, {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    port: 0,
    webhookUrl: 'http://127.0.0.1:9/webhooks/vital',
    region: LOCAL_AWS.region,
    endpoints,
    tables: resources.tables,
    queues: resources.queues,
    bucket: resources.bucket,
    secret: { source: 'environment' },
    vitalApi,
  });
}
