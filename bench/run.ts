import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { runIsolated } from './isolation';
import { formatNotes, formatTable, isMeasured, meetsTarget, ratioOf, type Row } from './report';

/**
 * `npm run bench`: runs every benchmark, each against a baseline measured in the same run, prints one
 * table of ratios and writes it to `bench/results/latest.json`. Targets are reported, never enforced:
 * the exit code is non-zero only when a benchmark itself crashed.
 */

interface Benchmark {
  readonly title: string;
  readonly moduleFile: string;
  readonly timeoutMs: number;
}

const BENCHMARKS: readonly Benchmark[] = [
  { title: 'verifier throughput', moduleFile: 'verifier-throughput.ts', timeoutMs: 90_000 },
  { title: 'bundle size and module init', moduleFile: 'bundles.ts', timeoutMs: 120_000 },
  { title: 'DynamoDB write units and change events', moduleFile: 'write-units.ts', timeoutMs: 90_000 },
  { title: 'worker throughput', moduleFile: 'worker-throughput.ts', timeoutMs: 90_000 },
  { title: 'backfill request rate', moduleFile: 'backfill-rate.ts', timeoutMs: 120_000 },
  { title: 'local pipeline end to end', moduleFile: 'end-to-end.ts', timeoutMs: 120_000 },
];

const resultsDirectory = path.join(import.meta.dirname, 'results');

const rows: Row[] = [];
let crashed = false;
const started = performance.now();
for (const benchmark of BENCHMARKS) {
  const benchmarkStarted = performance.now();
  process.stderr.write(`bench: ${benchmark.title} ...`);
  const outcome = await runIsolated(benchmark.moduleFile, benchmark.timeoutMs);
  process.stderr.write(` ${((performance.now() - benchmarkStarted) / 1000).toFixed(0)} s\n`);
  if (outcome.failure) {
    crashed = true;
    rows.push({ figure: benchmark.title, notMeasured: `the benchmark ${outcome.failure}` });
  }
  rows.push(...outcome.rows);
}
const seconds = (performance.now() - started) / 1000;

const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`;
process.stdout.write(`${formatTable(rows)}\n\nWhat limits each figure:\n${formatNotes(rows)}\n\n${machine}; ${seconds.toFixed(0)} s\n`);

await mkdir(resultsDirectory, { recursive: true });
const withVerdicts = rows.map((row) => (isMeasured(row) ? { ...row, ratio: ratioOf(row), met: meetsTarget(row) } : row));
await writeFile(
  path.join(resultsDirectory, 'latest.json'),
  `${JSON.stringify({ finishedAt: new Date().toISOString(), machine, seconds, rows: withVerdicts }, null, 2)}\n`,
);
if (crashed) process.exitCode = 1;
