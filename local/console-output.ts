import { styleText } from 'node:util';
import type { ChangeDetailType } from '../functions/domain/change-events';
import type { DeliveredEvent } from './eventbridge-stand-in';

/**
 * Human-readable output for the local pipeline: one line per request, one line per message a
 * consumer handled, one per change event published, and the handlers' Powertools logs (JSON in
 * AWS) folded into the same format:
 *
 *     12:00:01.123  webhook   msg_2pX…  daily.data.workouts.created  accepted (202, 14 ms)
 *     12:00:02.395  events    msg_2pX…  Records Changed  user u-1  oura/workouts  2026-05-14T06:00:00.000000Z..2026-05-14T07:00:00.000000Z  1 created, 0 updated, 0 unchanged
 *     12:00:02.401  worker    msg_2pX…  daily.data.workouts.created  stored 1 record
 *     12:00:05.017  worker    msg_2pX…  daily.data.workouts.created  duplicate: already stored, nothing changed
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

/** A log line's JSON object; `undefined` for text that is not one. */
function jsonObjectOf(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One Powertools JSON log object as an output line; `undefined` for anything else. The source is the
 * function's name when the handler added its Lambda context to the logger.
 */
function lineOf(log: Record<string, unknown>, defaultSource: string): OutputLine | undefined {
  if (typeof log.level !== 'string' || !('message' in log)) return undefined;
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

/** The worker's log of one processed delivery (`functions/worker.ts`): what it did, in counts. */
export interface DeliveryLog {
  readonly svixId: string;
  readonly action: string;
  readonly result: string;
  readonly written: number;
  readonly stale: number;
  readonly unchanged: number;
}

/** The worker's "Delivery processed" log line, read from its Powertools JSON; `undefined` for any other line. */
export function deliveryLogOf(text: string): DeliveryLog | undefined {
  const log = jsonObjectOf(text);
  return log && deliveryOf(log);
}

function deliveryOf(log: Record<string, unknown>): DeliveryLog | undefined {
  if (log.message !== 'Delivery processed' || typeof log.svixId !== 'string') return undefined;
  const count = (value: unknown) => (typeof value === 'number' ? value : 0);
  return { svixId: log.svixId, action: String(log.action), result: String(log.result), written: count(log.written), stale: count(log.stale), unchanged: count(log.unchanged) };
}

const UNITS: Readonly<Record<string, string>> = {
  summary: 'record',
  timeseries: 'sample',
  workout_stream: 'stream notice',
  connection: 'connection state',
};

const counted = (count: number, unit: string) => `${count} ${unit}${count === 1 ? '' : 's'}`;

/** What a processed delivery did, in words: stored, a duplicate, stale, kept aside, nothing to store, or dropped (its user erased). */
export function describeDelivery(delivery: DeliveryLog): string {
  if (delivery.result === 'erased') return 'user erased: dropped, nothing stored (the message predates the erasure)';
  switch (delivery.action) {
    case 'unknown':
      return 'unknown event type: body kept for a replay (vital-pipeline inspect unrecognised)';
    case 'foreign_team':
      return "quarantined: another team's event, kept aside (EXPECTED_TEAM_ID)";
    case 'out_of_scope':
      return 'nothing to store: outside what the pipeline keeps';
    case 'device':
      return 'nothing to store: a device event';
    case 'historical':
      // The notice's outcome is its run's: queued, already under way, or replacing an older one.
      return 'backfill requested (vital-pipeline inspect backfills)';
  }
  const unit = UNITS[delivery.action] ?? 'record';
  const rest = [
    delivery.stale > 0 ? `${counted(delivery.stale, 'stale version')} ignored` : '',
    delivery.unchanged > 0 ? `${counted(delivery.unchanged, unit)} already stored` : '',
  ].filter(Boolean);
  switch (delivery.result) {
    case 'wrote':
      return [`stored ${counted(delivery.written, unit)}`, ...rest].join(', ');
    case 'stale':
      return `stale version ignored: newer data is stored${delivery.unchanged > 0 ? ` (${rest[1]})` : ''}`;
    case 'duplicate':
      return 'duplicate: already stored, nothing changed';
  }
  return 'processed';
}

/**
 * Routes the handlers' Powertools logs into `output`. Powertools writes to the global `console` in
 * its dev mode (`POWERTOOLS_DEV`, which the local pipeline sets), so its console methods are
 * wrapped; anything that is not a Powertools line passes through unchanged.
 */
export function routePowertoolsLogs(
  output: Output,
  defaultSource: string,
  options: {
    /** The least level shown, as Powertools names them (`SILENT`: none). @default 'DEBUG' */
    readonly minLevel?: string;
    /** Receives each "Delivery processed" line of the worker instead of the output. */
    readonly onDelivery?: (delivery: DeliveryLog) => void;
  } = {},
): void {
  const least = Math.max(0, POWERTOOLS_LEVELS.indexOf(options.minLevel?.toUpperCase() ?? 'DEBUG'));
  const shown = (level: Level) => POWERTOOLS_LEVELS.indexOf(level) >= least;
  for (const method of ['debug', 'info', 'warn', 'error', 'log'] as const) {
    const original = console[method].bind(console);
    console[method] = (...args: unknown[]) => {
      const text = args.length === 1 && typeof args[0] === 'string' ? args[0] : undefined;
      // Metrics are off locally, so Metrics' warning that an invocation published none is noise.
      if (text?.startsWith(EMPTY_METRICS_WARNING)) return;
      // Parsed once: the same line is looked at as a delivery and as a log line.
      const log = text === undefined ? undefined : jsonObjectOf(text);
      const delivery = log && options.onDelivery ? deliveryOf(log) : undefined;
      if (delivery) return options.onDelivery!(delivery);
      const line = log && lineOf(log, defaultSource);
      if (!line) original(...args);
      else if (shown(line.level ?? 'INFO')) output.line(line);
    };
  }
}

/** Powertools' log levels, least first. */
const POWERTOOLS_LEVELS: readonly string[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'];

const EMPTY_METRICS_WARNING = 'No application metrics to publish';

/**
 * What a line about a change event shows, each part read from its detail ('-' when it has none):
 * who, what (provider/resource), the time range, the counts, and the delivery or backfill run it
 * came from. A detail holds no sample value or body (`functions/domain/change-events.ts`), and only
 * these named fields are read from it.
 */
export interface ChangeEventFacts {
  readonly user: string;
  readonly subject: string;
  readonly range: string;
  readonly counts: string;
  /** The svix-id of the delivery, or `run <id>` of the backfill run. */
  readonly origin: string;
}

type Fields = Readonly<Record<string, unknown>>;

/** A text field of a detail (or of an object in it), undefined when absent or empty. */
const textOf = (fields: Fields, name: string): string | undefined => {
  const value = fields[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
};
/** A count of a detail, `?` when absent. */
const countOf = (fields: Fields, name: string): string => (typeof fields[name] === 'number' ? String(fields[name]) : '?');
const objectOf = (fields: Fields, name: string): Fields => (typeof fields[name] === 'object' && fields[name] !== null ? (fields[name] as Fields) : {});

export function changeEventFacts(event: Pick<DeliveredEvent, 'detail-type' | 'detail'>): ChangeEventFacts {
  const { detail } = event;
  const timeRange = objectOf(detail, 'time_range');
  const from = textOf(timeRange, 'from') ?? textOf(detail, 'start_date');
  const to = textOf(timeRange, 'to') ?? textOf(detail, 'end_date');
  const subject = [textOf(detail, 'provider'), textOf(detail, 'resource') ?? textOf(detail, 'event_type')].filter(Boolean).join('/');
  const run = textOf(detail, 'backfill_run');
  return {
    user: textOf(detail, 'user_id') ?? '-',
    subject: subject || '-',
    range: from && to ? `${from}..${to}` : '-',
    counts: changeCounts(event['detail-type'], detail),
    origin: textOf(detail, 'svix_id') ?? (run ? `run ${run}` : '-'),
  };
}

/** The counts (or outcome) a detail-type carries, in words. */
function changeCounts(detailType: string, detail: Fields): string {
  const text = (name: string) => textOf(detail, name) ?? '?';
  // Typed, so that a detail-type renamed in the contract fails to compile here.
  switch (detailType as ChangeDetailType) {
    case 'Records Changed': {
      const records = objectOf(detail, 'records');
      return `${countOf(records, 'created')} created, ${countOf(records, 'updated')} updated, ${countOf(records, 'unchanged')} unchanged`;
    }
    case 'Connection Changed':
      return `${text('change')}${textOf(detail, 'error_type') ? ` (${text('error_type')})` : ''}, ${text('result')}`;
    case 'Backfill Progress':
      return `window ${countOf(detail, 'windows_done')} of ${countOf(detail, 'windows_total')}, ${countOf(detail, 'pages_done')} pages, ${countOf(detail, 'records_stored')} records stored`;
    case 'Backfill Finished':
      return `${text('state')}, ${countOf(detail, 'records_stored')} records stored${textOf(detail, 'reason') ? `: ${text('reason')}` : ''}`;
    case 'Events Held Back':
      return `${countOf(detail, 'count')} held back: ${text('reason')}`;
    default:
      return '-';
  }
}

/** The local pipeline's console line for a change event it published. */
export function changeEventLine(event: DeliveredEvent): OutputLine {
  const facts = changeEventFacts(event);
  return {
    source: 'events',
    ...(facts.origin !== '-' ? { id: facts.origin } : {}),
    eventType: event['detail-type'],
    text: `user ${facts.user}  ${facts.subject}  ${facts.range}  ${facts.counts}`,
  };
}
