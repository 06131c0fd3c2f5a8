import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { VitalEnvironment, VitalRegion } from '../functions/adapters/vital-api-client';
import { catalogueEventTypes } from '../functions/domain/catalogue';
import { localDataDir } from '../local/config';
import type { QueueName } from '../local/local-resources';
import { inspectDeadLetters, replayDeadLetters } from './commands/dead-letters';
import {
  createEndpoint,
  DASHBOARD_ROUTE,
  listEndpoints,
  MANAGEMENT_API_BASE_URL,
  portalLink,
  rotateSecret,
  type ManagementScope,
} from './commands/register';
import { sendEvents } from './commands/send';
import { readBackfills, readConnections, readRecords } from './record-queries';
import { resolveTarget, type PipelineTarget } from './target';
import { printJson, printTable, progress, progressDone, UsageError } from './terminal';

/**
 * `vital-pipeline`: drive and inspect the pipeline, local (default) or deployed (`--stack`).
 * Every failure ends as one line on stderr and a non-zero exit code (2 for a wrong command line).
 */

const HELP = `vital-pipeline: send, inspect, register and replay Vital webhook events

Usage: vital-pipeline <command> [options]

Commands:
  send        Sign and post events to the webhook endpoint
                --type <event type>   a built-in example (repeatable); --list-types lists them
                --file <event.json>   an event, or an array of events, from a file
                --user <id> --provider <slug> --at <iso> --seed <n>   shape the examples
                --duplicate <n>       deliver each event n more times with the same svix-id
                --url <url>           endpoint (default: the target's)
                --secret <whsec_...>  signing secret (default: the target's)
  inspect records      --user <id> --resource <name> [--provider <slug>] [--from <iso>] [--to <iso>]
  inspect backfills    --user <id>
  inspect connections  --user <id>
  inspect dlq          [--queue events|backfill]
                All inspect commands take --json for one JSON array on stdout.
  replay      Move dead letters back to their queue: [--queue events|backfill] [--svix-id <id>]...
  register    The endpoint on Vital's side, through the Junction Management API:
                register list
                register create [--url <webhook url>] [--description <text>] [--filter-type <type>]...
                register rotate --webhook-id <id>
                --management-key <key> (or VITAL_MANAGEMENT_KEY) --org <id> --team <id>
                --environment sandbox|production (default VITAL_ENVIRONMENT, else production)
                Without a management key: how to register in the dashboard, and the portal link
                when VITAL_API_KEY (or --api-key) is a team key.

Targets:
  default          the local pipeline of LOCAL_DATA_DIR (default .local/), started with npm start
  --stack <name>   a deployed stack (usual AWS credentials and region)
`;

const common = {
  help: { type: 'boolean', short: 'h' },
  stack: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

function parse<const O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...common, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function required(value: string | undefined, flag: string): string {
  if (!value) throw new UsageError(`${flag} is required`);
  return value;
}

function integer(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new UsageError(`${flag} must be a whole number, not "${value}"`);
  return parsed;
}

function isoTime(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  if (Number.isNaN(Date.parse(value))) throw new UsageError(`${flag} must be an ISO 8601 time, not "${value}"`);
  return value;
}

function queueOption(value: string | undefined): QueueName | undefined {
  if (value === undefined) return undefined;
  if (value !== 'events' && value !== 'backfill') throw new UsageError(`--queue must be events or backfill, not "${value}"`);
  return value;
}

async function withTarget<T>(stack: string | undefined, work: (target: PipelineTarget) => Promise<T>): Promise<T> {
  const target = await resolveTarget({ ...(stack ? { stack } : {}), dataDir: localDataDir() });
  try {
    return await work(target);
  } finally {
    target.close();
  }
}

async function send(args: string[]): Promise<void> {
  const { values } = parse(args, {
    type: { type: 'string', multiple: true },
    file: { type: 'string' },
    'list-types': { type: 'boolean' },
    user: { type: 'string' },
    provider: { type: 'string' },
    at: { type: 'string' },
    seed: { type: 'string' },
    duplicate: { type: 'string' },
    url: { type: 'string' },
    secret: { type: 'string' },
  });
  if (values['list-types']) {
    process.stdout.write(`${catalogueEventTypes().join('\n')}\n`);
    return;
  }
  const options = {
    types: values.type ?? [],
    ...(values.file ? { file: values.file } : {}),
    example: {
      ...(values.user ? { userId: values.user } : {}),
      ...(values.provider ? { provider: values.provider } : {}),
      ...(values.at ? { at: isoTime(values.at, '--at')! } : {}),
      ...(values.seed ? { seed: integer(values.seed, '--seed', 1) } : {}),
    },
    ...(values.url ? { url: values.url } : {}),
    ...(values.secret ? { secret: values.secret } : {}),
    duplicate: integer(values.duplicate, '--duplicate', 0),
  };
  const print = (result: { status: number; svixId: string; eventType: string; body: string }) =>
    values.json
      ? process.stdout.write(`${JSON.stringify({ status: result.status, svix_id: result.svixId, event_type: result.eventType, response: result.body })}\n`)
      : process.stdout.write(`${result.status}  ${result.svixId}  ${result.eventType}  ${result.body}\n`);
  // With both --url and --secret nothing of a target is needed, so none has to be running.
  if (options.url && options.secret) await sendEvents(undefined, options, print);
  else await withTarget(values.stack, (target) => sendEvents(target, options, print));
}

async function inspect(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    user: { type: 'string' },
    resource: { type: 'string' },
    provider: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    queue: { type: 'string' },
  });
  const what = positionals[0];
  await withTarget(values.stack, async (target) => {
    switch (what) {
      case 'records': {
        const rows = await readRecords(target.dynamodb, target.tables, {
          userId: required(values.user, '--user'),
          resource: required(values.resource, '--resource'),
          ...(values.provider ? { provider: values.provider } : {}),
          ...(values.from ? { from: isoTime(values.from, '--from')! } : {}),
          ...(values.to ? { to: isoTime(values.to, '--to')! } : {}),
        });
        if (values.json) return printJson(rows);
        return printTable(
          ['RESOURCE', 'PROVIDER', 'SOURCE TYPE', 'KEY', 'RECORD'],
          rows.map((row) => [row.resource, row.provider, row.source_type, row.key, JSON.stringify(row.record)]),
        );
      }
      case 'backfills': {
        const backfills = await readBackfills(target.dynamodb, target.tables.backfills, required(values.user, '--user'));
        if (values.json) return printJson(backfills.map(({ row }) => row));
        return printTable(
          ['RESOURCE', 'PROVIDER', 'STATUS', 'START', 'END', 'RECORDS', 'LAST ERROR'],
          backfills.map(({ row, lastError }) => [row.resource, row.provider, row.status, row.start_date, row.end_date, String(row.records), lastError ?? '']),
        );
      }
      case 'connections': {
        const connections = await readConnections(target.dynamodb, target.tables.connections, required(values.user, '--user'));
        if (values.json) return printJson(connections);
        return printTable(
          ['PROVIDER', 'STATUS', 'LAST ERROR', 'RESOURCES'],
          connections.map((c) => [
            c.provider,
            c.status,
            c.last_error_type ? `${c.last_error_type}: ${c.last_error_message ?? ''}` : '',
            c.resource_availability ? Object.keys(c.resource_availability as object).join(',') : '',
          ]),
        );
      }
      case 'dlq': {
        const letters = await inspectDeadLetters(target, {
          ...(queueOption(values.queue) ? { queue: queueOption(values.queue)! } : {}),
          onProgress: progress,
        });
        progressDone();
        if (values.json) return printJson(letters);
        return printTable(
          ['QUEUE', 'SVIX-ID', 'EVENT TYPE', 'RECEIVES', 'RECEIVED AT'],
          letters.map((l) => [l.queue, l.svix_id ?? l.message_id, l.event_type ?? '', String(l.receive_count), l.received_at]),
          80,
        );
      }
      default:
        throw new UsageError(`inspect what? records, backfills, connections or dlq${what ? ` (not "${what}")` : ''}`);
    }
  });
}

async function replay(args: string[]): Promise<void> {
  const { values } = parse(args, { queue: { type: 'string' }, 'svix-id': { type: 'string', multiple: true } });
  const counts = await withTarget(values.stack, (target) =>
    replayDeadLetters(target, {
      ...(queueOption(values.queue) ? { queue: queueOption(values.queue)! } : {}),
      ...(values['svix-id'] ? { svixIds: values['svix-id'] } : {}),
      onProgress: progress,
    }),
  );
  progressDone();
  if (values.json) return printJson(counts);
  for (const count of counts) {
    process.stdout.write(`${count.queue}: moved ${count.moved} message(s) from the DLQ back to the queue; ${count.left} left in the DLQ\n`);
  }
}

async function register(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    'management-key': { type: 'string' },
    'management-url': { type: 'string' },
    org: { type: 'string' },
    team: { type: 'string' },
    environment: { type: 'string' },
    region: { type: 'string' },
    'api-key': { type: 'string' },
    url: { type: 'string' },
    description: { type: 'string' },
    'filter-type': { type: 'string', multiple: true },
    'webhook-id': { type: 'string' },
  });
  const environment = (values.environment ?? process.env.VITAL_ENVIRONMENT ?? 'production') as VitalEnvironment;
  if (environment !== 'sandbox' && environment !== 'production') {
    throw new UsageError(`--environment must be sandbox or production, not "${environment}"`);
  }
  const managementKey = values['management-key'] ?? process.env.VITAL_MANAGEMENT_KEY;
  if (!managementKey) {
    process.stdout.write(`${DASHBOARD_ROUTE}\n`);
    const apiKey = values['api-key'] ?? process.env.VITAL_API_KEY;
    if (!apiKey) {
      process.stdout.write('Set VITAL_API_KEY (a team API key) to get a direct link to the webhook portal.\n');
      return;
    }
    const region = (values.region ?? process.env.VITAL_REGION ?? 'us') as VitalRegion;
    const link = await portalLink({
      apiKey,
      environment,
      region,
      ...(process.env.VITAL_API_BASE_URL ? { baseUrlOverride: process.env.VITAL_API_BASE_URL } : {}),
    });
    process.stdout.write(`Webhook portal: ${link}\n`);
    return;
  }
  const scope: ManagementScope = {
    baseUrl: values['management-url'] ?? process.env.VITAL_MANAGEMENT_API_BASE_URL ?? MANAGEMENT_API_BASE_URL,
    managementKey,
    orgId: required(values.org, '--org'),
    teamId: required(values.team, '--team'),
    environment,
  };
  switch (positionals[0] ?? 'list') {
    case 'list': {
      const endpoints = await listEndpoints(scope);
      if (values.json) return printJson(endpoints);
      return printTable(
        ['ID', 'URL', 'DISABLED', 'EVENT TYPES', 'DESCRIPTION'],
        endpoints.map((e) => [e.id, e.url, e.disabled ? 'yes' : 'no', e.filter_types?.join(',') || 'all', e.description ?? '']),
        80,
      );
    }
    case 'create': {
      const url = values.url ?? (await withTarget(values.stack, async (target) => target.webhookUrl));
      if (/^https?:\/\/(127\.|localhost|\[::1\])/.test(url)) {
        process.stderr.write(`Note: ${url} is on this machine; Vital can only deliver to a public URL (a tunnel, or a deployed --stack).\n`);
      }
      const { endpoint, secret } = await createEndpoint(scope, {
        url,
        ...(values.description ? { description: values.description } : {}),
        ...(values['filter-type'] ? { filterTypes: values['filter-type'] } : {}),
      });
      if (values.json) return printJson({ ...endpoint, secret });
      process.stdout.write(`Created endpoint ${endpoint.id} for ${endpoint.url}\n`);
      process.stdout.write(`Signing secret: ${secret}\n`);
      process.stdout.write('Store it as the pipeline\'s signing secret (Secrets Manager in AWS, VITAL_WEBHOOK_SECRET locally).\n');
      return;
    }
    case 'rotate': {
      const webhookId = required(values['webhook-id'], '--webhook-id');
      const secret = await rotateSecret(scope, webhookId);
      if (values.json) return printJson({ id: webhookId, secret });
      process.stdout.write(`Rotated the signing secret of ${webhookId}. New secret: ${secret}\n`);
      process.stdout.write(
        'Svix signs with the old and the new secret for 24 h: store {"current": "<new>", "previous": "<old>"} as the signing secret meanwhile.\n',
      );
      return;
    }
    default:
      throw new UsageError(`register what? list, create or rotate (not "${positionals[0]}")`);
  }
}

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = { send, inspect, replay, register };

/** Runs the CLI on `argv` (without node and script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h' || rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  const run = COMMANDS[command];
  try {
    if (!run) throw new UsageError(`Unknown command "${command}"`);
    await run(rest);
    return 0;
  } catch (error) {
    progressDone();
    const message = ((error as Error).message ?? String(error)).split('\n')[0];
    process.stderr.write(`vital-pipeline: ${message}${error instanceof UsageError ? ' (see vital-pipeline --help)' : ''}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
