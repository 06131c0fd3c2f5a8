import { performance } from 'node:perf_hooks';

/**
 * Timing shared by the benchmarks. The machines are small and noisy (2 cores, other work running),
 * so a figure is never one measurement: every task is warmed up first, then measured in several
 * rounds, and the rounds of a subject and of its baseline alternate, so that a slow spell of the
 * machine hits both alike. Figures are medians of those rounds.
 */

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** An operation under measurement; awaited only when it returns a promise, so sync code pays no tick. */
export type Operation = () => unknown;

async function runOnce(operation: Operation): Promise<void> {
  const result = operation();
  if (result instanceof Promise) await result;
}

/** Runs `measure` for every key, round after round, alternating keys within each round. */
async function alternate<K extends string>(
  keys: readonly K[],
  rounds: number,
  measure: (key: K) => Promise<number>,
): Promise<Record<K, number[]>> {
  const samples = Object.fromEntries(keys.map((key) => [key, [] as number[]])) as Record<K, number[]>;
  for (let round = 0; round < rounds; round += 1) {
    // Rotating the starting key keeps any one task from always running right after a GC-heavy one.
    for (let index = 0; index < keys.length; index += 1) {
      const key = keys[(index + round) % keys.length]!;
      samples[key].push(await measure(key));
    }
  }
  return samples;
}

export interface RateSampling {
  /** Time each operation runs unmeasured before the first round (JIT, caches, lazy initialisation). */
  readonly warmupMs: number;
  /** Length of one measured round. */
  readonly roundMs: number;
  readonly rounds: number;
}

/** Calls `operation` back to back for about `durationMs`; returns operations per second. */
async function rateFor(operation: Operation, durationMs: number): Promise<number> {
  let count = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < durationMs) {
    await runOnce(operation);
    count += 1;
    elapsed = performance.now() - start;
  }
  return (count * 1000) / elapsed;
}

/**
 * Operations per second of each operation, sequential calls (one at a time, as one Lambda container
 * handles one event at a time), median over alternating rounds.
 */
export async function medianRates<K extends string>(
  operations: Readonly<Record<K, Operation>>,
  sampling: RateSampling,
): Promise<Record<K, number>> {
  const keys = Object.keys(operations) as K[];
  for (const key of keys) await rateFor(operations[key], sampling.warmupMs);
  const samples = await alternate(keys, sampling.rounds, (key) => rateFor(operations[key], sampling.roundMs));
  return Object.fromEntries(keys.map((key) => [key, median(samples[key])])) as Record<K, number>;
}

export interface RunSampling {
  readonly warmupRuns: number;
  readonly runs: number;
}

/**
 * Median of each measurement over alternating runs, after `warmupRuns` unrecorded ones. A measurement
 * returns its own figure, for work timed elsewhere (inside a child process, say).
 */
export async function medianMeasurements<K extends string>(
  measurements: Readonly<Record<K, () => number | Promise<number>>>,
  sampling: RunSampling,
): Promise<Record<K, number>> {
  const keys = Object.keys(measurements) as K[];
  for (let run = 0; run < sampling.warmupRuns; run += 1) for (const key of keys) await measurements[key]();
  const samples = await alternate(keys, sampling.runs, async (key) => measurements[key]());
  return Object.fromEntries(keys.map((key) => [key, median(samples[key])])) as Record<K, number>;
}

/** Median wall time in milliseconds of each task (each a whole workload), over alternating runs. */
export function medianDurations<K extends string>(
  tasks: Readonly<Record<K, Operation>>,
  sampling: RunSampling,
): Promise<Record<K, number>> {
  const timed = Object.fromEntries(
    (Object.keys(tasks) as K[]).map((key) => [
      key,
      async () => {
        const start = performance.now();
        await runOnce(tasks[key]);
        return performance.now() - start;
      },
    ]),
  ) as Record<K, () => Promise<number>>;
  return medianMeasurements(timed, sampling);
}
