import * as z from 'zod/mini';
import type { ChangeDetailType } from './change-events';

/**
 * The detail of each change event's detail-type (`change-events.ts`), as zod schemas with a
 * description per field: the source of docs/events/*.schema.json. Only the docs generator, the CLI
 * and the tests load it; the handlers build events to the types derived from it.
 */

const count = z.int().check(z.minimum(0));
const text = z.string().check(z.minLength(1));
/** A field with its description, which the JSON Schema under docs/events/ carries. */
const described = <T extends z.ZodMiniType>(schema: T, description: string): T => schema.check(z.describe(description)) as T;
/** An instant, as the stores keep it (UTC, microseconds: `record-identity.ts` `instantKey`). */
const instant = z.string().check(z.regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/));

const user = {
  user_id: described(text, "Vital's user id."),
  client_user_id: z.optional(described(text, "The webhook envelope's client_user_id (your own id for the user); absent for data fetched from the API.")),
};
const svixId = described(text, 'The svix-id of the webhook delivery that made the change.');
const backfillRun = described(text, 'The backfill run that made the change (inspect backfills shows it).');

export const DETAIL_SCHEMAS = {
  'Records Changed': described(
    z.object({
      ...user,
      provider: z.optional(described(text, 'The provider the records come from (absent for a summary whose source names none).')),
      source_type: z.optional(described(text, "The timeseries batch's source.type ('unknown' when Vital leaves it out).")),
      resource: described(text, 'The resource, as `vital-pipeline inspect resources` lists it.'),
      kind: described(z.enum(['summary', 'timeseries', 'workout_stream']), 'Where the records are: the summaries table, the timeseries table, or a workout stream in the raw-body bucket.'),
      workout_id: z.optional(described(text, 'For a workout stream: the workout.')),
      time_range: z.optional(described(
        z.object({ from: instant, to: instant }),
        'The instants (UTC, microseconds) of the first and last record of the change, inclusive; absent when no record has a time (profile, streams).',
      )),
      records: described(
        z.object({ created: count, updated: count, unchanged: count }),
        'Records new to the store; records that replaced an older version; records found stored at this version already (a redelivery, which publishes again).',
      ),
      svix_id: z.optional(svixId),
      backfill_run: z.optional(backfillRun),
    }),
    'Records of one resource stored by one webhook delivery or one backfill page (one event per source type), or one workout stream stored. Never a value.',
  ),
  'Connection Changed': described(
    z.object({
      ...user,
      provider: text,
      change: described(z.enum(['created', 'error']), 'The connection was made, or reported an error.'),
      error_type: z.optional(described(text, "For an error: Vital's error_type.")),
      result: described(z.enum(['applied', 'unchanged']), 'Whether this delivery changed the stored state, or found it stored already (a redelivery).'),
      svix_id: svixId,
    }),
    "A provider connection's stored state changed.",
  ),
  'Backfill Progress': described(
    z.object({
      user_id: text,
      provider: text,
      resource: text,
      backfill_run: backfillRun,
      windows_done: count,
      windows_total: count,
      pages_done: count,
      records_stored: count,
    }),
    'A backfill run checkpointed a page: how far it is.',
  ),
  'Backfill Finished': described(
    z.object({
      user_id: text,
      provider: text,
      resource: text,
      backfill_run: backfillRun,
      state: described(z.enum(['completed', 'failed']), 'Every window fetched, or given up (`vital-pipeline backfill retry` resumes it).'),
      start_date: described(text, "The run's range as its status holds it: dates for date-only resources, instants otherwise (the hull of several announced ranges)."),
      end_date: text,
      records_stored: count,
      reason: z.optional(described(text, 'For a failure: the error name and message (never a payload).')),
    }),
    'A backfill run ended. A copy of a completed run\'s job publishes it again.',
  ),
  'Events Held Back': described(
    z.object({
      reason: described(
        z.enum(['unrecognised_event_type', 'foreign_team', 'schema_violation', 'delivery_failed']),
        'An event type the catalogue does not know (inspect unrecognised), another team\'s event (quarantine), backfilled records that break the schema (inspect held-back), a delivery that failed its last attempt (inspect dlq).',
      ),
      count,
      user_id: z.optional(text),
      provider: z.optional(text),
      resource: z.optional(text),
      event_type: z.optional(text),
      svix_id: z.optional(svixId),
      backfill_run: z.optional(backfillRun),
    }),
    'Something was kept aside instead of stored; each is listed by an inspect command and can be replayed or retried.',
  ),
} as const;

export const CHANGE_DETAIL_TYPES = Object.keys(DETAIL_SCHEMAS) as ChangeDetailType[];

/** The JSON Schema of one detail-type, as docs/events/ holds it. */
export function detailJsonSchema(detailType: ChangeDetailType): Record<string, unknown> {
  return { title: detailType, ...z.toJSONSchema(DETAIL_SCHEMAS[detailType]) } as Record<string, unknown>;
}

/** The file under docs/events/ that holds a detail-type's schema: `records-changed.schema.json`. */
export const detailSchemaFile = (detailType: ChangeDetailType): string => `${detailType.toLowerCase().replace(/ /g, '-')}.schema.json`;

