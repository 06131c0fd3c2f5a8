import { parseArgs, type ParseArgsConfig, type ParseArgsOptionsConfig } from 'node:util';
import packageJson from '../package.json' with { type: 'json' };
import type { VitalEnvironment, VitalRegion } from '../functions/adapters/vital-api-client';
import { RETRY_SCOPE } from '../functions/domain/backfill-retry';
import { catalogueEventTypes, RESOURCES } from '../functions/domain/catalogue';
import { CHANGE_DETAIL_TYPES } from '../functions/domain/change-event-schemas';
import type { ChangeDetailType } from '../functions/domain/change-events';
import { localDataDir } from '../local/config';
import type { QueueName } from '../local/local-resources';
import { retryBackfills, type RetrySelection } from './commands/backfill-retry';
import { connectionResources, describeProgress, followResync, NothingToResyncError, requestResync, unfinishedError, type ResyncResult } from './commands/backfill-resync';
import { instantKey } from '../functions/domain/record-identity';
import { DeadLetterNotFoundError, inspectDeadLetters, replayDeadLetters } from './commands/dead-letters';
import { inspectUnrecognised, replayUnrecognised } from './commands/unrecognised';
import { inspectHeldBack } from './commands/held-back';
import { describeEvent, detailTypeNamed, likelyDetailTypes, localEventsFile, readEventFile, readEventQueue, tapQueueOf, type EventReading } from './commands/events';
import { SIMULATED_RESOURCES, simulateConnect } from './commands/simulate';
import { confirmErasure, eraseUser, operatorOf, receiptJson } from './commands/erase';
import { ERASED_STORES } from '../functions/domain/erasure';
import { randomUUID } from 'node:crypto';
import { DoctorFailedError, formatCheck, runDoctor } from './commands/doctor';
import {
  createEndpoint,
  DASHBOARD_ROUTE,
  listEndpoints,
  MANAGEMENT_API_BASE_URL,
  portalLink,
  rotateSecret,
  type ManagementScope,
} from './commands/register';
import { onlyOption, secretLabel, setStackSecrets } from './commands/secrets';
import { sendEvents, signEvents, type DeliveryFacts, type SendResult, type SignedDelivery } from './commands/send';
import { requireResource, UnknownResourceError, readBackfills, readConnections, readRecords, readWorkoutStreamJobs, type BackfillRow } from './record-queries';
import { S3WorkoutStreamStore } from '../functions/adapters/workout-stream-store';
import { resolveTarget, stackOptions, type PipelineTarget, type StackLocation } from './target';
import { didYouMean, printJson, printTable, progress, progressDone, suggesting, UsageError } from './terminal';

/**
 * `vital-pipeline`: drive and inspect the pipeline, local (default) or deployed (`--stack`).
 * Every failure ends as one line on stderr and a non-zero exit code (2 for a wrong command line).
 */

/**
 * Each command's usage line and options: `vital-pipeline <command> --help` prints its own,
 * `vital-pipeline --help` all of them.
 */
const COMMAND_HELP = {
  send: {
    usage: 'send [options]',
    options: `  send        Sign and post events to the webhook endpoint
                --type <event type>   a built-in example (repeatable); --list-types lists them
                --file <event.json>   an event, or an array of events, from a file
                --user <id> --provider <slug> --at <iso> --seed <n>   shape the examples
                --duplicate <n>       deliver each event n more times with the same svix-id
                --url <url>           endpoint (default: the target's)
                --secret <whsec_...>  signing secret (default: the target's)
                --print               sign each event and print it (svix-id, headers, body) as one
                                      JSON line instead of sending it
                Each line sent says the status, svix-id, event type, user and provider.
`,
  },
  inspect: {
    usage: 'inspect <what> [options]',
    options: `  inspect records      --user <id> --resource <name> [--provider <slug>] [--from <iso>] [--to <iso>]
  inspect resources    every resource name --resource takes, summary, timeseries or stream (no pipeline needed)
  inspect backfills    --user <id>   historical runs, and a row per workout-stream job (queued until its
                         stream is stored)
  inspect connections  --user <id>
  inspect dlq          [--queue events|backfill]   each dead letter with the worker's attempts and its
                         last error (a backfill job: its run's last error); looking changes neither
  inspect unrecognised   events of a type this deployment did not know, kept in the raw-body bucket
                         (svix-id, event type, received at, size; never the body)
  inspect held-back    [--user <id>]   backfill records that break the schema, kept aside in the
                         raw-body bucket (user, provider, resource, run, window, page, index, reason,
                         kept at; never the record)
                All inspect commands take --json for one JSON array on stdout.
`,
  },
  events: {
    usage: 'events [options]',
    options: `  events      The change events the pipeline published, one line each: time, detail-type, user,
              provider/resource, time range, counts, svix-id or backfill run (never a value)
                --follow              then the new ones as they come, until Ctrl-C
                --user <id>           only this user's
                --type <detail-type>  only one of ${CHANGE_DETAIL_TYPES.slice(0, 2).join(', ')},
                                      ${CHANGE_DETAIL_TYPES.slice(2).join(', ')}
                                      (any case; records-changed works too)
                --json                each event as one JSON line, as EventBridge delivers it
              Locally: the events the pipeline keeps in change-events.jsonl in its data folder, also
              while it is stopped. With --stack it consumes the stack's tap queue (output
              ChangeEventsQueueUrl): what it prints is deleted from the queue, so each event is shown
              once; what --user or --type leave out stays for another read, and each read counts
              toward the receives after which the queue moves a message to its dead-letter queue.
              Without --follow it stops when the queue is empty.
`,
  },
  replay: {
    usage: 'replay [--unrecognised] [options]',
    options: `  replay      Move dead letters back to their queue: [--queue events|backfill] [--svix-id <id>]...
              An --svix-id no dead letter has is named, with exit code 1 (the others are moved).
  replay --unrecognised [--svix-id <id>]...
              Queue kept events of an unrecognised type again, with their original svix-id and receive
              time, once the catalogue knows their type (update the pipeline first); the others are
              skipped and stay kept. Replaying twice is harmless.
`,
  },
  backfill: {
    usage: 'backfill [retry] [options]',
    options: `  backfill   Resync: fetch a range again from the Vital API, as a historical notice's backfill does
             (windowed, checkpointed, rate-limited; stored through the same version rules, so a
             newer stored version is never overwritten; an unfinished run's remainder is kept):
                --user <id> --provider <slug>
                --resource <name> | --all   one resource, or every one the user's connection with
                                      the provider announced that the catalogue can backfill
                --from <iso> --to <iso>   the range, ISO 8601 (a bare date is its midnight UTC)
                --wait                show progress until the runs finish; exit 1 if any failed
                                      (Ctrl-C stops the waiting, not the runs)
                --json                one JSON array: per resource the outcome (queued, added,
                                      covered or skipped, with why), run id and range
                Without --wait it prints the run ids and the inspect backfills command to follow them.
  backfill retry   Resume failed backfill runs from their checkpoints:
                --user <id> --provider <slug> --resource <name>   one run
                --user <id>                                       every failed run of a user
                --all                                             every failed run of the deployment
                ${RETRY_SCOPE}
`,
  },
  erase: {
    usage: 'erase --user <id> [--yes] [options]',
    options: `  erase       Remove every copy of one user's data: summaries, timeseries, connections, backfill
              status, workout streams, held-back records, claim-checked, quarantined and unrecognised
              bodies (every version of each object). First it records the erasure (a tombstone): from
              then on the pipeline stores nothing of the user that was created before it (redeliveries,
              recoveries, DLQ replays, old historical notices), while data Vital creates later is stored.
              It sweeps, waits the longest function timeout, sweeps again, and prints the receipt it
              keeps in the erasures table (counts per store, when, by whom; no health data).
              Run it again after an interruption: it finishes the same erasure. See docs/erasure.md.
                --user <id>           the Vital user id
                --yes                 do not ask to type the user id again (needed without a terminal)
                --json                the receipt as one JSON object
`,
  },
  simulate: {
    usage: 'simulate connect --provider <slug> [options]',
    options: `  simulate connect   A user connects a provider, against the local pipeline's simulated Vital API
                (npm start without VITAL_API_KEY): the connection event, a historical notice per
                resource (${SIMULATED_RESOURCES.join(', ')}), the backfills fetching that history,
                then today's daily events; prints what was stored.
                --provider <slug>     e.g. oura, garmin, fitbit
                --user <id>           the Vital user id (default: a new one)
                --days <n>            days of history announced (default 30, at most 365)
`,
  },
  register: {
    usage: 'register list|create|rotate [options]',
    options: `  register    The endpoint on Vital's side, through the Junction Management API:
                register list
                register create [--url <webhook url>] [--description <text>] [--filter-type <type>]...
                register rotate --webhook-id <id>
                --management-key <key> (or VITAL_MANAGEMENT_KEY) --org <id> --team <id>
                --environment sandbox|production (default VITAL_ENVIRONMENT, else production)
                Without a management key: how to register in the dashboard, and the portal link
                when VITAL_API_KEY (or --api-key) is a team key (--vital-region us|eu, default
                VITAL_REGION, else us).
`,
  },
  secrets: {
    usage: 'secrets set --stack <name> [options]',
    options: `  secrets     Store a deployed stack's webhook signing secret (whsec_...) and Vital team API key in
              its Secrets Manager secrets, after checking their format:
                secrets set --stack <name> [--signing-secret-only | --api-key-only]
                Typed with echo off at a terminal, or read from stdin one value per line (signing
                secret, then API key). Never taken as arguments, never printed.
`,
  },
  doctor: {
    usage: 'doctor [options]',
    options: `  doctor      Is the pipeline ready? Stack outputs (or the local pipeline), signing secret, Vital API
              key, one synthetic signed event stored and removed again (user vital-pipeline-doctor),
              dead-letter queues; for a stack also the alarm subscription and the Junction endpoint.
              One line per check, ✓ or ✗ with the fix (- when not checked); exit code 1 on any ✗.
                --wait <seconds>      how long the synthetic event may take to be stored (default 30)
                --team <id>           team id of the synthetic event (a stack with expectedTeamId needs it)
                --environment sandbox|production --vital-region us|eu   where the API key is checked
                                      (default VITAL_ENVIRONMENT, VITAL_REGION; VITAL_API_BASE_URL overrides)
                --management-key <key> --org <id> --team <id>   also check the endpoint is registered
                --json                one JSON array of {check, ok, detail, fix}; ok is null when not checked
`,
  },
} as const;

type CommandName = keyof typeof COMMAND_HELP;

const TARGETS = `Targets:
  default          the local pipeline of LOCAL_DATA_DIR (default .local/ in the project folder,
                   whatever the working directory), started with npm start
  --stack <name> [--region <aws region>]
                   a deployed stack, through the usual AWS credentials; in --region, else in the
                   region of AWS_REGION or the profile
`;

const HELP = `vital-pipeline: send, inspect, register and replay Vital webhook events; check and configure a deployment

Usage: vital-pipeline <command> [options]
       vital-pipeline <command> --help    that command's usage and options
       vital-pipeline --version

Commands:
${Object.values(COMMAND_HELP).map((command) => command.options).join('')}
${TARGETS}`;

/** What `vital-pipeline <command> --help` prints: that command's usage and options, and the targets. */
const commandHelp = (name: CommandName): string => `Usage: vital-pipeline ${COMMAND_HELP[name].usage}\n\n${COMMAND_HELP[name].options}\n${TARGETS}`;

const common = {
  help: { type: 'boolean', short: 'h' },
  stack: { type: 'string' },
  region: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/** An AWS region's name: `eu-west-1`, `us-gov-west-1`, `cn-north-1`, ... */
const AWS_REGION_NAME = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/** Parses a command's options; a wrong command line is a `UsageError` in the CLI's words. */
function parse<const O extends ParseArgsOptionsConfig>(command: CommandName, args: string[], options: O) {
  const config = { args, options: { ...common, ...options }, allowPositionals: true } as const;
  let parsed;
  try {
    parsed = parseArgs({ ...config, strict: true });
  } catch (error) {
    if (!String((error as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS_')) throw error;
    throw new UsageError(`${command}: ${optionMistake(args, config.options) ?? (error as Error).message}`);
  }
  const { stack, region } = parsed.values as { stack?: string; region?: string };
  if (region !== undefined && !AWS_REGION_NAME.test(region)) {
    // doctor and register also take the Vital API's region, us or eu: the likelier meaning of a wrong --region there.
    const vitalRegion = Object.hasOwn(options, 'vital-region') ? '; the Vital API region is --vital-region' : '';
    throw new UsageError(`${command}: --region is the stack's AWS region, such as eu-west-1, not "${region}"${vitalRegion}`);
  }
  if (region !== undefined && !stack) throw new UsageError(`${command}: --region is the AWS region of a deployed stack: give it with --stack <name>`);
  return parsed;
}

/**
 * The first option Node's strict parse refuses, said in the CLI's words (Node's are "Option '--user
 * <value>' argument missing" and the like): read from the tokens of a lenient parse of the same line.
 */
function optionMistake(args: string[], options: ParseArgsOptionsConfig): string | undefined {
  const { tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = Object.hasOwn(options, token.name) ? options[token.name]! : undefined;
    if (!option) {
      // Suggested for long options only: a single letter is a few edits from too many names.
      const suggestion = token.rawName.startsWith('--') ? didYouMean(token.rawName, Object.keys(options).map((name) => `--${name}`)) : '';
      return `unknown option ${token.rawName}${suggestion ? `.${suggestion}` : ''}`;
    }
    if (option.type === 'boolean') {
      if (token.value !== undefined) return `${token.rawName} takes no value`;
    } else if (token.value === undefined) {
      return `${token.rawName} needs a value`;
    } else if (!token.inlineValue && token.value.length > 1 && token.value.startsWith('-')) {
      // `--user --json`: Node refuses to take an option as the value, unless it is given as --user=--json.
      return `${token.rawName} needs a value; one starting with "-" is given as ${token.rawName}=<value>`;
    }
  }
  return undefined;
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

/** An ISO 8601 date or time as the pipeline reads every time (`instantKey`, strict: no `Jan 5 2024`, no 2024-13-45). */
function isoTime(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  if (instantKey(value) === undefined) throw new UsageError(`${flag} must be an ISO 8601 time, not "${value}"`);
  return value;
}

function queueOption(value: string | undefined): QueueName | undefined {
  if (value === undefined) return undefined;
  if (value !== 'events' && value !== 'backfill') throw new UsageError(`--queue must be events or backfill, not "${value}"`);
  return value;
}

/** The stack `--stack` and `--region` name, if any. */
function stackLocation(values: { stack?: string; region?: string }): StackLocation | undefined {
  return values.stack ? { name: values.stack, ...(values.region ? { region: values.region } : {}) } : undefined;
}

async function withTarget<T>(values: { stack?: string; region?: string }, work: (target: PipelineTarget) => Promise<T>): Promise<T> {
  const stack = stackLocation(values);
  const target = await resolveTarget({ ...(stack ? { stack } : {}), dataDir: localDataDir() });
  try {
    return await work(target);
  } finally {
    target.close();
  }
}

async function send(args: string[]): Promise<void> {
  const { values } = parse('send', args, {
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
    print: { type: 'boolean' },
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
  const about = (facts: DeliveryFacts) => `user ${facts.userId ?? '-'}  provider ${facts.provider ?? '-'}`;
  const print = (result: SendResult) =>
    values.json
      ? process.stdout.write(
          `${JSON.stringify({ status: result.status, svix_id: result.svixId, event_type: result.eventType, user_id: result.userId ?? null, provider: result.provider ?? null, response: result.body })}\n`,
        )
      : process.stdout.write(`${result.status}  ${result.svixId}  ${result.eventType}  ${about(result)}  ${result.body}\n`);
  // --print: one JSON line per event, signed and not sent, to post with curl or keep as a fixture.
  const printSigned = (signed: SignedDelivery) =>
    process.stdout.write(`${JSON.stringify({ svix_id: signed.svixId, event_type: signed.eventType, user_id: signed.userId ?? null, provider: signed.provider ?? null, headers: signed.headers, body: signed.body })}\n`);
  const run = async (target: PipelineTarget | undefined): Promise<void> => {
    if (values.print) await signEvents(target, options, printSigned);
    else await sendEvents(target, options, print);
  };
  // With --secret (and --url, unless printing) nothing of a target is needed, so none has to be running.
  if (options.secret && (options.url || values.print)) await run(undefined);
  else await withTarget(values, run);
}

/** A wait for the API key in one table cell: what Vital answered (or that no key is stored), since when, next try. */
function describeWait(row: BackfillRow): string {
  const minute = (iso: string | undefined) => (iso ? `${iso.slice(0, 16)}Z` : '?');
  const answer = /HTTP \d{3}/.exec(row.waiting_reason ?? '')?.[0] ?? (/NotSet/.test(row.waiting_reason ?? '') ? 'no key stored' : 'key refused');
  return `${answer} since ${minute(row.waiting_since)}, next try ${minute(row.next_attempt_at)}`;
}

async function inspect(args: string[]): Promise<void> {
  const { values, positionals } = parse('inspect', args, {
    user: { type: 'string' },
    resource: { type: 'string' },
    provider: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    queue: { type: 'string' },
  });
  const what = positionals[0];
  // The catalogue needs no pipeline: every resource name `--resource` takes, with its kind.
  if (what === 'resources') {
    const resources = [...RESOURCES.values()].map(({ name, kind }) => ({ resource: name, kind }));
    return values.json ? printJson(resources) : printTable(['RESOURCE', 'KIND'], resources.map(({ resource, kind }) => [resource, kind]));
  }
  // A wrong resource name is told before any pipeline is looked for.
  if (what === 'records' && values.resource) requireResource(values.resource);
  await withTarget(values, async (target) => {
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
        const stack = stackLocation(values);
        // The commands suggested below name the same target.
        const sameTarget = stack ? ` ${stackOptions(stack)}` : '';
        const userId = required(values.user, '--user');
        const backfills = [
          ...(await readBackfills(target.dynamodb, target.tables.backfills, userId, { ...(stack ? { stack } : {}) })),
          ...(await readWorkoutStreamJobs(target.dynamodb, new S3WorkoutStreamStore(target.s3, target.bucket), target.tables.summaries, userId)).map((row) => ({
            row,
            ...(row.status === 'queued' ? { lastError: 'no stream stored yet (a workout without one, such as a manual entry, never gets one)' } : {}),
          })),
        ];
        if (values.json) return printJson(backfills.map(({ row }) => row));
        printTable(
          ['RESOURCE', 'PROVIDER', 'STATUS', 'START', 'END', 'RECORDS', 'HELD BACK', 'LAST ERROR'],
          backfills.map(({ row, lastError }: { row: BackfillRow; lastError?: string }) => [
            row.workout_id ? `workout_stream ${row.workout_id}` : row.resource,
            row.provider,
            row.status,
            row.start_date,
            row.end_date,
            String(row.records),
            String(row.held_back),
            row.status === 'waiting_for_api_key'
              ? describeWait(row)
              : row.status === 'failed'
                ? `failed ${row.failed_at ? `${row.failed_at.slice(0, 19)}Z` : '(time unknown)'}: ${row.failure_reason}`
                : (lastError ?? ''),
          ]),
        );
        if (backfills.some(({ row }) => row.status === 'failed')) {
          process.stdout.write(`\nFailed runs: vital-pipeline backfill retry --user ${values.user}${sameTarget}. ${RETRY_SCOPE}\n`);
        }
        if (backfills.some(({ row }) => row.held_back > 0)) {
          process.stdout.write(
            `\nHeld-back records: vital-pipeline inspect held-back --user ${values.user}${sameTarget}. ` +
              'Records Vital sent that break the schema, kept aside while the rest of their page was stored.\n',
          );
        }
        // The hint is the same for every waiting run: said once, in full, under the table.
        const waiting = backfills.find(({ row }) => row.hint);
        if (waiting) process.stdout.write(`\nWaiting for the Vital API key: ${waiting.row.hint}\n`);
        return;
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
          onWarning: (text) => process.stderr.write(`vital-pipeline: ${text}\n`),
        });
        progressDone();
        if (values.json) return printJson(letters);
        return printTable(
          ['QUEUE', 'SVIX-ID', 'EVENT TYPE', 'RECEIVED AT', 'ATTEMPTS', 'LAST ERROR'],
          letters.map((l) => [l.queue, l.svix_id ?? l.message_id, l.event_type ?? '', l.received_at, l.attempts === null ? '' : String(l.attempts), l.last_error ?? '']),
          80,
        );
      }
      case 'unrecognised': {
        const kept = await inspectUnrecognised(target);
        if (values.json) return printJson(kept);
        return printTable(
          ['SVIX-ID', 'EVENT TYPE', 'RECEIVED AT', 'BYTES'],
          kept.map((k) => [k.svix_id, k.event_type, k.received_at, String(k.bytes)]),
          80,
        );
      }
      case 'held-back': {
        const held = await inspectHeldBack(target, values.user ? { userId: values.user } : {});
        if (values.json) return printJson(held);
        return printTable(
          ['USER', 'PROVIDER', 'RESOURCE', 'RUN', 'WINDOW', 'PAGE', 'INDEX', 'REASON', 'KEPT AT'],
          held.map((h) => [h.user_id, h.provider, h.resource, h.run_id, String(h.window ?? ''), String(h.page ?? ''), h.index, h.reason, h.kept_at]),
          80,
        );
      }
      default:
        throw new UsageError(`inspect what? records, backfills, connections, dlq, unrecognised or held-back${what ? ` (not "${what}")` : ''}`);
    }
  });
}

/** `--type`: a detail-type, in any case; a wrong one gets the closest names. */
function detailTypeOption(value: string): ChangeDetailType {
  const detailType = detailTypeNamed(value);
  if (!detailType) {
    throw new UsageError(`--type must be a detail-type (${CHANGE_DETAIL_TYPES.join(', ')}), not "${value}".${suggesting(likelyDetailTypes(value))}`);
  }
  return detailType;
}

async function events(args: string[]): Promise<void> {
  const { values } = parse('events', args, {
    follow: { type: 'boolean' },
    user: { type: 'string' },
    type: { type: 'string' },
  });
  const filter = { ...(values.user ? { userId: values.user } : {}), ...(values.type ? { detailType: detailTypeOption(values.type) } : {}) };
  // Ctrl-C ends a --follow as the way out it is: exit code 0, the queue's clients closed.
  const interrupted = new AbortController();
  const stop = () => interrupted.abort();
  process.once('SIGINT', stop);
  const reading: EventReading = {
    filter,
    follow: values.follow ?? false,
    signal: interrupted.signal,
    onEvent: (event) => process.stdout.write(`${values.json ? JSON.stringify(event) : describeEvent(event)}\n`),
  };
  try {
    const [shown, where] = values.stack
      ? await withTarget(values, async (target) => [await readEventQueue(target.sqs, tapQueueOf(target), reading), `the tap queue of ${target.description}`] as const)
      : await localEventsFile(localDataDir()).then(async (file) => [await readEventFile(file, reading), file] as const);
    const matching = values.user || values.type ? ' matching' : '';
    if (shown === 0 && !values.follow) process.stderr.write(`No change events${matching} in ${where}\n`);
  } finally {
    process.off('SIGINT', stop);
  }
}

async function replay(args: string[]): Promise<void> {
  const { values } = parse('replay', args, {
    queue: { type: 'string' },
    'svix-id': { type: 'string', multiple: true },
    unrecognised: { type: 'boolean' },
  });
  if (values.unrecognised) return replayKept(values);
  const { counts, notFound } = await withTarget(values, (target) =>
    replayDeadLetters(target, {
      ...(queueOption(values.queue) ? { queue: queueOption(values.queue)! } : {}),
      ...(values['svix-id'] ? { svixIds: values['svix-id'] } : {}),
      onProgress: progress,
    }),
  );
  progressDone();
  if (values.json) printJson(counts);
  else {
    for (const count of counts) {
      process.stdout.write(`${count.queue}: moved ${count.moved} message(s) from the DLQ back to the queue; ${count.left} left in the DLQ\n`);
    }
  }
  if (notFound.length > 0) {
    const queues = counts.map((count) => count.queue).join(' or ');
    const stack = stackLocation(values);
    const inspectDlq = `vital-pipeline inspect dlq${stack ? ` ${stackOptions(stack)}` : ''}`;
    throw new DeadLetterNotFoundError(`not in the ${queues} DLQ, so not replayed: ${notFound.join(', ')} (${inspectDlq} lists what is there)`);
  }
}

/** `replay --unrecognised`: what was replayed, and what was skipped because its type is still unknown. */
async function replayKept(values: { queue?: string; 'svix-id'?: string[]; stack?: string; region?: string; json?: boolean }): Promise<void> {
  if (values.queue) throw new UsageError('--unrecognised replays into the events queue: give it without --queue');
  const result = await withTarget(values, (target) =>
    replayUnrecognised(target, { ...(values['svix-id'] ? { svixIds: values['svix-id'] } : {}), onProgress: progress }),
  );
  progressDone();
  if (values.json) printJson(result);
  else describeKeptReplay(result);
  // As a DLQ replay does: an id that names nothing is said, and the exit code says it too.
  if (result.not_found.length > 0) throw new KeptEventNotFoundError(`not kept, so not replayed: ${result.not_found.join(', ')} (vital-pipeline inspect unrecognised lists what is kept)`);
}

function describeKeptReplay(result: Awaited<ReturnType<typeof replayUnrecognised>>): void {
  for (const event of result.replayed) process.stdout.write(`replayed ${event.svix_id}  ${event.event_type}\n`);
  for (const event of result.skipped) {
    process.stdout.write(`skipped ${event.svix_id}  ${event.event_type}: this catalogue does not know the type yet; it stays kept\n`);
  }
  for (const svixId of result.not_found) process.stdout.write(`not found ${svixId}: no kept event of an unrecognised type has this svix-id\n`);
  process.stdout.write(`${result.replayed.length} replayed into the events queue, ${result.skipped.length} skipped\n`);
}

/** `replay --unrecognised --svix-id` named an id no kept event has. */
class KeptEventNotFoundError extends Error {}

async function backfill(args: string[]): Promise<void> {
  const { values, positionals } = parse('backfill', args, {
    user: { type: 'string' },
    provider: { type: 'string' },
    resource: { type: 'string' },
    all: { type: 'boolean' },
    from: { type: 'string' },
    to: { type: 'string' },
    wait: { type: 'boolean' },
  });
  if (positionals[0] === undefined) return resync(values);
  if (positionals[0] !== 'retry') {
    throw new UsageError(`backfill what? retry, or a resync: backfill --user <id> --provider <slug> --resource <name> --from <iso> --to <iso> (not "${positionals[0]}")`);
  }
  const resyncOnly = (['from', 'to', 'wait'] as const).filter((option) => values[option] !== undefined).map((option) => `--${option}`);
  if (resyncOnly.length > 0) throw new UsageError(`${resyncOnly.join(', ')}: for a resync (backfill without retry); backfill retry resumes failed runs where they stopped`);
  const selection = retrySelection(values);
  const results = await withTarget(values, (target) => retryBackfills(target, selection));
  if (values.json) return printJson(results);
  if (results.length === 0) {
    process.stdout.write('No failed backfill runs to retry.\n');
    return;
  }
  for (const result of results) {
    const run = `${result.user_id} ${result.provider}/${result.resource} (run ${result.run_id})`;
    process.stdout.write(
      result.outcome === 'retried'
        ? `retried ${run}: resumes at window ${result.resumes_at_window! + 1} of ${result.windows_total}; it had failed with: ${result.reason}\n`
        : `skipped ${run}: ${result.reason}\n`,
    );
  }
  process.stdout.write(`${RETRY_SCOPE} Follow it with: vital-pipeline inspect backfills --user <id>\n`);
}

/** A resync's `--from` / `--to`: an ISO 8601 date or time, read by the one strict parser the pipeline reads times with. */
function resyncTime(value: string | undefined, flag: string): string {
  if (value === undefined) throw new UsageError(`a resync needs --from <iso> and --to <iso>: ${flag} is missing`);
  if (instantKey(value) === undefined) throw new UsageError(`${flag} must be an ISO 8601 date or time, such as 2026-05-01 or 2026-05-01T08:00:00Z, not "${value}"`);
  return value;
}

/** What a resync asks for, checked before any pipeline is looked for: a wrong command line exits with 2. */
function resyncRequest(values: { user?: string; provider?: string; resource?: string; all?: boolean; from?: string; to?: string }) {
  if (!values.user) throw new UsageError('a resync needs --user <id>; to resume failed runs: backfill retry');
  const provider = values.provider;
  if (!provider) throw new UsageError('a resync needs --provider <slug>');
  if (!PROVIDER_SLUG.test(provider)) throw new UsageError(`--provider is a provider slug such as oura or garmin, not "${provider}"`);
  if (values.all && values.resource) throw new UsageError('--resource or --all, not both: --all resyncs every resource of the user\'s connection');
  if (!values.all && !values.resource) throw new UsageError('a resync needs --resource <name>, or --all for every resource of the user\'s connection');
  if (values.resource) {
    try {
      requireResource(values.resource);
    } catch (error) {
      if (error instanceof UnknownResourceError) throw new UsageError(error.message);
      throw error;
    }
  }
  const from = resyncTime(values.from, '--from');
  const to = resyncTime(values.to, '--to');
  if (instantKey(from)! >= instantKey(to)!) throw new UsageError(`--from must be before --to (${from} is not before ${to})`);
  return { userId: values.user, provider, from, to, ...(values.resource ? { resource: values.resource } : {}) };
}

/** `backfill` without `retry`: the on-demand resync (cli/commands/backfill-resync.ts). */
async function resync(values: { user?: string; provider?: string; resource?: string; all?: boolean; from?: string; to?: string; wait?: boolean; stack?: string; region?: string; json?: boolean }): Promise<void> {
  const request = resyncRequest(values);
  const stack = stackLocation(values);
  const sameTarget = stack ? ` ${stackOptions(stack)}` : '';
  const results = await withTarget(values, async (target) => {
    const chosen = request.resource ? { resources: [request.resource], skipped: [] } : await connectionResources(target, request.userId, request.provider);
    if (chosen.resources.length === 0) {
      const why = chosen.skipped.map((result) => `${result.resource}: ${result.reason}`).join('; ');
      throw new NothingToResyncError(`nothing to resync: the connection of user ${request.userId} with ${request.provider} announced no resource this pipeline can backfill (${why})`);
    }
    const queued = await requestResync(target, { ...request, resources: chosen.resources });
    if (!values.wait) return [...queued, ...chosen.skipped];
    if (!values.json) for (const result of queued) process.stdout.write(`${describeResync(result)}\n`);
    const followed = await followResync(target, queued, { onProgress: (runs) => progress(describeProgress(runs, queued.length)) });
    progressDone();
    return [...followed, ...chosen.skipped];
  });
  const unfinished = values.wait ? unfinishedError(results, request.userId, sameTarget, stack) : undefined;
  if (values.json) printJson(results);
  else {
    for (const result of results) {
      if (values.wait && result.status) process.stdout.write(`${result.status} ${result.resource} (run ${result.continued_in ?? result.run_id}): ${result.records} records stored${result.failure_reason ? `; ${result.failure_reason}` : ''}\n`);
      else if (!values.wait || result.outcome === 'skipped') process.stdout.write(`${describeResync(result)}\n`);
    }
    if (!values.wait) process.stdout.write(`Follow them: vital-pipeline inspect backfills --user ${request.userId}${sameTarget}\n`);
  }
  if (unfinished) throw unfinished;
}

/** One line on what a resync did for a resource. */
function describeResync(result: ResyncResult): string {
  switch (result.outcome) {
    case 'queued': {
      const range = result.ranges ? result.ranges.map((each) => `${each.start_date} to ${each.end_date}`).join(', ') : `${result.start_date} to ${result.end_date}`;
      const tookOver = result.took_over ? `, with what run ${result.took_over} had left` : '';
      return `queued ${result.resource}: run ${result.run_id} fetches ${range} in ${result.windows_total} window${result.windows_total === 1 ? '' : 's'}${tookOver}`;
    }
    default:
      return `${result.outcome} ${result.resource}: ${result.reason}`;
  }
}

/** The runs `backfill retry` names: exactly one of a run, a user's failed runs, or `--all`. */
function retrySelection(values: { user?: string; provider?: string; resource?: string; all?: boolean }): RetrySelection {
  if (values.all) {
    if (values.user || values.provider || values.resource) throw new UsageError('--all retries every failed run: give it without --user, --provider, --resource');
    return { kind: 'deployment' };
  }
  if (!values.user) throw new UsageError('backfill retry needs --user <id> (with --provider and --resource for one run), or --all');
  if (!values.provider && !values.resource) return { kind: 'user', userId: values.user };
  return { kind: 'run', userId: values.user, provider: required(values.provider, '--provider'), resource: required(values.resource, '--resource') };
}

function environmentOption(value: string | undefined): VitalEnvironment {
  const environment = value ?? process.env.VITAL_ENVIRONMENT ?? 'production';
  if (environment !== 'sandbox' && environment !== 'production') {
    throw new UsageError(`--environment must be sandbox or production, not "${environment}"`);
  }
  return environment;
}

/** `--vital-region`: the Vital API's region (`--region` is the stack's AWS region). */
function vitalRegionOption(value: string | undefined): VitalRegion {
  const region = value ?? process.env.VITAL_REGION ?? 'us';
  if (region !== 'us' && region !== 'eu') throw new UsageError(`--vital-region must be us or eu, not "${region}"`);
  return region;
}

/** The options naming a Management API scope, shared by `register` and `doctor`. */
const managementOptions = {
  'management-key': { type: 'string' },
  'management-url': { type: 'string' },
  org: { type: 'string' },
  team: { type: 'string' },
  environment: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** The Management API scope of the options, or undefined without a management key. */
function managementScope(values: { 'management-key'?: string; 'management-url'?: string; org?: string; team?: string; environment?: string }): ManagementScope | undefined {
  const managementKey = values['management-key'] ?? process.env.VITAL_MANAGEMENT_KEY;
  if (!managementKey) return undefined;
  return {
    baseUrl: values['management-url'] ?? process.env.VITAL_MANAGEMENT_API_BASE_URL ?? MANAGEMENT_API_BASE_URL,
    managementKey,
    orgId: required(values.org, '--org'),
    teamId: required(values.team, '--team'),
    environment: environmentOption(values.environment),
  };
}

async function register(args: string[]): Promise<void> {
  const { values, positionals } = parse('register', args, {
    ...managementOptions,
    'vital-region': { type: 'string' },
    'api-key': { type: 'string' },
    url: { type: 'string' },
    description: { type: 'string' },
    'filter-type': { type: 'string', multiple: true },
    'webhook-id': { type: 'string' },
  });
  const environment = environmentOption(values.environment);
  const scope = managementScope(values);
  if (!scope) {
    process.stdout.write(`${DASHBOARD_ROUTE}\n`);
    const apiKey = values['api-key'] ?? process.env.VITAL_API_KEY;
    if (!apiKey) {
      process.stdout.write('Set VITAL_API_KEY (a team API key) to get a direct link to the webhook portal.\n');
      return;
    }
    const link = await portalLink({
      apiKey,
      environment,
      region: vitalRegionOption(values['vital-region']),
      ...(process.env.VITAL_API_BASE_URL ? { baseUrlOverride: process.env.VITAL_API_BASE_URL } : {}),
    });
    process.stdout.write(`Webhook portal: ${link}\n`);
    return;
  }
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
      const url = values.url ?? (await withTarget(values, async (target) => target.webhookUrl));
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

async function secrets(args: string[]): Promise<void> {
  const { values, positionals } = parse('secrets', args, {
    'signing-secret-only': { type: 'boolean' },
    'api-key-only': { type: 'boolean' },
  });
  if (positionals[0] !== 'set') throw new UsageError(`secrets what? set${positionals[0] ? ` (not "${positionals[0]}")` : ''}`);
  if (!values.stack) {
    throw new UsageError('secrets set needs --stack <name>; the local pipeline takes VITAL_WEBHOOK_SECRET and VITAL_API_KEY from its environment');
  }
  const only = onlyOption(values['signing-secret-only'], values['api-key-only']);
  const stack = stackLocation(values)!;
  const stored = await setStackSecrets({ stack, ...(only ? { only } : {}) });
  if (values.json) return printJson(stored);
  for (const secret of stored) process.stdout.write(`Stored the ${secretLabel(secret.secret)} in ${secret.arn}\n`);
  if (stored.some((secret) => secret.secret === 'signing-secret')) {
    process.stdout.write(`The verifier reads it again within 5 minutes. Check the whole pipeline: npx vital-pipeline doctor ${stackOptions(stack)}\n`);
  }
}

async function doctor(args: string[]): Promise<void> {
  const { values } = parse('doctor', args, { ...managementOptions, 'vital-region': { type: 'string' }, wait: { type: 'string' } });
  const waitSeconds = integer(values.wait, '--wait', 30);
  // Only a stack has a public URL that can be registered with Junction.
  const management = values.stack ? managementScope(values) : undefined;
  const stack = stackLocation(values);
  const checks = await runDoctor({
    ...(stack ? { stack } : {}),
    dataDir: localDataDir(),
    // A stack's own output says which API its backfill uses; these apply locally and to older stacks.
    vitalApi: {
      ...(values.environment || process.env.VITAL_ENVIRONMENT ? { environment: environmentOption(values.environment) } : {}),
      ...(values['vital-region'] || process.env.VITAL_REGION ? { region: vitalRegionOption(values['vital-region']) } : {}),
      ...(process.env.VITAL_API_BASE_URL ? { baseUrlOverride: process.env.VITAL_API_BASE_URL } : {}),
    },
    ...(values.team ? { teamId: values.team } : {}),
    ...(management ? { management } : {}),
    waitSeconds,
    onCheck: (check) => {
      if (!values.json) process.stdout.write(`${formatCheck(check)}\n`);
    },
  });
  if (values.json) printJson(checks);
  const failures = checks.filter((check) => check.ok === false).length;
  if (failures > 0) throw new DoctorFailedError(`${failures} of ${checks.length} checks failed`);
  if (!values.json) process.stdout.write(`All ${checks.filter((check) => check.ok).length} checks passed.\n`);
}

async function erase(args: string[]): Promise<void> {
  const { values } = parse('erase', args, { user: { type: 'string' }, yes: { type: 'boolean' } });
  const userId = required(values.user, '--user');
  const { erased, table } = await withTarget(values, async (target) => {
    if (!values.yes) await confirmErasure(userId, target.description);
    const erasedBy = await operatorOf(target);
    // Each step on stderr, as it happens (the wait above all); stdout is the receipt's.
    const erased = await eraseUser(target, { userId, erasedBy, onStep: (text) => process.stderr.write(`${text}\n`) });
    return { erased, table: target.tables.erasures };
  });
  if (values.json) return printJson(receiptJson(erased, table));
  const { receipt, previous, removedNow } = erased;
  process.stdout.write(`Erased user ${receipt.userId}: erasure of ${receipt.erasedAt}, by ${receipt.erasedBy}, finished ${receipt.finishedAt}\n`);
  printTable(['STORE', 'REMOVED'], ERASED_STORES.map((store) => [store, String(receipt.removed[store])]));
  if (previous && ERASED_STORES.every((store) => removedNow[store] === 0)) {
    process.stdout.write(`Nothing new to remove: user ${receipt.userId} was erased at ${previous.erasedAt} already, and nothing of theirs was stored since.\n`);
  }
  process.stdout.write(
    `The receipt is the item (userId ${receipt.userId}, erasedAt ${receipt.erasedAt}) of table ${table}.\n` +
      'Not removed here (docs/erasure.md): Vital\'s own copy (delete the user at Vital too), point-in-time-recovery backups of the tables (35 days), log lines naming the user id.\n',
  );
}

/** A provider's slug as Vital writes them: `oura`, `apple_health_kit`, `whoop_v2`. */
const PROVIDER_SLUG = /^[a-z][a-z0-9_]*$/;

async function simulate(args: string[]): Promise<void> {
  const { values, positionals } = parse('simulate', args, {
    provider: { type: 'string' },
    user: { type: 'string' },
    days: { type: 'string' },
  });
  if (positionals[0] !== 'connect') throw new UsageError(`simulate what? connect${positionals[0] ? ` (not "${positionals[0]}")` : ''}`);
  const provider = required(values.provider, '--provider');
  if (!PROVIDER_SLUG.test(provider)) throw new UsageError(`--provider is a provider slug such as oura or garmin, not "${provider}"`);
  const days = integer(values.days, '--days', 30);
  if (days < 1 || days > 365) throw new UsageError(`--days must be from 1 to 365, not ${days}`);
  const userId = values.user ?? randomUUID();
  const result = await withTarget(values, (target) =>
    simulateConnect(target, {
      userId,
      provider,
      days,
      onSent: (sent) => {
        if (!values.json) process.stdout.write(`${sent.status}  ${sent.svixId}  ${sent.eventType}\n`);
      },
      onBackfills: (rows) => {
        const finished = rows.filter((row) => row.status === 'completed' || row.status === 'failed').length;
        progress(`Backfills: ${finished} of ${Math.max(rows.length, SIMULATED_RESOURCES.length)} finished, ${rows.reduce((sum, row) => sum + row.records, 0)} records stored`);
      },
    }),
  );
  progressDone();
  if (values.json) return printJson(result);
  process.stdout.write(`\nUser ${userId} connected ${provider}: ${days} days of history backfilled, then today's events.\n`);
  printTable(
    ['RESOURCE', 'BACKFILL', 'BACKFILLED', 'STORED NOW'],
    SIMULATED_RESOURCES.map((resource) => {
      const run = result.backfills.find((row) => row.resource === resource);
      return [resource, run?.status ?? '-', String(run?.records ?? 0), String(result.stored[resource] ?? 0)];
    }),
  );
  process.stdout.write(`\nLook closer: vital-pipeline inspect records --user ${userId} --resource heartrate\n            vital-pipeline inspect backfills --user ${userId}\n`);
}

const COMMANDS: Record<CommandName, (args: string[]) => Promise<void>> = { send, inspect, events, replay, backfill, erase, simulate, register, secrets, doctor };

const isCommand = (name: string | undefined): name is CommandName => name !== undefined && Object.hasOwn(COMMANDS, name);

/** Runs the CLI on `argv` (without node and script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-V') {
    process.stdout.write(`${packageJson.version}\n`);
    return 0;
  }
  const helpAsked = rest.includes('--help') || rest.includes('-h');
  // `vital-pipeline <command> --help` and `vital-pipeline help <command>`: that command's alone.
  const helpOf = command === 'help' ? rest[0] : helpAsked ? command : undefined;
  if (isCommand(helpOf)) {
    process.stdout.write(commandHelp(helpOf));
    return 0;
  }
  if (!command || command === 'help' || command === '--help' || command === '-h' || helpAsked) {
    process.stdout.write(HELP);
    return 0;
  }
  try {
    if (!isCommand(command)) throw new UsageError(`Unknown command "${command}".${didYouMean(command, Object.keys(COMMANDS))}`);
    await COMMANDS[command](rest);
    return 0;
  } catch (error) {
    progressDone();
    const message = ((error as Error).message ?? String(error)).split('\n')[0];
    // A wrong command line points at the help of the command it was for.
    const help = isCommand(command) ? `vital-pipeline ${command} --help` : 'vital-pipeline --help';
    process.stderr.write(`vital-pipeline: ${message}${error instanceof UsageError ? ` (see ${help})` : ''}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
