import type { SynthesizedTemplate } from '../../local/synthesized-access';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../support/cli-process';

/**
 * What the shipped-bundles test needs to run a function as AWS Lambda runs it, from what `cdk synth`
 * writes: the app synthesized with bundling into a folder of the caller's (the cloud assembly), each
 * function's template entry and asset folder, and a sandbox per function that reproduces the Node.js
 * runtime (`lambda-runtime.mjs` in a child process, started with plain `node` in a copy of the asset
 * folder, the function's environment and nothing else, the AWS SDK on `NODE_PATH` as the runtime
 * ships it). Nothing of the test process (tsx, the repository's node_modules, its environment) is
 * visible to the bundle.
 */

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const NODE_MODULES = path.join(PROJECT_ROOT, 'node_modules');
const RUNTIME_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lambda-runtime.mjs');

/** The region the CDK CLI falls back to when it finds none, as on a machine without AWS configuration. */
export const SYNTH_REGION = 'us-east-1';

/**
 * Synthesizes the project's CDK app, with bundling, into `outdir`, the way `cdk synth` does: the
 * `app` command of cdk.json, given the CLI's context (cdk.json's and `deployContext`, as `-c key=value`
 * gives it, plus path and asset metadata and bundling of every stack) and output folder through `CDK_CONTEXT_JSON` and `CDK_OUTDIR`. The app is
 * run with the project's Node and `NODE_FLAGS` (README: a Node 24 exit can hang otherwise, and
 * NODE_OPTIONS refuses the flag), which changes nothing in what it writes. Resolves with its output
 * (esbuild's and cdk-nag's reports), rejects with it when the synth fails.
 */
export async function synthesizeApp(outdir: string, deployContext: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<string> {
  const cdkJson = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { app: string; context?: Record<string, unknown> };
  const app = /^tsx\s+(\S+)$/.exec(cdkJson.app.trim());
  if (!app) throw new Error(`cdk.json's app is no longer "tsx <file>" (${cdkJson.app}): teach synthesizeApp to run it`);
  const context = {
    ...cdkJson.context,
    ...deployContext,
    'aws:cdk:enable-path-metadata': true,
    'aws:cdk:enable-asset-metadata': true,
    'aws:cdk:bundling-stacks': ['**'],
  };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: [path.join(NODE_MODULES, '.bin'), path.dirname(process.execPath), process.env.PATH].join(path.delimiter),
    CDK_OUTDIR: outdir,
    CDK_CONTEXT_JSON: JSON.stringify(context),
    CDK_DEFAULT_REGION: SYNTH_REGION,
  };
  delete env.CDK_DEFAULT_ACCOUNT;
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', app[1]!], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
  }).finally(() => clearTimeout(timer));
  if (code !== 0) {
    // Node prints the minified line of aws-cdk-lib that threw; keep the readable lines (cdk-nag's findings, the error).
    const readable = output.split('\n').filter((line) => line.trim() && line.length <= 500);
    throw new Error(`cdk synth failed (exit ${code ?? signal}):\n${readable.slice(-60).join('\n')}`);
  }
  return output;
}

/** A Lambda function of the synthesized template, with the folder its code is uploaded from. */
export interface SynthesizedFunction {
  readonly logicalId: string;
  /** `aws:cdk:path` metadata: `VitalWebhookPipeline/Worker/Resource`. */
  readonly constructPath: string;
  readonly handler: string;
  readonly runtime: string;
  readonly timeoutSeconds: number;
  readonly memorySize: number;
  readonly logFormat?: string;
  readonly tracing: boolean;
  /** `Environment.Variables` as in the template: strings, or CloudFormation intrinsics (`{ Ref: ... }`). */
  readonly environment: Readonly<Record<string, unknown>>;
  /** Absolute path of the asset folder in the cloud assembly. */
  readonly assetDir: string;
}

interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, any>;
  readonly Metadata?: Record<string, any>;
}

/** The template of the assembly's one stack. */
export async function synthesizedTemplate(outdir: string): Promise<SynthesizedTemplate> {
  const manifest = JSON.parse(await readFile(path.join(outdir, 'manifest.json'), 'utf8')) as {
    artifacts: Record<string, { type: string; properties?: { templateFile?: string } }>;
  };
  const stacks = Object.values(manifest.artifacts).filter((artifact) => artifact.type === 'aws:cloudformation:stack');
  if (stacks.length !== 1) throw new Error(`The app synthesizes ${stacks.length} stacks, not one`);
  return JSON.parse(await readFile(path.join(outdir, stacks[0]!.properties!.templateFile!), 'utf8')) as SynthesizedTemplate;
}

/**
 * The stacks' Lambda functions whose code is a file asset of the assembly. Each function's asset is
 * found through its `aws:asset:path` metadata and checked against the asset manifest: the folder is
 * the source of the zip published under the function's `Code.S3Key`, so it is the code that ships.
 */
export async function synthesizedFunctions(outdir: string): Promise<SynthesizedFunction[]> {
  const manifest = JSON.parse(await readFile(path.join(outdir, 'manifest.json'), 'utf8')) as {
    artifacts: Record<string, { type: string; properties?: { templateFile?: string; file?: string } }>;
  };
  const uploads = new Map<string, { path: string; packaging: string }>();
  for (const artifact of Object.values(manifest.artifacts)) {
    if (artifact.type !== 'cdk:asset-manifest') continue;
    const assets = JSON.parse(await readFile(path.join(outdir, artifact.properties!.file!), 'utf8')) as {
      files: Record<string, { source: { path: string; packaging: string }; destinations: Record<string, { objectKey: string }> }>;
    };
    for (const file of Object.values(assets.files)) {
      for (const destination of Object.values(file.destinations)) uploads.set(destination.objectKey, file.source);
    }
  }
  const functions: SynthesizedFunction[] = [];
  for (const artifact of Object.values(manifest.artifacts)) {
    if (artifact.type !== 'aws:cloudformation:stack') continue;
    const template = JSON.parse(await readFile(path.join(outdir, artifact.properties!.templateFile!), 'utf8')) as {
      Resources: Record<string, TemplateResource>;
    };
    for (const [logicalId, resource] of Object.entries(template.Resources)) {
      if (resource.Type !== 'AWS::Lambda::Function' || resource.Metadata?.['aws:asset:property'] !== 'Code') continue;
      const properties = resource.Properties!;
      const assetPath = String(resource.Metadata['aws:asset:path']);
      const upload = uploads.get(String(properties.Code?.S3Key));
      if (!upload || upload.path !== assetPath || upload.packaging !== 'zip') {
        throw new Error(`${logicalId}: Code.S3Key is not published from its aws:asset:path ${assetPath}`);
      }
      functions.push({
        logicalId,
        constructPath: String(resource.Metadata['aws:cdk:path']),
        handler: properties.Handler,
        runtime: properties.Runtime,
        timeoutSeconds: properties.Timeout ?? 3,
        memorySize: properties.MemorySize ?? 128,
        logFormat: properties.LoggingConfig?.LogFormat,
        tracing: properties.TracingConfig?.Mode === 'Active',
        environment: properties.Environment?.Variables ?? {},
        assetDir: path.resolve(outdir, assetPath),
      });
    }
  }
  return functions;
}

/**
 * The file the Node.js runtime loads for the function's handler (`index.handler`: `index.js`, else
 * `index.mjs`, else `index.cjs`, in the asset folder), or undefined when there is none.
 */
export function handlerFile(fn: SynthesizedFunction): string | undefined {
  const slash = fn.handler.lastIndexOf('/');
  const moduleName = fn.handler.slice(slash + 1).split('.')[0]!;
  const base = path.join(fn.assetDir, fn.handler.slice(0, slash + 1), moduleName);
  return ['.js', '.mjs', '.cjs'].map((extension) => `${base}${extension}`).find((file) => existsSync(file));
}

/**
 * The packages the Lambda Node.js runtime provides besides the bundle: the AWS SDK v3 (`@aws-sdk/*`)
 * with everything it depends on (`@smithy/*`, `@aws-crypto/*`, `tslib`, ...), taken from the
 * project's node_modules. (The runtime ships every client, at its own version; the project has the
 * ones it uses.)
 */
export async function sdkRuntimePackages(): Promise<string[]> {
  const found = new Set<string>();
  const pending = (await readdir(path.join(NODE_MODULES, '@aws-sdk'))).map((name) => `@aws-sdk/${name}`);
  while (pending.length > 0) {
    const name = pending.pop()!;
    const manifest = path.join(NODE_MODULES, name, 'package.json');
    if (found.has(name) || !existsSync(manifest)) continue;
    found.add(name);
    const pkg = JSON.parse(await readFile(manifest, 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    pending.push(...Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies }));
  }
  return [...found].sort();
}

/**
 * Lays out one function's sandbox under `dir`: `task/` a copy of its asset folder (LAMBDA_TASK_ROOT),
 * `runtime/node_modules/` links to the SDK packages (NODE_PATH, the runtime's
 * `/var/runtime/node_modules`), `runtime/bootstrap.mjs` the runtime stand-in.
 */
export async function prepareSandbox(fn: SynthesizedFunction, dir: string, sdkPackages: readonly string[]): Promise<{ taskRoot: string; runtimeDir: string; nodePath: string }> {
  const taskRoot = path.join(dir, 'task');
  const runtimeDir = path.join(dir, 'runtime');
  const nodePath = path.join(runtimeDir, 'node_modules');
  await cp(fn.assetDir, taskRoot, { recursive: true });
  await mkdir(nodePath, { recursive: true });
  for (const name of sdkPackages) {
    const link = path.join(nodePath, name);
    await mkdir(path.dirname(link), { recursive: true });
    await symlink(path.join(NODE_MODULES, name), link, 'dir');
  }
  await copyFile(RUNTIME_SCRIPT, path.join(runtimeDir, 'bootstrap.mjs'));
  return { taskRoot, runtimeDir, nodePath };
}

/**
 * The environment Lambda gives a function besides its own variables (its reserved variables, for a
 * Node.js runtime): handler, runtime, identity, log settings, task root, NODE_PATH, X-Ray daemon.
 * Credentials, region and endpoints are the caller's (stand-ins). The SDK's shared config files are
 * pointed at nothing, so that no profile of the machine reaches the function.
 */
export function lambdaReservedEnvironment(
  fn: SynthesizedFunction,
  sandbox: { taskRoot: string; runtimeDir: string; nodePath: string },
  xrayDaemonAddress?: string,
): Record<string, string> {
  const [xrayHost, xrayPort] = (xrayDaemonAddress ?? '').split(':');
  return {
    _HANDLER: fn.handler,
    AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
    AWS_LAMBDA_FUNCTION_NAME: fn.logicalId,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memorySize),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.logicalId}`,
    AWS_LAMBDA_LOG_STREAM_NAME: `${new Date().toISOString().slice(0, 10).replace(/-/g, '/')}/[$LATEST]${randomBytes(16).toString('hex')}`,
    ...(fn.logFormat ? { AWS_LAMBDA_LOG_FORMAT: fn.logFormat } : {}),
    LAMBDA_TASK_ROOT: sandbox.taskRoot,
    LAMBDA_RUNTIME_DIR: sandbox.runtimeDir,
    NODE_PATH: sandbox.nodePath,
    TZ: ':UTC',
    LANG: 'en_US.UTF-8',
    PATH: [path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(path.delimiter),
    AWS_CONFIG_FILE: path.join(sandbox.runtimeDir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(sandbox.runtimeDir, 'no-aws-credentials'),
    ...(fn.tracing && xrayDaemonAddress
      ? {
          AWS_XRAY_CONTEXT_MISSING: 'LOG_ERROR',
          AWS_XRAY_DAEMON_ADDRESS: xrayDaemonAddress,
          _AWS_XRAY_DAEMON_ADDRESS: xrayHost!,
          _AWS_XRAY_DAEMON_PORT: xrayPort!,
        }
      : {}),
  };
}

/** What a handler threw, as Lambda reports it. */
export interface InvocationError {
  readonly errorType: string;
  readonly errorMessage: string;
}

export class InvocationFailedError extends Error {
  constructor(readonly functionName: string, readonly failure: InvocationError) {
    super(`${functionName}: ${failure.errorType}: ${failure.errorMessage}`);
  }
}

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly error?: InvocationError;
  readonly [key: string]: unknown;
}

/**
 * One function running in its sandbox. Its logs (stdout and stderr, where Lambda's go) are kept in
 * memory for assertions and never printed: a failure reports only the level and message of each line.
 */
export class SandboxedFunction {
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  private nextId = 0;
  private logs = '';
  private exit: string | undefined;

  private constructor(readonly name: string, private readonly child: ChildProcess, private readonly timeoutSeconds: number) {
    child.stdout!.on('data', (chunk: Buffer) => (this.logs += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.logs += chunk.toString()));
    child.on('message', (reply: Reply) => {
      this.pending.get(reply.id)?.resolve(reply);
      this.pending.delete(reply.id);
    });
    child.once('exit', (code, signal) => {
      this.exit = `exited (${code ?? signal})`;
      for (const { reject } of this.pending.values()) reject(new Error(`${name} ${this.exit}; its log: ${this.logSummary()}`));
      this.pending.clear();
    });
  }

  /**
   * Starts the runtime stand-in in `taskRoot` with exactly `environment` (the function's variables
   * and what Lambda adds); the handler is loaded by `init()` or the first `invoke()`.
   */
  static start(name: string, sandbox: { taskRoot: string; runtimeDir: string }, timeoutSeconds: number, environment: Record<string, string>): SandboxedFunction {
    const child = spawn(process.execPath, [path.join(sandbox.runtimeDir, 'bootstrap.mjs'), String(timeoutSeconds)], {
      cwd: sandbox.taskRoot,
      env: environment,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    return new SandboxedFunction(name, child, timeoutSeconds);
  }

  private request(message: Record<string, unknown>, timeoutMs: number): Promise<Reply> {
    if (this.exit) return Promise.reject(new Error(`${this.name} ${this.exit}; its log: ${this.logSummary()}`));
    const id = (this.nextId += 1);
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name} did not answer ${String(message.kind)} within ${timeoutMs} ms; its log: ${this.logSummary()}`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.send({ id, ...message });
    });
  }

  /** Where each specifier would be found from the bundle's folder (null: nowhere), without loading anything. */
  async reachable(specifiers: readonly string[]): Promise<Record<string, string | null>> {
    const reply = await this.request({ kind: 'resolve', specifiers }, 10_000);
    if (!reply.ok) throw new InvocationFailedError(this.name, reply.error!);
    return reply.reachable as Record<string, string | null>;
  }

  /** The cold start: loads the handler module as the runtime does. */
  async init(): Promise<void> {
    const reply = await this.request({ kind: 'init' }, 30_000);
    if (!reply.ok) throw new InvocationFailedError(this.name, reply.error!);
  }

  /** The packages (from node_modules, that is the runtime's SDK) the function has loaded so far, CommonJS ones. */
  async loadedPackages(): Promise<string[]> {
    const reply = await this.request({ kind: 'loaded' }, 10_000);
    if (!reply.ok) throw new InvocationFailedError(this.name, reply.error!);
    return reply.packages as string[];
  }

  /** One invocation, with a fresh sampled X-Ray trace header; rejects with what the handler threw. */
  async invoke<Result>(event: unknown): Promise<Result> {
    const traceId = `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')};Parent=${randomBytes(8).toString('hex')};Sampled=1`;
    const reply = await this.request({ kind: 'invoke', event, traceId }, this.timeoutSeconds * 1000 + 5_000);
    if (!reply.ok) throw new InvocationFailedError(this.name, reply.error!);
    return reply.result as Result;
  }

  /** Everything the function wrote: for assertions only, never to be printed. */
  get output(): string {
    return this.logs;
  }

  /** Level and message of each structured log line, and the first words of any other: safe to print. */
  logSummary(): string {
    const lines = this.logs.split('\n').filter(Boolean).map((line) => {
      try {
        const entry = JSON.parse(line) as { level?: string; message?: string; error?: unknown; reason?: unknown };
        if (entry.message === undefined) return '(a structured line without message: metrics)';
        return [entry.level, entry.message, entry.error, entry.reason].filter((part) => part !== undefined).join(' ');
      } catch {
        return line.slice(0, 200);
      }
    });
    return lines.length ? `\n  ${lines.slice(-20).join('\n  ')}` : '(empty)';
  }

  /** Kills the sandbox (Lambda freezes and discards environments; nothing to flush). */
  async stop(): Promise<void> {
    if (this.exit) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** A stand-in for the X-Ray daemon: counts the segment documents the functions send over UDP. */
export interface XRayDaemon {
  readonly address: string;
  /** Names of the (sub)segments received so far. */
  readonly segmentNames: readonly string[];
  stop(): Promise<void>;
}

export async function startXRayDaemon(): Promise<XRayDaemon> {
  const socket: Socket = createSocket('udp4');
  const names: string[] = [];
  socket.on('message', (datagram) => {
    // `{"format":"json","version":1}\n{...segment...}`: only its name is kept.
    const document = datagram.toString('utf8').split('\n')[1];
    try {
      const name = (JSON.parse(document ?? '') as { name?: unknown }).name;
      if (typeof name === 'string') names.push(name);
    } catch {
      names.push('(unparsable)');
    }
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(socket.address() as AddressInfo).port}`,
    segmentNames: names,
    stop: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
