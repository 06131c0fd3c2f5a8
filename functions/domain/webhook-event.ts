import * as z from 'zod/mini';
import { classifyEventType, type EventClass, type ResourceDefinition } from './catalogue';
import { sampleInstant, sampleSourceOf, summaryRecordIdentity, UnreadableTimeError } from './record-identity';
import type { SampleSource } from './record-store';
import { NamedError } from './named-error';
import { envelopeOwner } from './envelope-owner';

/**
 * What a webhook body asks the worker to do. The schemas check exactly what the worker relies on
 * and let every other field through untouched (`z.looseObject`): Vital adds fields without notice, and
 * the originals are stored as received. Legacy shapes seen in Vital's docs are accepted: `source`
 * with only the deprecated `slug`, interval samples without `timestamp`, connection events that
 * carry only `data.source`.
 */

type JsonObject = Record<string, unknown>;

/** Raised when a signed body does not have the shape its event type promises. Carries no payload. */
export class MalformedEnvelopeError extends NamedError {
  /** Where the body is wrong, as JSON paths with zod issue codes (never values). */
  readonly issues: readonly string[];
  constructor(eventType: string, issues: readonly string[]) {
    super(`${eventType} body does not match its schema: ${issues.join('; ')}`);
    this.issues = issues;
  }
}

const nonEmpty = z.string().check(z.minLength(1));

const sourceSchema = z
  .looseObject({ provider: z.nullish(nonEmpty), slug: z.nullish(nonEmpty), type: z.nullish(z.string()) })
  .check(z.refine((source) => Boolean(source.provider || source.slug), { message: 'source needs provider or slug' }));

/** Only `event_type` is needed to classify; the rest of the envelope is checked per family. */
const eventTypeSchema = z.looseObject({ event_type: nonEmpty, team_id: z.nullish(z.string()) });

const envelopeSchema = z.looseObject({
  event_type: nonEmpty,
  user_id: nonEmpty,
  team_id: nonEmpty,
  client_user_id: z.nullish(z.string()),
  data: z.unknown(),
});

const summaryObjectSchema = z.looseObject({
  id: nonEmpty,
  created_at: z.optional(z.string()),
  updated_at: z.optional(z.string()),
  source: sourceSchema,
});

const sampleSchema = z
  .looseObject({ timestamp: z.nullish(z.string()), start: z.nullish(z.string()), end: z.nullish(z.string()), type: z.nullish(z.string()) })
  .check(z.refine((sample) => Boolean(sample.timestamp || sample.start), { message: 'sample needs timestamp or start' }));

const timeseriesBatchSchema = z.looseObject({ source: sourceSchema, data: z.array(sampleSchema) });

const workoutStreamSchema = z.looseObject({ workout_id: nonEmpty, source: sourceSchema });

const historicalSchema = z.looseObject({
  provider: nonEmpty,
  start_date: nonEmpty,
  end_date: nonEmpty,
  is_final: z.nullish(z.boolean()),
});

const providerRefSchema = z.looseObject({ slug: nonEmpty });

const connectionCreatedSchema = z
  .looseObject({
    provider: z.optional(providerRefSchema),
    source: z.optional(sourceSchema),
    resource_availability: z.nullish(z.record(z.string(), z.unknown())),
    external_user_id: z.nullish(z.string()),
  })
  .check(z.refine((data) => Boolean(data.provider || data.source), { message: 'connection names no provider' }));

const connectionErrorSchema = z.looseObject({
  provider: z.union([nonEmpty, providerRefSchema]),
  error_type: z.nullish(z.string()),
  message: z.nullish(z.string()),
  error_details: z.nullish(z.string()),
});

/** A connection's state change, from `provider.connection.created` or `.error`. */
export type ConnectionChange =
  | { readonly change: 'created'; readonly resourceAvailability?: JsonObject; readonly externalUserId?: string }
  | {
      readonly change: 'error';
      readonly errorType: string;
      readonly message?: string;
      readonly errorDetails?: string;
    };

/** Whose data an event carries: Vital's user id, and the customer's own id for the user when the envelope has one. */
interface EventUser {
  readonly userId: string;
  readonly clientUserId?: string;
}

/** What one event means to the worker. */
export type EventAction =
  | ({ readonly kind: 'summary'; readonly resource: string; readonly object: JsonObject } & EventUser)
  | ({
      readonly kind: 'timeseries';
      readonly resource: string;
      readonly source: SampleSource;
      readonly samples: readonly JsonObject[];
    } & EventUser)
  | ({
      readonly kind: 'workout_stream';
      readonly provider: string;
      readonly workoutId: string;
      readonly object: JsonObject;
    } & EventUser)
  | ({
      readonly kind: 'historical';
      readonly provider: string;
      readonly resource: string;
      readonly startDate: string;
      readonly endDate: string;
    } & EventUser)
  | ({ readonly kind: 'connection'; readonly provider: string } & ConnectionChange & EventUser)
  | { readonly kind: 'device'; readonly change: 'created' | 'updated' }
  // Kept aside, not interpreted: the user is the envelope's `user_id` when it names one (`envelopeOwner`).
  | { readonly kind: 'unknown'; readonly userId?: string }
  | { readonly kind: 'out_of_scope' }
  | { readonly kind: 'foreign_team'; readonly teamId: string; readonly userId?: string };

export interface InterpretOptions {
  /** When set, events of any other team are not data: they are to be quarantined. */
  readonly expectedTeamId?: string;
}

function parse<T>(schema: z.ZodMiniType<T>, value: unknown, eventType: string, path: string): T {
  const result = z.safeParse(schema, value);
  if (result.success) return result.data;
  throw new MalformedEnvelopeError(
    eventType,
    result.error.issues.map((issue) => `${[path, ...issue.path.map(String)].filter(Boolean).join('.') || '$'}: ${issue.code}`),
  );
}

/**
 * Validates `data` and builds the action from the original JSON, not from zod's output: zod
 * rebuilds objects with its known keys first, and the stored originals must keep the sender's shape.
 */
function interpretData(resource: ResourceDefinition, user: EventUser, data: unknown, eventType: string): EventAction {
  switch (resource.kind) {
    case 'summary': {
      parse(summaryObjectSchema, data, eventType, 'data');
      const object = data as JsonObject;
      summaryRecordIdentity(resource.name, object, '');
      return { kind: 'summary', ...user, resource: resource.name, object };
    }
    case 'timeseries': {
      const batch = parse(timeseriesBatchSchema, data, eventType, 'data');
      const samples = (data as { data: JsonObject[] }).data;
      samples.forEach(sampleInstant);
      return { kind: 'timeseries', ...user, resource: resource.name, source: sampleSourceOf(batch.source), samples };
    }
    case 'stream': {
      const stream = parse(workoutStreamSchema, data, eventType, 'data');
      return {
        kind: 'workout_stream',
        ...user,
        provider: sampleSourceOf(stream.source).provider,
        workoutId: stream.workout_id,
        object: data as JsonObject,
      };
    }
  }
}

function interpretConnection(change: 'created' | 'error', user: EventUser, data: unknown, eventType: string): EventAction {
  if (change === 'created') {
    const created = parse(connectionCreatedSchema, data, eventType, 'data');
    const provider = created.provider?.slug ?? sampleSourceOf(created.source!).provider;
    return {
      kind: 'connection',
      ...user,
      provider,
      change,
      // The announcement as sent (zod's copy would reorder its keys).
      ...(created.resource_availability ? { resourceAvailability: (data as { resource_availability: JsonObject }).resource_availability } : {}),
      ...(created.external_user_id ? { externalUserId: created.external_user_id } : {}),
    };
  }
  const failed = parse(connectionErrorSchema, data, eventType, 'data');
  return {
    kind: 'connection',
    ...user,
    provider: typeof failed.provider === 'string' ? failed.provider : failed.provider.slug,
    change,
    errorType: failed.error_type || 'unknown',
    ...(failed.message ? { message: failed.message } : {}),
    ...(failed.error_details ? { errorDetails: failed.error_details } : {}),
  };
}

/**
 * Reads a webhook body and says what it asks for. Unknown and out-of-scope event types are normal
 * outcomes and need nothing but an `event_type`; a body that breaks the schema of a type the worker
 * processes throws `MalformedEnvelopeError`. The user is the envelope's `user_id` (the one Vital
 * addresses the event to); a `user_id` inside `data` is kept in the stored object only.
 */
export function interpretEvent(body: string, options: InterpretOptions = {}): EventAction {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new MalformedEnvelopeError('(unparsed)', ['$: invalid_json']);
  }
  const head = parse(eventTypeSchema, json, '(unclassified)', '');
  const eventType = head.event_type;
  const owner = envelopeOwner(json);
  if (options.expectedTeamId && head.team_id !== options.expectedTeamId) {
    return { kind: 'foreign_team', teamId: head.team_id ?? '', ...(owner ? { userId: owner } : {}) };
  }
  const eventClass = classifyEventType(eventType);
  switch (eventClass.family) {
    case 'unknown':
      return { kind: 'unknown', ...(owner ? { userId: owner } : {}) };
    case 'out_of_scope':
      return { kind: eventClass.family };
    case 'device':
      return { kind: 'device', change: eventClass.change };
  }
  const envelope = parse(envelopeSchema, json, eventType, '');
  try {
    return interpretFamily(eventClass, envelope, eventType);
  } catch (error) {
    if (error instanceof UnreadableTimeError) throw new MalformedEnvelopeError(eventType, [error.message]);
    throw error;
  }
}

/** The envelope's user, with its `client_user_id` (the customer's own id for the user) when it has one. */
const userOf = (envelope: z.infer<typeof envelopeSchema>): EventUser => ({
  userId: envelope.user_id,
  ...(envelope.client_user_id ? { clientUserId: envelope.client_user_id } : {}),
});

function interpretFamily(
  eventClass: Extract<EventClass, { family: 'incremental' | 'historical' | 'connection' }>,
  envelope: z.infer<typeof envelopeSchema>,
  eventType: string,
): EventAction {
  switch (eventClass.family) {
    case 'incremental':
      return interpretData(eventClass.resource, userOf(envelope), envelope.data, eventType);
    case 'historical': {
      const notice = parse(historicalSchema, envelope.data, eventType, 'data');
      return {
        kind: 'historical',
        ...userOf(envelope),
        provider: notice.provider,
        resource: eventClass.resource.name,
        startDate: notice.start_date,
        endDate: notice.end_date,
      };
    }
    case 'connection':
      return interpretConnection(eventClass.change, userOf(envelope), envelope.data, eventType);
  }
}
