import { styleText } from 'node:util';

/**
 * Human-readable output for the local pipeline: one line per request, one line per message a
 * consumer handled, and the handlers' Powertools logs (JSON in AWS) folded into the same format:
 *
 *     12:00:01.123  webhook   msg_2pX…  daily.data.workouts.created  accepted (202, 14 ms)
 *     12:00:02.401  worker    msg_2pX…  daily.data.workouts.created  processed
 *
 * Like the JSON logs it replaces, it never prints a payload: only ids, event types and outcomes.
 */

export type Level = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** One line of local output. */
export interface OutputLine {
  readonly source: string;
  readonly level?: Level;
  /** The delivery or message the line is about. */
  readonly id?: string;
  readonly eventType?: string;
  readonly text: string;
  readonly at?: Date;
}

const levelStyles: Record<Level, Parameters<typeof styleText>[0]> = {
  DEBUG: 'gray',
  INFO: 'reset',
  WARN: 'yellow',
  ERROR: 'red',
};

/** Formats a line; colours only when `color` (a terminal). */
export function formatLine(line: OutputLine, color: boolean): string {
  const time = (line.at ?? new Date()).toISOString().slice(11, 23);
  const style = (format: Parameters<typeof styleText>[0], text: string) => (color ? styleText(format, text) : text);
  const parts = [
    style('gray', time),
    style('cyan', line.source.padEnd(8)),
    line.id ?? '-',
    line.eventType ?? '-',
    style(levelStyles[line.level ?? 'INFO'], line.text),
  ];
  return parts.join('  ');
}

/** Where local output goes. */
export interface Output {
  line(line: OutputLine): void;
  /** A plain line (banners, settings). */
  plain(text: string): void;
}

/** Writes to the process's stdout and stderr (warnings and errors), coloured on a terminal. */
export function processOutput(): Output {
  return {
    line(line) {
      const stream = line.level === 'WARN' || line.level === 'ERROR' ? process.stderr : process.stdout;
      stream.write(`${formatLine(line, Boolean(stream.isTTY))}\n`);
    },
    plain(text) {
      process.stdout.write(`${text}\n`);
    },
  };
}

/** Keys of a Powertools log line that the local format shows elsewhere or not at all. */
const hiddenKeys = new Set([
  'level', 'message', 'timestamp', 'service', 'sampling_rate', 'xray_trace_id', 'cold_start', 'function_arn',
  'function_memory_size', 'function_name', 'function_request_id', 'svixId', 'eventType',
]);

function describeValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && 'name' in value && 'message' in value) {
    return `${String((value as { name: unknown }).name)}: ${String((value as { message: unknown }).message)}`;
  }
  return JSON.stringify(value);
}

/**
 * Turns one Powertools JSON log line into an output line; `undefined` for anything else. The source
 * is the function's name when the handler added its Lambda context to the logger.
 */
export function fromPowertoolsLog(text: string, defaultSource: string): OutputLine | undefined {
  let log: Record<string, unknown>;
  try {
    log = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof log !== 'object' || log === null || typeof log.level !== 'string' || !('message' in log)) return undefined;
  const level = (['DEBUG', 'INFO', 'WARN', 'ERROR'] as const).find((name) => name === log.level) ?? 'ERROR';
  const details = Object.entries(log)
    .filter(([key]) => !hiddenKeys.has(key))
    .map(([key, value]) => `${key}=${describeValue(value)}`);
  return {
    source: typeof log.function_name === 'string' ? log.function_name : defaultSource,
    level,
    ...(typeof log.svixId === 'string' ? { id: log.svixId } : {}),
    ...(typeof log.eventType === 'string' ? { eventType: log.eventType } : {}),
    text: [String(log.message), ...details].join(' '),
    ...(typeof log.timestamp === 'string' ? { at: new Date(log.timestamp) } : {}),
  };
}

/**
 * Routes the handlers' Powertools logs into `output`. Powertools writes to the global `console` in
 * its dev mode (`POWERTOOLS_DEV`, which the local pipeline sets), so its console methods are
 * wrapped; anything that is not a Powertools line passes through unchanged.
 */
export function routePowertoolsLogs(output: Output, defaultSource: string): void {
  for (const method of ['debug', 'info', 'warn', 'error', 'log'] as const) {
    const original = console[method].bind(console);
    console[method] = (...args: unknown[]) => {
      const text = args.length === 1 && typeof args[0] === 'string' ? args[0] : undefined;
      // Metrics are off locally, so Metrics' warning that an invocation published none is noise.
      if (text?.startsWith(EMPTY_METRICS_WARNING)) return;
      const line = text ? fromPowertoolsLog(text, defaultSource) : undefined;
      if (line) output.line(line);
      else original(...args);
    };
  }
}

const EMPTY_METRICS_WARNING = 'No application metrics to publish';
