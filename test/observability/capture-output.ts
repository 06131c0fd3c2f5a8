/**
 * Captures what the process writes to stdout and stderr as text: Powertools Logger and Metrics
 * (their own `Console` on `process.stdout`/`process.stderr`), `console.*`, warnings. Captured text is
 * kept out of the terminal. Binary chunks pass through untouched: under `node --test` the runner's
 * own reporter speaks to the parent process in serialized buffers on stdout, and those are not logs.
 */

export interface CapturedOutput {
  /** Everything captured so far, stdout and stderr interleaved in write order. */
  text(): string;
  /** The captured text split into non-empty lines. */
  lines(): string[];
  /** Total bytes captured (UTF-8). */
  bytes(): number;
  /** Stops capturing (idempotent). */
  restore(): void;
}

type Write = typeof process.stdout.write;

export function captureProcessOutput(options: { passThrough?: boolean } = {}): CapturedOutput {
  const chunks: string[] = [];
  const streams = [process.stdout, process.stderr] as const;
  const originals = streams.map((stream) => stream.write) as [Write, Write];
  streams.forEach((stream, index) => {
    const original = originals[index]!;
    stream.write = function write(this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
      if (typeof chunk !== 'string') return (original as (...args: unknown[]) => boolean).call(stream, chunk, ...rest);
      chunks.push(chunk);
      const callback = rest.find((argument) => typeof argument === 'function') as (() => void) | undefined;
      if (options.passThrough) return (original as (...args: unknown[]) => boolean).call(stream, chunk, ...rest);
      if (callback) queueMicrotask(callback);
      return true;
    } as Write;
  });
  let restored = false;
  return {
    text: () => chunks.join(''),
    lines: () => chunks.join('').split('\n').filter((line) => line.trim().length > 0),
    bytes: () => chunks.reduce((sum, chunk) => sum + Buffer.byteLength(chunk), 0),
    restore: () => {
      if (restored) return;
      restored = true;
      streams.forEach((stream, index) => {
        stream.write = originals[index]!;
      });
    },
  };
}
