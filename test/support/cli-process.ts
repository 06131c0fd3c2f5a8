import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHANGE_EVENT_BUS } from '../../functions/shared/resources';
import { CHANGE_EVENTS_FILE } from '../../local/config';
import { LOCAL_NAME_PREFIX } from '../../local/local-resources';
import { writePipelineState, type PipelineState } from '../../local/pipeline-state';
import { LOCAL_AWS } from '../../local/stand-ins';

/**
 * The `vital-pipeline` CLI run as a user runs it: a child process on the project's Node, its
 * environment given whole (nothing inherited by accident), stdin piped.
 */

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The V8 flags `npm test` and `npm start` run Node with (README, "Development"): without them a Node 24
 * process can deadlock in `process.exit` on a background compile. The CLI and the synth sandbox the
 * tests start get them too (`CLI_COMMAND`; a `fork` inherits them from the test process).
 */
export const NODE_FLAGS = ['--no-maglev', '--no-concurrent-sparkplug'] as const;

/** `node` and its arguments up to the CLI's own: `[...CLI_COMMAND, ...args]` runs `vital-pipeline <args>`. */
export const CLI_COMMAND: readonly string[] = [process.execPath, ...NODE_FLAGS, path.join(PROJECT_ROOT, 'cli', 'vital-pipeline.mjs')];

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
      CLI_COMMAND[0]!,
      [...CLI_COMMAND.slice(1), ...args],
      { cwd, env, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin!.end(input);
  });
}

/** A `vital-pipeline` process still running: what it printed so far, and its end. */
export interface RunningCli {
  /** Resolves once its stdout holds text matching `pattern` (rejects when it ends first or `timeoutMs` passes). */
  printed(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends it a signal (Ctrl-C: `SIGINT`). */
  kill(signal: NodeJS.Signals): void;
  readonly ended: Promise<CliRun>;
}

/** Starts `vital-pipeline <args>` with exactly `env`, for a command that runs until stopped (`--follow`). */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv): RunningCli {
  const child = spawn(CLI_COMMAND[0]!, [...CLI_COMMAND.slice(1), ...args], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const ended = new Promise<CliRun>((resolve) => child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
  return {
    printed: async (pattern, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(stdout)) {
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`vital-pipeline ${args.join(' ')} printed no ${pattern} (exit ${child.exitCode}); stdout: ${stdout}; stderr: ${stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return stdout;
    },
    kill: (signal) => child.kill(signal),
    ended,
  };
}

/**
 * Makes `dataDir` the data folder of a local pipeline on the given stand-ins and resources, as
 * `npm start` would (its state file, with this process as the pipeline's), so the CLI's default
 * target finds them. Its webhook URL and EventBridge endpoint answer nothing (its change events are
 * `change-events.jsonl` in `dataDir`), the signing secret is the environment's, and the Data Access
 * API is `vitalApi` (by default a configured one that answers nothing).
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
    changeEvents: { endpoint: 'http://127.0.0.1:9', bus: `${LOCAL_NAME_PREFIX}${CHANGE_EVENT_BUS.id}`, file: path.join(dataDir, CHANGE_EVENTS_FILE) },
  });
}
