import { fork } from 'node:child_process';
import path from 'node:path';
import type { Row } from './report';

/**
 * Each benchmark runs in a fresh Node process: no JIT state, heap or open handles carry over from one
 * benchmark to the next, and the code under test may log freely (Powertools writes JSON lines to
 * stdout, as in Lambda) without that output reaching the table. Its stdout goes to /dev/null, so the
 * cost of formatting logs is still paid; its stderr (Powertools' warnings among it) is kept and shown
 * only when the benchmark fails.
 */

const benchDirectory = import.meta.dirname;

export interface BenchmarkOutcome {
  readonly rows: Row[];
  /** Why the benchmark produced no rows, when it crashed or timed out. */
  readonly failure?: string;
}

/** Runs `run()` of `bench/<moduleFile>` in a child process, giving up after `timeoutMs`. */
export function runIsolated(moduleFile: string, timeoutMs: number): Promise<BenchmarkOutcome> {
  return new Promise((resolve) => {
    const child = fork(path.join(benchDirectory, 'benchmark-process.ts'), [path.join(benchDirectory, moduleFile)], {
      cwd: path.dirname(benchDirectory),
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    const stderr: Buffer[] = [];
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    let rows: Row[] | undefined;
    let failure: string | undefined;
    const timer = setTimeout(() => {
      failure = `did not finish within ${timeoutMs / 1000} s`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('message', (message) => {
      rows = message as Row[];
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (rows && !failure) return resolve({ rows });
      process.stderr.write(Buffer.concat(stderr));
      resolve({ rows: [], failure: failure ?? `crashed (exit ${code ?? signal}); its error is printed above` });
    });
  });
}
