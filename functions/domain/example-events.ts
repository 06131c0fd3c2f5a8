import { createHash } from 'node:crypto';
import { classifyEventType, type ResourceDefinition } from './catalogue';
import { seededRandom } from './seeded-random';
import { NamedError } from './named-error';

/**
 * Realistic, deterministic Vital webhook envelopes for every event type of the catalogue: the
 * project's own examples, used by the CLI (`send --type`), the tests, the benchmark and the
 * reliability storm. The same inputs always give the same envelope; `created` and `updated` of one
 * resource share their identities (record id, sample timestamps) and differ in values and
 * `updated_at`, as Vital's do. Shapes follow Vital's documented payloads: summary objects with
 * `id`/`created_at`/`updated_at`/`source{provider,type}`, timeseries batches of samples, typed samples
 * at one instant (cholesterol), `systolic`/`diastolic` blood pressure, string-valued notes, and
 * `start`/`end` on interval types.
 */

/** Knobs of an example; every one has a fixed default, so `exampleEvent(type)` is reproducible. */
export interface ExampleOptions {
  readonly userId?: string;
  readonly clientUserId?: string;
  readonly teamId?: string;
  readonly provider?: string;
  /** `source.type`; defaults to what the provider is (`ring` for oura, `watch` for garmin, ...). */
  readonly sourceType?: string;
  /** Start of the data: first sample, session start, or the summary's day. Default 2024-05-14T08:00Z. */
  readonly at?: Date | string;
  /** Varies values and record ids between examples that share everything else. */
  readonly seed?: number;
  /** Samples in a timeseries batch (default: 5 for dense series, 1 for sparse ones). */
  readonly sampleCount?: number;
  /** Seconds between samples (default: the resource's usual spacing). */
  readonly sampleIntervalSeconds?: number;
  /** `updated_at` of a summary; default `at` + 1 h (created) or + 2 h (updated). */
  readonly updatedAt?: Date | string;
  /** Days of history a historical notice announces, ending at `at`. @default 30 */
  readonly historicalDays?: number;
  /** The resources a new connection makes available. @default sleep and heartrate */
  readonly availableResources?: readonly string[];
}

/** Raised for an event type the example generator has no shape for. */
export class UnknownExampleTypeError extends NamedError {}

/** A webhook body as Vital sends it. */
export interface ExampleEnvelope {
  readonly event_type: string;
  readonly data: Record<string, unknown>;
  readonly user_id: string;
  readonly client_user_id: string;
  readonly team_id: string;
}

export const EXAMPLE_DEFAULTS = {
  userId: '3f1c9a52-7b0e-4d8a-9c61-2e5b7f40a1d3',
  clientUserId: '01J0Z8Q6W3K5V7N9P2R4T6X8YA',
  teamId: '8d2e6b14-5a3f-4c97-b0e1-7f9a2c4d6e85',
  provider: 'oura',
  at: '2024-05-14T08:00:00+00:00',
} as const;

const sourceTypeOfProvider: Readonly<Record<string, string>> = {
  oura: 'ring',
  garmin: 'watch',
  fitbit: 'watch',
  apple_health_kit: 'watch',
  whoop_v2: 'watch',
  withings: 'scale',
  dexcom_v3: 'automatic',
  freestyle_libre: 'automatic',
  omron: 'cuff',
};

/** A timeseries resource's realistic samples. */
interface SampleProfile {
  readonly unit: string;
  readonly min: number;
  readonly max: number;
  readonly decimals: number;
  /** Usual spacing of samples, seconds; dense series get 5 samples per example by default. */
  readonly everySeconds: number;
  /** Interval type: samples carry `start`/`end` (`end` = next sample's start). */
  readonly interval: boolean;
  /** Several samples per instant, one per type (cholesterol), or one fixed type (glucose). */
  readonly types?: readonly string[];
  readonly extra?: Readonly<Record<string, unknown>>;
}

const profile = (
  unit: string,
  min: number,
  max: number,
  decimals: number,
  everySeconds: number,
  interval: boolean,
  more: Pick<SampleProfile, 'types' | 'extra'> = {},
): SampleProfile => ({ unit, min, max, decimals, everySeconds, interval, ...more });

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86_400;

const sampleProfiles: Readonly<Record<string, SampleProfile>> = {
  afib_burden: profile('%', 0, 5, 1, DAY, true),
  basal_body_temperature: profile('°C', 36.1, 37.2, 2, DAY, true),
  blood_oxygen: profile('%', 94, 100, 0, 5 * MINUTE, false),
  blood_pressure: profile('mmHg', 0, 0, 0, DAY, false),
  body_mass_index: profile('index', 19, 27, 1, DAY, true),
  body_temperature: profile('°C', 36.2, 37.4, 2, HOUR, true, { extra: { sensor_location: 'wrist' } }),
  body_temperature_delta: profile('°C', -1, 1, 2, DAY, true, { extra: { sensor_location: 'finger' } }),
  caffeine: profile('g', 0.05, 0.2, 3, 4 * HOUR, true),
  calories_active: profile('kcal', 0, 12, 2, MINUTE, true),
  calories_basal: profile('kcal', 1, 1.4, 3, MINUTE, true),
  carbohydrates: profile('g', 5, 80, 0, 4 * HOUR, true),
  cholesterol: profile('mmol/L', 0.5, 6, 2, DAY, false, {
    types: ['cholesterol/ldl', 'cholesterol/hdl', 'cholesterol/total', 'cholesterol/triglycerides'],
  }),
  daylight_exposure: profile('min', 0, 60, 0, HOUR, true),
  distance: profile('m', 0, 120, 1, MINUTE, true),
  electrocardiogram_voltage: profile('mV', -0.6, 1.4, 3, 1 / 512, false, { types: ['lead_1'] }),
  fall: profile('count', 1, 1, 0, DAY, true),
  fat: profile('%', 12, 32, 1, DAY, false),
  floors_climbed: profile('count', 0, 3, 0, HOUR, true),
  forced_expiratory_volume_1: profile('L', 2.8, 4.2, 2, DAY, true),
  forced_vital_capacity: profile('L', 3.5, 5.2, 2, DAY, true),
  glucose: profile('mmol/L', 4, 9, 1, 5 * MINUTE, false, { types: ['automatic'] }),
  handwashing: profile('count', 1, 1, 0, 4 * HOUR, true),
  heart_rate_alert: profile('count', 1, 1, 0, DAY, true, { types: ['irregular_rhythm', 'high_heart_rate'] }),
  heart_rate_recovery_one_minute: profile('count', 15, 45, 0, DAY, true),
  heartrate: profile('bpm', 52, 150, 0, 1, false),
  hrv: profile('rmssd', 20, 90, 0, 5 * MINUTE, false),
  ige: profile('FSU', 0, 100, 0, DAY, false, { types: ['baha_grass', 'cat_dander', 'dust_mite'] }),
  igg: profile('FSU', 0, 60, 0, DAY, false, { types: ['dairy', 'egg_white', 'wheat'] }),
  inhaler_usage: profile('count', 1, 2, 0, 8 * HOUR, true),
  insulin_injection: profile('unit', 1, 8, 1, 6 * HOUR, true, {
    types: ['rapid_acting'],
    extra: { delivery_mode: 'standard', delivery_form: 'pen', bolus_purpose: 'meal' },
  }),
  lean_body_mass: profile('kg', 45, 65, 1, DAY, true),
  mindfulness_minutes: profile('min', 5, 20, 0, DAY, true),
  note: profile('text', 0, 0, 0, DAY, true, { extra: { tags: ['food', 'exercise'] } }),
  peak_expiratory_flow_rate: profile('L/min', 380, 560, 0, DAY, true),
  respiratory_rate: profile('bpm', 12, 18, 1, 5 * MINUTE, false),
  sleep_apnea_alert: profile('count', 1, 1, 0, DAY, true),
  sleep_breathing_disturbance: profile('count', 0, 20, 0, DAY, true, { types: ['elevated', 'not_elevated'] }),
  stand_duration: profile('min', 1, 15, 0, HOUR, true),
  stand_hour: profile('count', 1, 1, 0, HOUR, true, { types: ['stood', 'idle'] }),
  steps: profile('count', 0, 140, 0, MINUTE, true),
  stress_level: profile('%', 10, 80, 0, 15 * MINUTE, false),
  uv_exposure: profile('index', 0, 8, 0, HOUR, true),
  vo2_max: profile('mL/kg/min', 38, 52, 1, DAY, true),
  waist_circumference: profile('cm', 70, 100, 1, DAY, true),
  water: profile('ml', 150, 500, 0, 2 * HOUR, true),
  weight: profile('kg', 55, 95, 1, DAY, false),
  wheelchair_push: profile('count', 0, 60, 0, MINUTE, true),
  workout_distance: profile('m', 0, 300, 1, MINUTE, true),
  workout_duration: profile('min', 20, 75, 0, DAY, true, { extra: { intensity: 'moderate' } }),
  workout_swimming_stroke: profile('count', 10, 40, 0, MINUTE, true),
};

const noteTexts = ['Felt rested after a long walk', 'Late dinner, slept poorly', 'Headache in the afternoon', 'Started new running plan'];

/** A generator seeded by the parts an example depends on, so each example is the same on every run. */
function randomSource(...parts: readonly (string | number)[]): () => number {
  return seededRandom(createHash('sha256').update(parts.join('|')).digest().readUInt32LE(0));
}

/** A version-4-shaped UUID derived from its inputs. */
export function deterministicUuid(...parts: readonly (string | number)[]): string {
  const hex = createHash('sha256').update(parts.join('|')).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Vital's timestamp form: seconds precision (more when the time has it), `+00:00`. */
function vitalTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${ms % 1000 === 0 ? iso.slice(0, 19) : iso.slice(0, 23)}+00:00`;
}

function between(random: () => number, min: number, max: number, decimals: number): number {
  // `+ 0` turns the -0 that rounding a small negative gives into 0: JSON has no -0, so an example
  // holding one would not read back equal to itself.
  return Number((min + random() * (max - min)).toFixed(decimals)) + 0;
}

interface Context {
  readonly userId: string;
  readonly provider: string;
  readonly sourceType: string;
  readonly atMs: number;
  readonly seed: number;
  readonly change: 'created' | 'updated';
  readonly options: ExampleOptions;
}

function summaryObject(resource: ResourceDefinition, context: Context): Record<string, unknown> {
  const { userId, provider, sourceType, atMs, seed, change } = context;
  const random = randomSource(resource.name, userId, seed, change);
  const day = vitalTime(atMs - (atMs % (DAY * 1000))).slice(0, 10);
  const base = {
    id: deterministicUuid(resource.name, userId, provider, seed, atMs),
    user_id: userId,
    created_at: vitalTime(atMs + HOUR * 1000),
    updated_at: context.options.updatedAt
      ? vitalTime(new Date(context.options.updatedAt).getTime())
      : vitalTime(atMs + (change === 'updated' ? 2 : 1) * HOUR * 1000),
    source: { provider, type: sourceType, app_id: null, device_id: deterministicUuid('device', userId, provider) },
  };
  const at = (offsetSeconds: number) => vitalTime(atMs + offsetSeconds * 1000);
  switch (resource.name) {
    case 'activity':
      return {
        ...base, calendar_date: day, date: `${day}T00:00:00+00:00`, timezone_offset: 3600, time_zone: 'Europe/Berlin',
        steps: Math.round(between(random, 3000, 14000, 0)), calories_active: between(random, 200, 900, 1),
        calories_total: between(random, 1900, 2900, 1), distance: between(random, 2000, 11000, 1),
        daily_movement: between(random, 2000, 11000, 1), floors_climbed: Math.round(between(random, 0, 20, 0)),
        low: between(random, 60, 200, 0), medium: between(random, 10, 60, 0), high: between(random, 0, 30, 0),
        heart_rate: { avg_bpm: between(random, 60, 80, 0), min_bpm: 48, max_bpm: between(random, 120, 170, 0), resting_bpm: 54 },
      };
    case 'body':
      return {
        ...base, calendar_date: day, date: at(0), weight: between(random, 60, 90, 1), fat: between(random, 12, 30, 1),
        body_mass_index: between(random, 19, 27, 1), height: 178, water_percentage: between(random, 50, 62, 1),
        muscle_mass_percentage: between(random, 35, 45, 1), visceral_fat_index: between(random, 3, 10, 0),
        bone_mass_percentage: 4.1, lean_body_mass_kilogram: between(random, 48, 66, 1), waist_circumference_centimeter: null,
      };
    case 'electrocardiogram':
      return {
        ...base, session_start: at(0), session_end: at(30), voltage_sample_count: 15360, sampling_frequency_hz: 512,
        heart_rate_mean: between(random, 58, 80, 0), classification: 'sinus_rhythm', inconclusive_cause: null,
        source_provider: provider, source_type: sourceType, time_zone: 'Europe/Berlin',
      };
    case 'meal':
      return {
        ...base, calendar_date: day, timestamp: at(0), name: 'Lunch', provider_id: `meal-${seed}`, source_app_id: null,
        energy: { unit: 'kcal', value: between(random, 350, 900, 0) },
        macros: { carbs: between(random, 30, 90, 0), protein: between(random, 15, 50, 0), fats: between(random, 10, 40, 0), alcohol: 0, water: 0, fibers: 8, sugar: 12 },
        micros: { minerals: { sodium: 900 }, vitamins: {}, trace_elements: {} },
      };
    case 'menstrual_cycle':
      return {
        ...base, period_start: day, period_end: vitalTime(atMs + 5 * DAY * 1000).slice(0, 10), cycle_end: null,
        is_predicted: false, menstrual_flow: [{ date: day, flow: 'medium' }], cervical_mucus: [], intermenstrual_bleeding: [],
        contraceptive: [], detected_deviations: [], ovulation_test: [], home_pregnancy_test: [], home_progesterone_test: [],
        sexual_activity: [], basal_body_temperature: [], source_provider: provider, source_type: sourceType, source_app_id: null,
      };
    case 'profile':
      return { ...base, height: between(random, 160, 195, 0), birth_date: '1988-03-02', gender: 'female', sex: 'female', wheelchair_use: false };
    case 'sleep': {
      const duration = Math.round(between(random, 6 * HOUR, 9 * HOUR, 0));
      return {
        ...base, calendar_date: day, date: at(0), bedtime_start: at(-duration), bedtime_stop: at(0), type: 'long_sleep',
        timezone_offset: 3600, duration, total: duration - 1800, awake: 1800, light: Math.round(duration * 0.5),
        rem: Math.round(duration * 0.2), deep: Math.round(duration * 0.2), latency: 600, efficiency: between(random, 0.85, 0.98, 2),
        hr_lowest: between(random, 44, 55, 0), hr_average: between(random, 50, 62, 0), average_hrv: between(random, 30, 90, 0),
        respiratory_rate: between(random, 12, 17, 1), temperature_delta: between(random, -0.5, 0.5, 2), skin_temperature: null,
        recovery_readiness_score: between(random, 50, 95, 0),
      };
    }
    case 'sleep_cycle':
      return {
        ...base, sleep_id: deterministicUuid('sleep', userId, provider, seed, atMs), session_start: at(-8 * HOUR), session_end: at(0),
        stage_start_offset_second: [0, 600, 3600], stage_end_offset_second: [600, 3600, 8 * HOUR], stage_type: [1, 2, 3],
        time_zone: 'Europe/Berlin', source_provider: provider, source_type: sourceType,
      };
    case 'workouts': {
      const moving = Math.round(between(random, 1200, 4200, 0));
      return {
        ...base, calendar_date: day, time_start: at(0), time_end: at(moving), title: 'Morning Run', timezone_offset: 3600,
        sport: { id: 1, name: 'Running', slug: 'running' }, provider_id: `workout-${seed}`, moving_time: moving,
        distance: between(random, 3000, 15000, 1), calories: between(random, 250, 900, 1), average_hr: between(random, 130, 160, 0),
        max_hr: between(random, 165, 190, 0), average_speed: between(random, 2.5, 4, 2), max_speed: between(random, 4, 6, 2),
        average_watts: null, max_watts: null, device_watts: null, weighted_average_watts: null, elev_high: 120, elev_low: 80,
        total_elevation_gain: between(random, 20, 200, 0), hr_zones: [300, 600, 900, 300, 60], map: null,
      };
    }
  }
  throw new UnknownExampleTypeError(`no summary example for ${resource.name}`);
}

function timeseriesBatch(resource: ResourceDefinition, context: Context): Record<string, unknown> {
  const { userId, provider, sourceType, atMs, seed, change, options } = context;
  const shape = sampleProfiles[resource.name];
  if (!shape) throw new UnknownExampleTypeError(`no timeseries example for ${resource.name}`);
  const random = randomSource(resource.name, userId, provider, seed, change);
  const every = options.sampleIntervalSeconds ?? shape.everySeconds;
  const count = options.sampleCount ?? (shape.everySeconds <= MINUTE ? 5 : 1);
  const types = shape.types ?? [null];
  const samples: Record<string, unknown>[] = [];
  for (let index = 0; index < count; index += 1) {
    const startMs = atMs + Math.round(index * every * 1000);
    for (const type of types.length > 1 || shape.types ? types : [null]) {
      const sample: Record<string, unknown> = { timestamp: vitalTime(startMs) };
      if (shape.interval) Object.assign(sample, { start: vitalTime(startMs), end: vitalTime(startMs + Math.round(every * 1000)) });
      if (resource.name === 'blood_pressure') {
        Object.assign(sample, { systolic: between(random, 105, 140, 0), diastolic: between(random, 65, 90, 0) });
      } else if (resource.name === 'note') {
        sample.value = noteTexts[Math.floor(random() * noteTexts.length)];
      } else {
        sample.value = between(random, shape.min, shape.max, shape.decimals);
      }
      Object.assign(sample, { unit: shape.unit, timezone_offset: 3600, type }, shape.extra ?? {});
      samples.push(sample);
    }
  }
  return { user_id: userId, source: { provider, type: sourceType, app_id: null, device_id: null }, data: samples };
}

function providerName(slug: string): string {
  return slug.replace(/_/g, ' ').replace(/\b\w/g, (letter) => letter.toUpperCase());
}

function eventData(eventType: string, context: Context): Record<string, unknown> {
  const { userId, provider, atMs, seed, options } = context;
  const eventClass = classifyEventType(eventType);
  switch (eventClass.family) {
    case 'incremental':
      if (eventClass.resource.kind === 'summary') return summaryObject(eventClass.resource, context);
      if (eventClass.resource.kind === 'timeseries') return timeseriesBatch(eventClass.resource, context);
      return {
        user_id: userId, workout_id: deterministicUuid('workouts', userId, provider, seed, atMs), provider_id: `workout-${seed}`,
        message: 'Due to payload size limits, to access the workout stream, please use the /v2/timeseries/workouts/{workout_id}/stream endpoint.',
        source: { provider, type: context.sourceType }, sport: { id: 1, name: 'Running', slug: 'running' },
      };
    case 'historical':
      return {
        user_id: userId, provider, start_date: vitalTime(atMs - (options.historicalDays ?? 30) * DAY * 1000), end_date: vitalTime(atMs), is_final: true,
      };
    case 'connection':
      if (eventClass.change === 'error') {
        return {
          user_id: userId, provider, error_type: 'token_refresh_failed', error_details: 'Failed to pull provider data',
          message: "We are having issues fetching information for user. We won't try to fetch again from this specific provider. Please reconnect device.",
        };
      }
      return {
        user_id: userId, external_user_id: `ext-${seed}`,
        provider: { name: providerName(provider), slug: provider, logo: `https://storage.googleapis.com/vital-assets/${provider}.png` },
        resource_availability: Object.fromEntries(
          (options.availableResources ?? ['sleep', 'heartrate']).map((resource) => [
            resource,
            { status: 'available', scope_requirements: { user_granted: { required: [resource], optional: [] }, user_denied: { required: [], optional: [] } } },
          ]),
        ),
      };
    case 'device':
      return { user_id: userId, provider, device_id: deterministicUuid('device', userId, provider), model: 'Gen 3', manufacturer: providerName(provider) };
  }
  throw new UnknownExampleTypeError(`no example for event type ${eventType}`);
}

/**
 * A realistic webhook envelope of `eventType` (any type of `catalogueEventTypes()`, or a device
 * event). Throws `UnknownExampleTypeError` for types the catalogue does not process.
 */
export function exampleEvent(eventType: string, options: ExampleOptions = {}): ExampleEnvelope {
  const userId = options.userId ?? EXAMPLE_DEFAULTS.userId;
  const provider = options.provider ?? EXAMPLE_DEFAULTS.provider;
  const context: Context = {
    userId,
    provider,
    sourceType: options.sourceType ?? sourceTypeOfProvider[provider] ?? 'unknown',
    atMs: new Date(options.at ?? EXAMPLE_DEFAULTS.at).getTime(),
    seed: options.seed ?? 1,
    change: eventType.endsWith('.updated') ? 'updated' : 'created',
    options,
  };
  return {
    event_type: eventType,
    data: eventData(eventType, context),
    user_id: userId,
    client_user_id: options.clientUserId ?? EXAMPLE_DEFAULTS.clientUserId,
    team_id: options.teamId ?? EXAMPLE_DEFAULTS.teamId,
  };
}
