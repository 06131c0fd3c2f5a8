import { readFile } from 'node:fs/promises';
import { Webhook } from 'svix';
import { catalogueEventTypes } from '../../functions/domain/catalogue';
import { exampleEvent, UnknownExampleTypeError, type ExampleOptions } from '../../functions/domain/example-events';
import { newMessageId } from '../../functions/domain/message-order';
import { parseSigningSecrets } from '../../functions/domain/signing-secrets';
import type { PipelineTarget } from '../target';
import { didYouMean, UsageError } from '../terminal';

/**
 * `send`: signs events exactly as Svix does (a `msg_` KSUID id, `Webhook.sign` over the raw body) and
 * posts them, printing each response. A duplicate is a retry as Svix makes it: same id and body, a
 * fresh timestamp and signature.
 */

export interface SendOptions {
  readonly types: readonly string[];
  readonly file?: string;
  readonly example: ExampleOptions;
  readonly url?: string;
  readonly secret?: string;
  /** Extra deliveries of each event with the same svix-id. */
  readonly duplicate: number;
}

/** The event file cannot be read or is not JSON. */
export class EventFileError extends Error {}

/** Nothing was accepted: the endpoint refused at least one delivery or could not be reached. */
export class DeliveryRefusedError extends Error {}

/** What a delivery is about, read from its body: the user and provider it was made for. */
export interface DeliveryFacts {
  readonly svixId: string;
  readonly eventType: string;
  readonly userId?: string;
  readonly provider?: string;
}

/** One delivery's outcome, as printed. */
export interface SendResult extends DeliveryFacts {
  readonly status: number;
  readonly body: string;
}

/** A delivery signed as Svix signs it, not sent (`send --print`): the headers and the exact body. */
export interface SignedDelivery extends DeliveryFacts {
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** The user and provider a body is about, where it says (`data.user_id`; `data.source.provider`, else `slug`, else `data.provider`). */
function factsOf(svixId: string, body: string): DeliveryFacts {
  const event = JSON.parse(body) as { event_type?: unknown; data?: Record<string, unknown> };
  const data = event.data ?? {};
  const source = (data.source ?? {}) as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  const provider = text(source.provider) ?? text(source.slug) ?? text(data.provider) ?? text((data.provider as { slug?: unknown } | undefined)?.slug);
  const userId = text(data.user_id);
  return { svixId, eventType: String(event.event_type ?? '(none)'), ...(userId ? { userId } : {}), ...(provider ? { provider } : {}) };
}

/** The three Svix headers of `body` signed at `at`. */
function svixHeaders(secret: string, svixId: string, body: string, at: Date): Record<string, string> {
  return {
    'content-type': 'application/json',
    'svix-id': svixId,
    'svix-timestamp': String(Math.floor(at.getTime() / 1000)),
    'svix-signature': new Webhook(secret).sign(svixId, at, body),
  };
}

async function bodiesFromFile(file: string): Promise<string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new EventFileError(`Cannot read ${file} as JSON: ${(error as Error).message}`);
  }
  const events = Array.isArray(parsed) ? parsed : [parsed];
  if (events.some((event) => typeof event !== 'object' || event === null)) {
    throw new EventFileError(`${file} must hold one event object or an array of them`);
  }
  return events.map((event) => JSON.stringify(event));
}

function exampleBodies(types: readonly string[], options: ExampleOptions): string[] {
  const known = new Set(catalogueEventTypes());
  return types.map((type) => {
    if (!known.has(type)) throw new UsageError(`Unknown event type "${type}".${didYouMean(type, [...known])} Every type: vital-pipeline send --list-types`);
    try {
      return JSON.stringify(exampleEvent(type, options));
    } catch (error) {
      if (error instanceof UnknownExampleTypeError) throw new UsageError(error.message);
      throw error;
    }
  });
}

/** Signs and posts one delivery attempt. */
async function deliver(url: string, secret: string, svixId: string, body: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { method: 'POST', headers: svixHeaders(secret, svixId, body, new Date()), body });
  return { status: response.status, body: await response.text() };
}

/** Signs the events without sending them; calls `onSigned` with each. */
export async function signEvents(target: PipelineTarget | undefined, options: SendOptions, onSigned: (delivery: SignedDelivery) => void): Promise<SignedDelivery[]> {
  const { secret, bodies } = await eventsToSend(target, options);
  return bodies.map((body) => {
    const svixId = newMessageId();
    const signed = { ...factsOf(svixId, body), headers: svixHeaders(secret, svixId, body, new Date()), body };
    onSigned(signed);
    return signed;
  });
}

/** Exactly one of --type and --file. */
function checkEventOptions(options: SendOptions): void {
  if (options.types.length > 0 && options.file) throw new UsageError('Give either --type or --file, not both');
  if (options.types.length === 0 && !options.file) throw new UsageError('Give --type <event type> or --file <event.json>');
}

/** The signing secret and the bodies the options name. */
async function eventsToSend(target: PipelineTarget | undefined, options: SendOptions): Promise<{ secret: string; bodies: string[] }> {
  checkEventOptions(options);
  const secret = options.secret ? parseSigningSecrets(options.secret).current : await target!.signingSecret();
  const bodies = options.file ? await bodiesFromFile(options.file) : exampleBodies(options.types, options.example);
  return { secret, bodies };
}

/** Sends the events; calls `onResult` after each response. Throws `DeliveryRefusedError` if any was refused. */
export async function sendEvents(target: PipelineTarget | undefined, options: SendOptions, onResult: (result: SendResult) => void): Promise<SendResult[]> {
  checkEventOptions(options);
  const url = options.url ?? target?.webhookUrl;
  if (!url) throw new UsageError('Give --url, or run against the local pipeline or a --stack');
  const { secret, bodies } = await eventsToSend(target, options);

  const results: SendResult[] = [];
  for (const body of bodies) {
    const facts = factsOf(newMessageId(), body);
    for (let attempt = 0; attempt <= options.duplicate; attempt += 1) {
      let response: { status: number; body: string };
      try {
        response = await deliver(url, secret, facts.svixId, body);
      } catch (error) {
        throw new DeliveryRefusedError(`Could not reach ${url}: ${((error as Error).cause as Error | undefined)?.message ?? (error as Error).message}`);
      }
      const result = { ...facts, ...response };
      results.push(result);
      onResult(result);
    }
  }
  const refused = results.filter((result) => result.status < 200 || result.status >= 300);
  if (refused.length > 0) throw new DeliveryRefusedError(`${refused.length} of ${results.length} deliveries were refused`);
  return results;
}
