import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { DeleteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { DynamoDbRecordStore } from '../../functions/adapters/record-store';
import { vitalApiBaseUrl, type VitalEnvironment, type VitalRegion } from '../../functions/adapters/vital-api-client';
import { exampleEvent, type ExampleOptions } from '../../functions/domain/example-events';
import type { SigningSecrets } from '../../functions/domain/signing-secrets';
import { PipelineNotRunningError } from '../../local/pipeline-state';
import {
  localTarget,
  secretsSetCommand,
  SigningSecretUnavailableError,
  stackClient,
  StackLookupError,
  stackOptions,
  stackTarget,
  VitalApiKeyUnavailableError,
  type PipelineTarget,
  type StackLocation,
} from '../target';
import { listEndpoints, type ManagementScope } from './register';
import { checkVitalApiKey, InvalidSecretValueError } from './secrets';
import { sendEvents, type SendResult } from './send';

/**
 * `doctor`: is this pipeline ready to receive Vital's webhooks? One check per line, each with what
 * to run when it fails, for a deployed stack (`--stack`, after `cdk deploy`) or the local pipeline
 * (`npm start`). The end-to-end check sends one synthetic signed event and follows it into the
 * table the worker writes to, then removes it. That event belongs to a reserved user,
 * `vital-pipeline-doctor`, so it is never mistaken for user data even if it outlives the check (the
 * worker is slower than the wait, or the check is interrupted): records under that user can be
 * deleted at any time. Nothing here prints a secret, a key or a payload.
 */

/** The user id of the synthetic event: reserved, never a Vital user (those are UUIDs). */
export const DOCTOR_USER_ID = 'vital-pipeline-doctor';
/**
 * The synthetic event: a summary (one item, keyed by its `data.id`, so it is read back and deleted
 * with one key) of a resource without a time field (`profile`), so it never falls in a time-range
 * query of user data.
 */
export const DOCTOR_EVENT_TYPE = 'daily.data.profile.created';
const DOCTOR_RESOURCE = 'profile';

export type CheckId =
  | 'stack'
  | 'local-pipeline'
  | 'signing-secret'
  | 'vital-api-key'
  | 'webhook-round-trip'
  | 'dead-letter-queues'
  | 'alarm-subscription'
  | 'junction-endpoint';

/** One check's outcome, as printed and as `--json` gives it. */
export interface DoctorCheck {
  readonly check: CheckId;
  /** `true` ✓, `false` ✗, `null` not checked (the detail says why, the fix how to check it). */
  readonly ok: boolean | null;
  readonly detail: string;
  /** What to run or do; `null` when there is nothing to fix. */
  readonly fix: string | null;
}

export interface DoctorOptions {
  /** A deployed stack; the local pipeline of `dataDir` otherwise. */
  readonly stack?: StackLocation;
  readonly dataDir: string;
  /**
   * Which Data Access API to check the key against: `baseUrlOverride` if given, else the stack's
   * `VitalApiBaseUrl` output (where its backfill fetches), else this environment and region
   * (default production, us).
   */
  readonly vitalApi: { readonly environment?: VitalEnvironment; readonly region?: VitalRegion; readonly baseUrlOverride?: string };
  /** `team_id` of the synthetic event: a stack deployed with `expectedTeamId` quarantines any other. */
  readonly teamId?: string;
  /** With a Management API key: whether Junction has an endpoint for this webhook URL. */
  readonly management?: ManagementScope;
  /** How long the synthetic event may take to be stored. */
  readonly waitSeconds: number;
  /** Told of each check as it completes, in order. */
  readonly onCheck?: (check: DoctorCheck) => void;
}

/** At least one check failed; the checks were printed already. */
export class DoctorFailedError extends Error {}

const POLL_INTERVAL_MS = 500;
const VITAL_API_TIMEOUT_MS = 15_000;

const passed = (check: CheckId, detail: string): DoctorCheck => ({ check, ok: true, detail, fix: null });
const failed = (check: CheckId, detail: string, fix: string): DoctorCheck => ({ check, ok: false, detail, fix });
const skipped = (check: CheckId, detail: string, fix: string | null = null): DoctorCheck => ({ check, ok: null, detail, fix });

const plural = (count: number, word: string): string => `${count} ${word}${count === 1 ? '' : 's'}`;
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const reason = (error: unknown): string => {
  const cause = (error as Error).cause as Error | undefined;
  return `${(error as Error).name === 'Error' ? '' : `${(error as Error).name}: `}${cause?.message ?? (error as Error).message}`;
};

/** A CLI command line for a fix, naming the target's stack (and its region) when it is one. */
function command(target: PipelineTarget, args: string): string {
  return `npx vital-pipeline ${args}${target.origin.kind === 'stack' ? ` ${stackOptions(target.origin.stack)}` : ''}`;
}

/** Runs `work`; an unexpected error becomes a failed check naming it, so one failure hides no other check. */
async function guarded(check: CheckId, fix: string, work: () => Promise<DoctorCheck>): Promise<DoctorCheck> {
  try {
    return await work();
  } catch (error) {
    return failed(check, reason(error), fix);
  }
}

/** The local pipeline: its state file, and whether its stand-ins and webhook endpoint answer. */
async function openLocal(dataDir: string): Promise<{ target?: PipelineTarget; check: DoctorCheck }> {
  let target: PipelineTarget;
  try {
    target = await localTarget(dataDir);
  } catch (error) {
    if (!(error instanceof PipelineNotRunningError)) throw error;
    return { check: failed('local-pipeline', error.message, 'npm start (in another terminal), or give --stack <name> for a deployed stack') };
  }
  const check = await guarded('local-pipeline', 'restart it: stop npm start (Ctrl-C) and run npm start again', async () => {
    const tables = Object.values(target.tables);
    for (const table of tables) await target.dynamodb.send(new DescribeTableCommand({ TableName: table }));
    const queueUrls = Object.values(target.queues).flatMap((queue) => [queue.url, queue.deadLetterUrl]);
    for (const url of queueUrls) await target.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
    // Any HTTP answer will do: the round trip below checks what the endpoint does.
    await fetch(target.webhookUrl, { method: 'GET', signal: AbortSignal.timeout(5_000) }).then((response) => response.body?.cancel());
    const { state } = target.origin as Extract<PipelineTarget['origin'], { kind: 'local' }>;
    return passed(
      'local-pipeline',
      `running (pid ${state.pid}, since ${state.startedAt}): ${plural(tables.length, 'table')}, ${plural(queueUrls.length, 'queue')} and ${target.webhookUrl} answer`,
    );
  });
  return { target, check };
}

/** A deployed stack: its outputs. */
async function openStack(stack: StackLocation): Promise<{ target?: PipelineTarget; check: DoctorCheck }> {
  try {
    const target = await stackTarget(stack);
    const outputs = target.origin.kind === 'stack' ? Object.keys(target.origin.outputs).length : 0;
    return { target, check: passed('stack', `${stack.name}: ${plural(outputs, 'output')}, webhook URL ${target.webhookUrl}`) };
  } catch (error) {
    if (!(error instanceof StackLookupError)) throw error;
    return {
      check: failed(
        'stack',
        error.message,
        'check the stack name, its AWS region (--region, else AWS_REGION) and the credentials in use (AWS_PROFILE); npx cdk deploy prints the stack name',
      ),
    };
  }
}

async function checkSigningSecret(target: PipelineTarget): Promise<{ check: DoctorCheck; secrets?: SigningSecrets }> {
  const { origin } = target;
  let secrets: SigningSecrets;
  try {
    secrets = await target.signingSecrets();
  } catch (error) {
    if (!(error instanceof SigningSecretUnavailableError)) throw error;
    if (origin.kind === 'local') {
      const fix =
        error.problem === 'unset'
          ? 'export VITAL_WEBHOOK_SECRET here with the value npm start runs with'
          : 'restart npm start: it checks the secret when it starts';
      return { check: failed('signing-secret', error.message, fix) };
    }
    const arn = origin.outputs.SigningSecretArn!;
    const store = secretsSetCommand(origin.stack, 'signing-secret');
    switch (error.problem) {
      case 'unreadable':
        return {
          check: failed('signing-secret', error.message, `allow your AWS identity secretsmanager:GetSecretValue on ${arn} (and kms:Decrypt on the stack's key), or ${store}`),
        };
      case 'unset':
        return { check: failed('signing-secret', `${arn} has no value`, store) };
      case 'malformed':
        return {
          check: failed('signing-secret', `${arn} holds no whsec_ value (still the placeholder the stack generated?): the verifier answers every delivery 503 until it does`, store),
        };
    }
  }
  const rotation = secrets.previous.length > 0 ? ` and ${plural(secrets.previous.length, 'previous secret')} (a rotation)` : '';
  const where =
    origin.kind === 'stack'
      ? origin.outputs.SigningSecretArn!
      : origin.state.secret.source === 'file'
        ? origin.state.secret.path
        : 'VITAL_WEBHOOK_SECRET';
  return { check: passed('signing-secret', `${where} holds a whsec_ secret${rotation}`), secrets };
}

async function checkVitalApi(target: PipelineTarget, options: DoctorOptions): Promise<DoctorCheck> {
  const { origin } = target;
  const store =
    origin.kind === 'stack'
      ? secretsSetCommand(origin.stack, 'api-key')
      : 'start npm start with VITAL_API_KEY=<team API key>, and set the same VITAL_API_KEY (and VITAL_API_BASE_URL, if any) here';
  let key: string;
  try {
    key = checkVitalApiKey(await target.vitalApiKey());
  } catch (error) {
    if (error instanceof VitalApiKeyUnavailableError && error.problem === 'unreadable' && origin.kind === 'stack') {
      return failed('vital-api-key', error.message, `allow your AWS identity secretsmanager:GetSecretValue on ${origin.outputs.VitalApiKeySecretArn} (and kms:Decrypt on the stack's key)`);
    }
    if (error instanceof VitalApiKeyUnavailableError || error instanceof InvalidSecretValueError) {
      return failed('vital-api-key', `${error.message}: backfills cannot fetch history`, store);
    }
    throw error;
  }
  const { base, which } = vitalApiToCheck(options.vitalApi, origin);
  let response: Response;
  try {
    // One cheap, read-only call that needs a valid team key and touches no user data.
    response = await fetch(`${base}/v2/providers`, {
      headers: { 'x-vital-api-key': key, accept: 'application/json' },
      signal: AbortSignal.timeout(VITAL_API_TIMEOUT_MS),
    });
    await response.body?.cancel();
  } catch (error) {
    return failed('vital-api-key', `could not reach ${base}: ${reason(error)}`, `check the network, or the Vital API host (${which})`);
  }
  if (response.ok) return passed('vital-api-key', `accepted by ${base} (GET /v2/providers answered ${response.status})`);
  if (response.status === 401 || response.status === 403) {
    return failed(
      'vital-api-key',
      `${base} rejected the key (${response.status}): backfills cannot fetch history`,
      `${store}; a key works only for its own environment and region, checked here with ${which}`,
    );
  }
  return failed('vital-api-key', `${base}/v2/providers answered ${response.status}`, `check the Vital API host (${which}), and Junction's status page`);
}

/** The Data Access API the key is checked against, and how it was chosen (for the fix text). */
function vitalApiToCheck(vitalApi: DoctorOptions['vitalApi'], origin: PipelineTarget['origin']): { base: string; which: string } {
  const { environment, region, baseUrlOverride } = vitalApi;
  if (baseUrlOverride) return { base: vitalApiBaseUrl({ environment: 'production', region: 'us', override: baseUrlOverride }), which: 'VITAL_API_BASE_URL' };
  const deployed = origin.kind === 'stack' ? origin.outputs.VitalApiBaseUrl : undefined;
  // Where the deployed backfill fetches: what matters, whatever --environment says of the management scope.
  if (deployed) return { base: deployed, which: `the stack's VitalApiBaseUrl output` };
  const chosen = { environment: environment ?? 'production', region: region ?? 'us' } as const;
  return { base: vitalApiBaseUrl(chosen), which: `--environment ${chosen.environment} --vital-region ${chosen.region}` };
}

/** Sends the synthetic event, waits for the worker to store it, reads it back, and removes it. */
async function checkRoundTrip(target: PipelineTarget, secrets: SigningSecrets, options: DoctorOptions): Promise<DoctorCheck> {
  const started = Date.now();
  const example: ExampleOptions = {
    userId: DOCTOR_USER_ID,
    // A fresh record id for every run: runs never meet each other's records.
    seed: randomInt(1, 2 ** 31),
    at: new Date(started),
    ...(options.teamId ? { teamId: options.teamId } : {}),
  };
  const sent = exampleEvent(DOCTOR_EVENT_TYPE, example);
  const recordId = String(sent.data.id);
  const url = target.webhookUrl;

  let answer: SendResult | undefined;
  try {
    await sendEvents(undefined, { types: [DOCTOR_EVENT_TYPE], example, url, secret: secrets.current, duplicate: 0 }, (result) => (answer = result));
  } catch (error) {
    if (!answer) return failed('webhook-round-trip', `could not reach ${url}: ${reason(error)}`, 'check the webhook URL and the network');
    const body = answer.body.slice(0, 200);
    const storeSecret =
      target.origin.kind === 'stack'
        ? secretsSetCommand(target.origin.stack, 'signing-secret')
        : 'restart npm start with the VITAL_WEBHOOK_SECRET used here';
    const fix =
      answer.status === 401
        ? `the endpoint verifies with another signing secret than the one read here: ${storeSecret}`
        : answer.status === 503
          ? `the endpoint has no usable signing secret or queue: ${storeSecret}, or look at the verifier's logs`
          : "look at the verifier's logs";
    return failed('webhook-round-trip', `${url} answered ${answer.status} ${body}`, fix);
  }

  const store = new DynamoDbRecordStore(DynamoDBDocumentClient.from(target.dynamodb), {
    summariesTable: target.tables.summaries,
    timeseriesTable: target.tables.timeseries,
  });
  const deadline = started + options.waitSeconds * 1000;
  let stored = await store.getSummary(DOCTOR_USER_ID, DOCTOR_RESOURCE, recordId);
  while (!stored && Date.now() < deadline) {
    await sleep(POLL_INTERVAL_MS);
    stored = await store.getSummary(DOCTOR_USER_ID, DOCTOR_RESOURCE, recordId);
  }
  const accepted = `accepted (${answer!.status})`;
  if (!stored) {
    return failed(
      'webhook-round-trip',
      `${accepted}, but not stored in ${options.waitSeconds} s (should it arrive later, it stays under user ${DOCTOR_USER_ID}, safe to delete)`,
      `${command(target, 'inspect dlq')}, and the worker's logs; a stack deployed with expectedTeamId quarantines other teams' events: pass --team <that team id>`,
    );
  }
  const storedAfter = Date.now() - started;
  // Compared with the data as it went over the wire (JSON), which is what the worker stores.
  const intact = isDeepStrictEqual(stored.object, JSON.parse(JSON.stringify(sent.data)));
  // The layout of the record store (functions/adapters/record-store.ts): pk `${userId}#${resource}`, sk the record id.
  const key = { pk: `${DOCTOR_USER_ID}#${DOCTOR_RESOURCE}`, sk: recordId };
  await DynamoDBDocumentClient.from(target.dynamodb).send(new DeleteCommand({ TableName: target.tables.summaries, Key: key }));
  const removed = (await store.getSummary(DOCTOR_USER_ID, DOCTOR_RESOURCE, recordId)) === undefined;
  if (!intact) {
    return failed('webhook-round-trip', `${accepted} and stored, but what was read back differs from what was sent`, "look at the worker's logs and docs/storage.md");
  }
  if (!removed) {
    return failed('webhook-round-trip', `${accepted}, stored and read back, but could not be removed`, `delete the items of user ${DOCTOR_USER_ID} from ${target.tables.summaries}`);
  }
  return passed('webhook-round-trip', `${accepted}, stored by the worker and read back intact in ${seconds(storedAfter)}, then removed`);
}

/** Both dead-letter queues: messages waiting, and any held by a reader (`inspect dlq`). */
async function checkDeadLetters(target: PipelineTarget): Promise<DoctorCheck> {
  const counts: [string, number][] = [];
  for (const [name, queue] of Object.entries(target.queues)) {
    // GetQueueAttributes counts without receiving, so no message's receive count changes.
    const { Attributes } = await target.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queue.deadLetterUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
      }),
    );
    const count = ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'].reduce(
      (sum, attribute) => sum + Number(Attributes?.[attribute as keyof typeof Attributes] ?? 0),
      0,
    );
    counts.push([name, count]);
  }
  const detail = counts.map(([name, count]) => `${name}: ${count}`).join(', ');
  if (counts.every(([, count]) => count === 0)) return passed('dead-letter-queues', `empty (${detail})`);
  return failed(
    'dead-letter-queues',
    `messages wait in a dead-letter queue (${detail})`,
    `${command(target, 'inspect dlq')} to see why, fix the cause, then ${command(target, 'replay')}`,
  );
}

/** The alarm topic has someone to notify: at least one confirmed subscription. */
async function checkAlarmSubscription(target: PipelineTarget & { origin: { kind: 'stack' } }): Promise<DoctorCheck> {
  const topicArn = target.origin.outputs.AlarmTopicArn;
  if (!topicArn) return failed('alarm-subscription', `stack ${target.origin.stack.name} has no output AlarmTopicArn`, 'deploy the current version of the stack');
  // Loaded only here: no other command needs SNS.
  const { SNSClient, ListSubscriptionsByTopicCommand } = await import('@aws-sdk/client-sns');
  const client = stackClient(SNSClient, target.origin.stack);
  const subscriptions: { SubscriptionArn?: string; Protocol?: string }[] = [];
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn, ...(token ? { NextToken: token } : {}) }));
      subscriptions.push(...(page.Subscriptions ?? []));
      token = page.NextToken;
    } while (token);
  } finally {
    client.destroy();
  }
  // Pending ones read `PendingConfirmation`; confirmed ones are ARNs. Endpoints (addresses) are not printed.
  const confirmed = subscriptions.filter((subscription) => subscription.SubscriptionArn?.startsWith('arn:'));
  const pending = subscriptions.filter((subscription) => subscription.SubscriptionArn === 'PendingConfirmation').length;
  const subscribe = `aws sns subscribe --topic-arn ${topicArn} --protocol email --notification-endpoint <address>, then confirm the e-mail AWS sends`;
  if (confirmed.length === 0) {
    const waiting = pending > 0 ? ` (${pending} pending confirmation: open the confirmation e-mail)` : '';
    return failed('alarm-subscription', `no confirmed subscription to ${topicArn}: alarms notify no one${waiting}`, subscribe);
  }
  const protocols = [...new Set(confirmed.map((subscription) => subscription.Protocol ?? '?'))].join(', ');
  return passed('alarm-subscription', `${plural(confirmed.length, 'confirmed subscription')} (${protocols})${pending > 0 ? `, ${pending} pending` : ''}`);
}

/** Junction has an enabled endpoint for the webhook URL (Management API). */
async function checkJunctionEndpoint(target: PipelineTarget, options: DoctorOptions): Promise<DoctorCheck> {
  const scope = options.management;
  if (!scope) {
    return skipped(
      'junction-endpoint',
      'not checked: needs a Junction Management API key',
      `pass --management-key (or VITAL_MANAGEMENT_KEY), --org and --team; or check that the dashboard's webhooks page lists ${target.webhookUrl}`,
    );
  }
  const normalise = (url: string) => url.replace(/\/+$/, '');
  const endpoints = await listEndpoints(scope);
  const matching = endpoints.filter((endpoint) => normalise(endpoint.url) === normalise(target.webhookUrl));
  const create = `${command(target, 'register create')} --org ${scope.orgId} --team ${scope.teamId} --environment ${scope.environment} (with the same management key)`;
  if (matching.length === 0) {
    return failed('junction-endpoint', `no ${scope.environment} endpoint of team ${scope.teamId} has the URL ${target.webhookUrl} (${plural(endpoints.length, 'endpoint')} listed)`, create);
  }
  const enabled = matching.find((endpoint) => !endpoint.disabled);
  if (!enabled) {
    return failed(
      'junction-endpoint',
      `endpoint ${matching[0]!.id} has the URL but is disabled (Svix disables an endpoint that fails for 5 days)`,
      "enable it on the Junction dashboard's webhooks page, then recover the failed messages there",
    );
  }
  const types = enabled.filter_types?.length ? plural(enabled.filter_types.length, 'event type') : 'all event types';
  return passed('junction-endpoint', `registered as ${enabled.id} in ${scope.environment} (${types})`);
}

/** Runs every check that applies to the target, in order; never throws for a failed check. */
export async function runDoctor(options: DoctorOptions): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const report = (check: DoctorCheck) => {
    checks.push(check);
    options.onCheck?.(check);
  };
  const opened = options.stack ? await openStack(options.stack) : await openLocal(options.dataDir);
  report(opened.check);
  const { target } = opened;
  if (!target) return checks;
  try {
    if (opened.check.ok === false) return checks;
    const again = command(target, 'doctor');
    let secrets: SigningSecrets | undefined;
    report(
      await guarded('signing-secret', `check the AWS credentials in use, then ${again}`, async () => {
        const result = await checkSigningSecret(target);
        secrets = result.secrets;
        return result.check;
      }),
    );
    report(await guarded('vital-api-key', again, () => checkVitalApi(target, options)));
    // The round trip needs the signing secret; without one it is not attempted (the check above says why).
    report(
      secrets
        ? await guarded('webhook-round-trip', `${command(target, 'inspect dlq')}, and the worker's logs`, () => checkRoundTrip(target, secrets!, options))
        : skipped('webhook-round-trip', 'not attempted: needs a usable signing secret (see above)'),
    );
    report(await guarded('dead-letter-queues', again, () => checkDeadLetters(target)));
    if (target.origin.kind === 'stack') {
      const stackTarget = target as PipelineTarget & { origin: { kind: 'stack' } };
      report(await guarded('alarm-subscription', `allow your AWS identity sns:ListSubscriptionsByTopic, then ${again}`, () => checkAlarmSubscription(stackTarget)));
      report(await guarded('junction-endpoint', 'check --management-key, --org, --team and --environment', () => checkJunctionEndpoint(target, options)));
    }
  } finally {
    target.close();
  }
  return checks;
}

const SYMBOLS = { true: '✓', false: '✗', null: '-' } as const;

/** One line per check: `✓ check: detail`, `✗ check: detail → fix: ...`, `- check: why not → to check it: ...`. */
export function formatCheck(check: DoctorCheck): string {
  const symbol = SYMBOLS[String(check.ok) as keyof typeof SYMBOLS];
  const fix = check.fix ? ` → ${check.ok === null ? 'to check it' : 'fix'}: ${check.fix}` : '';
  return `${symbol} ${check.check}: ${check.detail}${fix}`;
}
