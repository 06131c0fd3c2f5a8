/**
 * The event catalogue: the single source of truth for every Vital (Junction) resource the pipeline
 * knows, how its webhooks are shaped, how it is keyed, and how the Data Access API serves it.
 * Everything else (classification, identities, backfill requests, example events, the CLI) derives
 * from this table, so adding or correcting a resource is a one-line change here.
 */

/** How a resource's webhook payload is shaped and keyed. */
export type ResourceKind =
  /** One object at `$.data`, keyed by `$.data.id`, versioned by `updated_at`. */
  | 'summary'
  /** A batch of samples at `$.data.data`, each keyed by provider, source type, timestamp and sample type. */
  | 'timeseries'
  /** A shallow notification keyed by `workout_id`; the stream itself is fetched from the API. */
  | 'stream';

/** How the Data Access API interprets `start_date` / `end_date` for a summary resource. */
export type DateParameterStyle =
  /** ISO datetimes accepted; the range is passed through. */
  | 'datetime'
  /** `YYYY-MM-DD` only, `end_date` inclusive: event datetimes must be converted. */
  | 'date'
  /** No range at all: the endpoint takes only `provider` and returns one object. */
  | 'none';

/** One resource of the catalogue. */
export interface ResourceDefinition {
  readonly name: string;
  readonly kind: ResourceKind;
  /** Path template of the backfill endpoint, `{user_id}` / `{workout_id}` substituted by the client. */
  readonly apiPath: string;
  /** Summary responses wrap their list in this key (the resource name, except `meal` → `meals`). */
  readonly responseKey?: string;
  readonly dateParameters: DateParameterStyle;
  /**
   * Fields of a summary object, in order of preference, that place it in time; used to sort and
   * range-query a user's records. Absent for resources without a natural time (profile).
   */
  readonly timeFields: readonly string[];
}

const summaryTimeFields: Record<string, readonly string[]> = {
  activity: ['calendar_date', 'date'],
  body: ['calendar_date', 'date'],
  electrocardiogram: ['session_start'],
  meal: ['calendar_date', 'timestamp'],
  menstrual_cycle: ['period_start'],
  profile: [],
  sleep: ['bedtime_start', 'calendar_date', 'date'],
  sleep_cycle: ['session_start'],
  workouts: ['time_start', 'calendar_date'],
};

const dateOnlySummaries = new Set(['sleep_cycle', 'electrocardiogram', 'menstrual_cycle']);
const summaryResponseKeys: Record<string, string> = { meal: 'meals' };
const timeseriesPathOverrides: Record<string, string> = { fat: 'body_fat', weight: 'body_weight' };

const timeseriesNames = [
  'afib_burden', 'basal_body_temperature', 'blood_oxygen', 'blood_pressure', 'body_mass_index',
  'body_temperature', 'body_temperature_delta', 'caffeine', 'calories_active', 'calories_basal',
  'carbohydrates', 'cholesterol', 'daylight_exposure', 'distance', 'electrocardiogram_voltage', 'fall',
  'fat', 'floors_climbed', 'forced_expiratory_volume_1', 'forced_vital_capacity', 'glucose',
  'handwashing', 'heart_rate_alert', 'heart_rate_recovery_one_minute', 'heartrate', 'hrv', 'ige', 'igg',
  'inhaler_usage', 'insulin_injection', 'lean_body_mass', 'mindfulness_minutes', 'note',
  'peak_expiratory_flow_rate', 'respiratory_rate', 'sleep_apnea_alert', 'sleep_breathing_disturbance',
  'stand_duration', 'stand_hour', 'steps', 'stress_level', 'uv_exposure', 'vo2_max',
  'waist_circumference', 'water', 'weight', 'wheelchair_push', 'workout_distance', 'workout_duration',
  'workout_swimming_stroke',
] as const;

function summary(name: string): ResourceDefinition {
  return {
    name,
    kind: 'summary',
    apiPath: `/v2/summary/${name}/{user_id}`,
    responseKey: name === 'profile' ? undefined : (summaryResponseKeys[name] ?? name),
    dateParameters: name === 'profile' ? 'none' : dateOnlySummaries.has(name) ? 'date' : 'datetime',
    timeFields: summaryTimeFields[name] ?? [],
  };
}

function timeseries(name: string): ResourceDefinition {
  return {
    name,
    kind: 'timeseries',
    apiPath: `/v2/timeseries/{user_id}/${timeseriesPathOverrides[name] ?? name}/grouped`,
    dateParameters: 'datetime',
    timeFields: [],
  };
}

/** Every resource, by name: 10 summary-family resources (one of them a stream) and 50 timeseries. */
export const RESOURCES: ReadonlyMap<string, ResourceDefinition> = new Map(
  [
    ...Object.keys(summaryTimeFields).map(summary),
    {
      name: 'workout_stream',
      kind: 'stream',
      apiPath: '/v2/timeseries/workouts/{workout_id}/stream',
      dateParameters: 'none',
      timeFields: [],
    } satisfies ResourceDefinition,
    ...timeseriesNames.map(timeseries),
  ].map((definition) => [definition.name, definition]),
);

/** Looks up a resource by name; `undefined` for names the catalogue does not know. */
export function resourceNamed(name: string): ResourceDefinition | undefined {
  return RESOURCES.get(name);
}

/** The resource whose endpoint lists a backfill's records: a `workout_stream` backfill lists workouts. */
export function listingResourceOf(resource: ResourceDefinition): ResourceDefinition {
  return resource.kind === 'stream' ? RESOURCES.get('workouts')! : resource;
}

/** Event type prefixes that are acknowledged and counted but deliberately not processed. */
export const OUT_OF_SCOPE_PREFIXES = ['labtest.', 'lab_report.', 'continuous_query.'] as const;

/** What an `event_type` string means to the pipeline. */
export type EventClass =
  | { family: 'incremental'; resource: ResourceDefinition; change: 'created' | 'updated' }
  | { family: 'historical'; resource: ResourceDefinition }
  | { family: 'connection'; change: 'created' | 'error' }
  | { family: 'device'; change: 'created' | 'updated' }
  | { family: 'out_of_scope' }
  | { family: 'unknown' };

const incrementalPattern = /^daily\.data\.([a-z0-9_]+)\.(created|updated)$/;
const historicalPattern = /^historical\.data\.([a-z0-9_]+)\.created$/;
const legacyHypnogramPattern = /\.timeseries\.hypnogram\./;

/**
 * Classifies an event type. Unknown types are a normal outcome (Vital documents its enums as
 * non-exhaustive), never an error.
 */
export function classifyEventType(eventType: string): EventClass {
  const incremental = incrementalPattern.exec(eventType);
  if (incremental) {
    const resource = resourceNamed(incremental[1]!);
    return resource
      ? { family: 'incremental', resource, change: incremental[2] as 'created' | 'updated' }
      : { family: 'unknown' };
  }
  const historical = historicalPattern.exec(eventType);
  if (historical) {
    const resource = resourceNamed(historical[1]!);
    return resource ? { family: 'historical', resource } : { family: 'unknown' };
  }
  switch (eventType) {
    case 'provider.connection.created':
      return { family: 'connection', change: 'created' };
    case 'provider.connection.error':
      return { family: 'connection', change: 'error' };
    case 'provider.device.created':
      return { family: 'device', change: 'created' };
    case 'provider.device.updated':
      return { family: 'device', change: 'updated' };
  }
  if (OUT_OF_SCOPE_PREFIXES.some((prefix) => eventType.startsWith(prefix)) || legacyHypnogramPattern.test(eventType)) {
    return { family: 'out_of_scope' };
  }
  return { family: 'unknown' };
}

/** Every event type the catalogue can classify as data or notification (for examples and filters). */
export function catalogueEventTypes(): string[] {
  const types = ['provider.connection.created', 'provider.connection.error'];
  for (const resource of RESOURCES.values()) {
    types.push(`daily.data.${resource.name}.created`, `daily.data.${resource.name}.updated`);
    types.push(`historical.data.${resource.name}.created`);
  }
  return types;
}
