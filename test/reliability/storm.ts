import { deterministicUuid, exampleEvent } from '../../functions/domain/example-events';
import { messageCreatedAtMs, newMessageId } from '../../functions/domain/message-order';
import { seededRandom } from '../../functions/domain/seeded-random';

/**
 * The storm: a seeded, reproducible stream of Vital webhook messages for many users, and the plan
 * of how they are delivered (duplicates, disorder). Pure code: the same seed and size always give
 * the same messages, ids and delivery order, so a failing run is replayed with `STORM_SEED`.
 *
 * Every message is what Svix would hold: a fixed `msg_` id (a KSUID whose creation time follows the
 * version order of what it carries) and a body. Signing happens later, at delivery time.
 */

export type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const int = (random: Random, min: number, max: number): number => min + Math.floor(random() * (max - min + 1));

function shuffle<T>(random: Random, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export type MessageKind = 'summary' | 'timeseries' | 'historical' | 'connection' | 'stream' | 'foreign' | 'unrecognised' | 'ignored' | 'poison';

/** How one delivery attempt is signed around the storm's secret rotation. */
export type Signing = 'old' | 'new' | 'both';

/** One Svix message of the storm. */
export interface StormMessage {
  readonly svixId: string;
  readonly kind: MessageKind;
  readonly eventType: string;
  readonly body: string;
  /** The envelope as sent: `body` parsed (the oracle reads it; the sender sends `body`). */
  readonly envelope: { readonly event_type: string; readonly user_id: string; readonly data: Record<string, unknown> };
}

/** A historical backfill the storm announces. */
export interface HistoricalRequest {
  /** The historical event announcing it: the run id of its backfill. */
  readonly svixId: string;
  readonly userId: string;
  readonly provider: string;
  readonly resource: string;
  readonly startDate: string;
  readonly endDate: string;
}

export interface Storm {
  readonly seed: number;
  readonly users: readonly string[];
  readonly messages: readonly StormMessage[];
  /** Indices into `messages`, in the order the senders take them; a message listed twice is a duplicate. */
  readonly deliveries: readonly number[];
  readonly historical: readonly HistoricalRequest[];
  /** Identities whose newest version is delivered before an older one at least once. */
  readonly inversions: number;
  /**
   * The signing-secret rotation: from delivery position `rotationAt` on, the store holds
   * `{"current": NEW, "previous": OLD}` and each position is signed as `signing` says (`old` before).
   */
  readonly rotationAt: number;
  readonly signing: readonly Signing[];
  /** Keys `${userId}|${provider}|${resource}` announced twice whose newer event is delivered first. */
  readonly historicalInversions: readonly string[];
}

export interface StormOptions {
  readonly seed: number;
  /** Users in the storm; every other figure scales with it. */
  readonly users: number;
  /** Fraction of messages delivered more than once. @default 0.3 */
  readonly duplicateFraction?: number;
  /**
   * The workouts the Data Access API holds for a user and provider in a range (the fake API's,
   * deterministic in its seed): workout_stream notices are only sent for workouts that exist.
   * Without it the storm has no workout_stream notices.
   */
  readonly workoutsOf?: (userId: string, provider: string, startDate: string, endDate: string) => Iterable<string>;
}

const SUMMARY_RESOURCES = ['sleep', 'activity', 'workouts', 'body', 'meal'] as const;
/** Timeseries shapes: samples per batch and spacing, chosen to cross 15-minute buckets. */
const SERIES = {
  heartrate: { count: 24, every: 30 },
  steps: { count: 12, every: 60 },
  glucose: { count: 6, every: 300 },
  cholesterol: { count: 2, every: 86_400 },
  blood_pressure: { count: 3, every: 3_600 },
  calories_active: { count: 20, every: 60 },
} as const;
const PROVIDERS = ['oura', 'garmin', 'fitbit', 'apple_health_kit', 'withings'] as const;
const HISTORICAL_RESOURCES = ['sleep', 'activity', 'heartrate', 'steps'] as const;
/**
 * Event types no catalogue knows (Vital adds types without notice): a new resource, a new provider
 * event, a change the catalogue has no word for. Each body must be kept for a replay.
 */
const UNKNOWN_EVENT_TYPES = [
  'daily.data.brand_new_resource.created',
  'provider.brand_new_event.created',
  'historical.data.brand_new_resource.created',
  'daily.data.heartrate.deleted',
] as const;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Incremental data lives in May 2024; backfilled history in January 2024, so the two never share an identity. */
const INCREMENTAL_START = Date.parse('2024-05-01T00:00:00Z');
const HISTORY_START = Date.parse('2024-01-01T00:00:00Z');
export const TEAM_ID = '8d2e6b14-5a3f-4c97-b0e1-7f9a2c4d6e85';
/** Another team's id: its events reach our endpoint (a misrouted webhook) and must be quarantined. */
export const FOREIGN_TEAM_ID = '0f3c7a91-6b2d-4e58-a1c4-9d8e7f6a5b30';
/** Samples in a claim-checked heartrate batch: one a second for 3.3 h (40 buckets), about 1.2 MB of JSON (> 1 MiB). */
export const LARGE_BATCH_SAMPLES = 12_000;

const messageCreatedAt = (svixId: string): number => messageCreatedAtMs(svixId)!;
const vitalTime = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19)}+00:00`;

/** Generates the storm for `options`; deterministic in `seed` and `users`. */
export function generateStorm(options: StormOptions): Storm {
  const random = seededRandom(options.seed);
  const idBytes = () => Uint8Array.from({ length: 16 }, () => Math.floor(random() * 256));
  const messages: StormMessage[] = [];
  const historical: HistoricalRequest[] = [];
  // Version groups: message indices of one identity in creation order, to count inversions later.
  const versionGroups: number[][] = [];

  const add = (kind: MessageKind, envelope: StormMessage['envelope'], createdAtMs: number): number => {
    const body = JSON.stringify(envelope);
    // The oracle reads what is sent: the body parsed again (a generated -0 is sent as 0).
    messages.push({ svixId: newMessageId(new Date(createdAtMs), idBytes()), kind, eventType: envelope.event_type, body, envelope: JSON.parse(body) });
    return messages.length - 1;
  };
  const envelopeOf = (event: ReturnType<typeof exampleEvent>): StormMessage['envelope'] => ({ ...event, team_id: TEAM_ID }) as never;

  const users = Array.from({ length: options.users }, (_, index) => deterministicUuid('storm-user', options.seed, index));
  const providersOf = new Map<string, readonly string[]>();
  const historicalOf = new Map<string, number[]>();
  users.forEach((userId, userIndex) => {
    const providers = shuffle(random, [...PROVIDERS]).slice(0, int(random, 1, 2));
    providersOf.set(userId, providers);
    const clientUserId = `client-${options.seed}-${userIndex}`;
    const common = { userId, clientUserId, teamId: TEAM_ID };

    for (const provider of providers) {
      // Connection: created, sometimes followed by an error (newer) or a reconnection.
      const connectedAt = INCREMENTAL_START + int(random, 0, 3) * DAY + int(random, 0, 20) * HOUR;
      const connectionEvents = ['provider.connection.created', ...(random() < 0.4 ? ['provider.connection.error'] : []), ...(random() < 0.2 ? ['provider.connection.created'] : [])];
      versionGroups.push(
        connectionEvents.map((type, step) =>
          add('connection', envelopeOf(exampleEvent(type, { ...common, provider, seed: userIndex })), connectedAt + step * 600_000),
        ),
      );

      // Summaries: several records, each in one to four versions with rising updated_at.
      for (let record = int(random, 2, 4); record > 0; record -= 1) {
        const resource = pick(random, SUMMARY_RESOURCES);
        const at = INCREMENTAL_START + int(random, 0, 12) * DAY + int(random, 6, 20) * HOUR;
        const seed = int(random, 1, 1_000_000);
        const versions = int(random, 1, 4);
        const group: number[] = [];
        let updatedAt = at + HOUR;
        for (let version = 0; version < versions; version += 1) {
          updatedAt += int(random, 1, 180) * 60_000;
          const type = `daily.data.${resource}.${version === 0 ? 'created' : 'updated'}`;
          const event = exampleEvent(type, { ...common, provider, at: new Date(at), seed, updatedAt: new Date(updatedAt) });
          // Svix creates the message a few seconds after the provider's update.
          group.push(add('summary', envelopeOf(event), updatedAt + int(random, 1, 30) * 1000));
        }
        versionGroups.push(group);
      }

      // Timeseries: batches that overlap earlier ones and re-send buckets with changed values.
      const seriesNames = shuffle(random, Object.keys(SERIES) as (keyof typeof SERIES)[]).slice(0, int(random, 2, 3));
      for (const resource of seriesNames) {
        const { count, every } = SERIES[resource];
        const sourceType = random() < 0.15 ? 'app' : undefined;
        const start = INCREMENTAL_START + int(random, 0, 12) * DAY + int(random, 0, 22) * HOUR + int(random, 0, 59) * 60_000;
        let createdAt = start + count * every * 1000 + 60_000;
        const group: number[] = [];
        let offset = 0;
        for (let batch = int(random, 2, 5); batch > 0; batch -= 1) {
          const resend = group.length > 0 && random() < 0.35;
          // A re-sent bucket starts where an earlier batch did; otherwise the next batch overlaps the last one a little.
          const first = resend ? int(random, 0, Math.max(0, offset - 1)) : offset;
          const type = `daily.data.${resource}.${resend ? 'updated' : 'created'}`;
          const event = exampleEvent(type, {
            ...common,
            provider,
            ...(sourceType ? { sourceType } : {}),
            at: new Date(start + first * every * 1000),
            seed: int(random, 1, 1_000_000),
            sampleCount: count,
            sampleIntervalSeconds: every,
          });
          createdAt += int(random, 2, 120) * 1000;
          group.push(add('timeseries', envelopeOf(event), createdAt));
          if (!resend) offset = first + count - int(random, 0, Math.floor(count / 3));
        }
        versionGroups.push(group);
      }
    }

    // Historical backfills: a short range in January for one or two resources, sometimes reversed, as Vital's examples show.
    const announced = shuffle(random, [...HISTORICAL_RESOURCES]).slice(0, random() < 0.4 ? 2 : 1);
    for (const resource of announced) {
      const provider = providers[0]!;
      const from = HISTORY_START + int(random, 0, 10) * DAY;
      const to = from + int(random, 1, 2) * DAY;
      const reversed = random() < 0.2;
      const startDate = vitalTime(reversed ? to : from);
      const endDate = vitalTime(reversed ? from : to);
      const envelope = {
        event_type: `historical.data.${resource}.created`,
        data: { user_id: userId, provider, start_date: startDate, end_date: endDate, ...(random() < 0.5 ? { is_final: true } : {}) },
        user_id: userId,
        client_user_id: clientUserId,
        team_id: TEAM_ID,
      };
      const index = add('historical', envelope, INCREMENTAL_START + int(random, 0, 5) * DAY);
      historical.push({ svixId: messages[index]!.svixId, userId, provider, resource, startDate: vitalTime(from), endDate: vitalTime(to) });
      historicalOf.set(userId, [...(historicalOf.get(userId) ?? []), index]);
    }

    // Events to acknowledge, never store: out of scope, device, and an unknown type (kept for a replay).
    if (random() < 0.3) {
      const type = pick(random, ['labtest.order.updated', UNKNOWN_EVENT_TYPES[0], 'provider.device.created']);
      const kind = type === UNKNOWN_EVENT_TYPES[0] ? 'unrecognised' : 'ignored';
      add(kind, { event_type: type, data: { user_id: userId, provider: providers[0] }, user_id: userId, client_user_id: clientUserId, team_id: TEAM_ID } as never, INCREMENTAL_START);
    }
  });

  // What the storm adds on top, drawn from its own random stream so that the messages above stay
  // the same for a seed: claim-checked batches, workout streams, repeated backfills, another team,
  // unknown event types, workout history.
  const more = seededRandom(options.seed ^ 0x2b1d_9e37);
  const sample = <T>(items: readonly T[], count: number): T[] => shuffle(more, [...items]).slice(0, Math.max(0, Math.min(items.length, count)));
  const clientOf = (userId: string) => `client-${options.seed}-${users.indexOf(userId)}`;

  // Claim-checked bodies: a few heartrate batches past 1 MiB (a day of 3-second samples from a watch
  // is tens of thousands), which the verifier parks in S3 and the worker reads back.
  for (const userId of sample(users, Math.max(1, Math.ceil(options.users / 3)))) {
    const provider = providersOf.get(userId)![0]!;
    const at = INCREMENTAL_START + int(more, 0, 12) * DAY + int(more, 0, 12) * HOUR;
    const event = exampleEvent('daily.data.heartrate.created', {
      userId, clientUserId: clientOf(userId), teamId: TEAM_ID, provider, at: new Date(at),
      seed: int(more, 1, 1_000_000), sampleCount: LARGE_BATCH_SAMPLES, sampleIntervalSeconds: 1,
    });
    add('timeseries', envelopeOf(event), at + LARGE_BATCH_SAMPLES * 1_000 + int(more, 60, 600) * 1000);
  }

  // Workout streams: a workout the API holds is announced (daily.data.workouts.created), then its
  // stream in one or two workout_stream notices, each created after the workout.
  if (options.workoutsOf) {
    for (const userId of sample(users, Math.max(1, Math.ceil(options.users / 2)))) {
      const provider = providersOf.get(userId)![0]!;
      const day = INCREMENTAL_START + int(more, 14, 20) * DAY;
      const held = [...options.workoutsOf(userId, provider, vitalTime(day), vitalTime(day + 3 * DAY))].sort();
      for (const workoutId of sample(held, int(more, 1, 2))) {
        const at = day + int(more, 6, 18) * HOUR;
        const workout = exampleEvent('daily.data.workouts.created', { userId, clientUserId: clientOf(userId), teamId: TEAM_ID, provider, at: new Date(at), seed: int(more, 1, 1_000_000) });
        const announced = add('summary', envelopeOf({ ...workout, data: { ...workout.data, id: workoutId } }), at + 2 * HOUR);
        const group = [announced];
        for (let notice = int(more, 1, 2), createdAt = at + 2 * HOUR; notice > 0; notice -= 1) {
          createdAt += int(more, 1, 90) * 60_000;
          const stream = exampleEvent('daily.data.workout_stream.created', { userId, clientUserId: clientOf(userId), teamId: TEAM_ID, provider, at: new Date(at), seed: int(more, 1, 1_000_000) });
          group.push(add('stream', envelopeOf({ ...stream, data: { ...stream.data, workout_id: workoutId } }), createdAt));
        }
        versionGroups.push(group.slice(1));
      }
    }
  }

  // A second historical event for the same (user, provider, resource): a re-authentication a day or
  // two later runs the backfill again, over the same start and a range that ends later.
  const repeated: [number, number][] = [];
  for (const userId of sample(users, Math.max(1, Math.ceil(options.users / 4)))) {
    const first = messages[pick(more, historicalOf.get(userId)!)]!;
    const request = historical.find((candidate) => candidate.svixId === first.svixId)!;
    const endDate = vitalTime(Date.parse(request.endDate) + DAY);
    const data = { user_id: userId, provider: request.provider, start_date: request.startDate, end_date: endDate };
    const createdAt = messageCreatedAt(first.svixId) + int(more, 1, 2) * DAY;
    const index = add('historical', { event_type: first.eventType, data, user_id: userId, client_user_id: clientOf(userId), team_id: TEAM_ID } as never, createdAt);
    historical.push({ ...request, svixId: messages[index]!.svixId, endDate });
    repeated.push([messages.indexOf(first), index]);
  }

  // Another team's events reaching this endpoint (a webhook registered with the wrong URL): correctly
  // signed, well formed, for users of that team; acknowledged, never stored, kept under quarantine/.
  const foreignCount = Math.max(2, Math.ceil(options.users / 3));
  for (let index = 0; index < foreignCount; index += 1) {
    const userId = deterministicUuid('storm-foreign-user', options.seed, index);
    const type = ['daily.data.sleep.created', 'daily.data.steps.created', 'provider.connection.created', 'historical.data.activity.created'][index % 4]!;
    const event = exampleEvent(type, { userId, clientUserId: `foreign-${index}`, teamId: FOREIGN_TEAM_ID, provider: pick(more, PROVIDERS), at: new Date(INCREMENTAL_START + int(more, 0, 12) * DAY), seed: int(more, 1, 1_000_000) });
    add('foreign', event as never, INCREMENTAL_START + int(more, 0, 12) * DAY);
  }

  // Our own team's events of types no catalogue knows yet: acknowledged, never stored, each body kept
  // under unrecognised/ and listed for a replay.
  const unknownCount = Math.max(2, Math.ceil(options.users / 3));
  for (let index = 0; index < unknownCount; index += 1) {
    const userId = pick(more, users);
    const provider = providersOf.get(userId)![0]!;
    const at = INCREMENTAL_START + int(more, 0, 12) * DAY + int(more, 0, 23) * HOUR;
    const envelope = {
      event_type: UNKNOWN_EVENT_TYPES[index % UNKNOWN_EVENT_TYPES.length]!,
      data: { user_id: userId, provider, id: deterministicUuid('storm-unknown', options.seed, index), created_at: vitalTime(at), value: int(more, 1, 1000) },
      user_id: userId,
      client_user_id: clientOf(userId),
      team_id: TEAM_ID,
    };
    add('unrecognised', envelope, at + int(more, 1, 30) * 1000);
  }

  // Workout history: five to seven days of workouts announced by a historical event. Its backfill
  // lists them (one page) and fetches each one's stream inside that page, one request a workout.
  for (const userId of sample(users, Math.max(1, Math.ceil(options.users / 6)))) {
    const provider = providersOf.get(userId)![0]!;
    const from = HISTORY_START + int(more, 0, 10) * DAY;
    const to = from + int(more, 5, 7) * DAY;
    const range = { startDate: vitalTime(from), endDate: vitalTime(to) };
    const envelope = {
      event_type: 'historical.data.workouts.created',
      data: { user_id: userId, provider, start_date: range.startDate, end_date: range.endDate },
      user_id: userId,
      client_user_id: clientOf(userId),
      team_id: TEAM_ID,
    };
    const index = add('historical', envelope, INCREMENTAL_START + int(more, 0, 5) * DAY);
    historical.push({ svixId: messages[index]!.svixId, userId, provider, resource: 'workouts', ...range });
  }

  // Poison: correctly signed, processable event types whose bodies break their schema. They must be
  // retried, then kept in the dead-letter queue, never stored and never block anything else.
  const poisonCount = Math.max(2, Math.ceil(options.users / 4));
  for (let index = 0; index < poisonCount; index += 1) {
    const userId = pick(random, users);
    const base = { user_id: userId, client_user_id: 'poison', team_id: TEAM_ID };
    const variants = [
      { event_type: 'daily.data.sleep.created', data: { user_id: userId, source: { provider: 'oura', type: 'ring' } }, ...base },
      { event_type: 'daily.data.heartrate.created', data: { user_id: userId, source: { provider: 'oura' }, data: [{ timestamp: 'yesterday-ish', value: 60 }] }, ...base },
      { event_type: 'daily.data.workouts.updated', data: null, ...base },
      { event_type: 'historical.data.sleep.created', data: { user_id: userId, start_date: '2024-01-01' }, ...base },
    ];
    add('poison', variants[index % variants.length] as never, INCREMENTAL_START + index * 1000);
  }

  // Deliveries: every message once, some twice or three times (Svix retries after a lost answer),
  // all shuffled, so `updated` often arrives before `created` and batches out of order.
  const duplicateFraction = options.duplicateFraction ?? 0.3;
  const deliveries: number[] = [];
  messages.forEach((_, index) => {
    deliveries.push(index);
    if (random() < duplicateFraction) {
      deliveries.push(index);
      if (random() < 0.2) deliveries.push(index);
    }
  });
  shuffle(random, deliveries);

  const firstDelivery = new Map<number, number>();
  deliveries.forEach((message, position) => {
    if (!firstDelivery.has(message)) firstDelivery.set(message, position);
  });

  // Repeated backfills: the first pair's newer event is delivered first (Svix does not keep order),
  // the second pair's in order, so both cases occur in every storm that has two pairs.
  const historicalInversions: string[] = [];
  repeated.forEach(([older, newer], pair) => {
    const invert = pair % 2 === 0;
    if (invert !== firstDelivery.get(newer)! < firstDelivery.get(older)!) {
      for (let position = 0; position < deliveries.length; position += 1) {
        if (deliveries[position] === older) deliveries[position] = newer;
        else if (deliveries[position] === newer) deliveries[position] = older;
      }
      const [a, b] = [firstDelivery.get(older)!, firstDelivery.get(newer)!];
      firstDelivery.set(older, b);
      firstDelivery.set(newer, a);
    }
    if (invert) {
      const { data } = messages[older]!.envelope;
      historicalInversions.push(`${messages[older]!.envelope.user_id}|${String(data.provider)}|${messages[older]!.eventType.split('.')[2]}`);
    }
  });

  const inversions = versionGroups.filter(
    (group) => group.length > 1 && firstDelivery.get(group[group.length - 1]!)! < firstDelivery.get(group[0]!)!,
  ).length;

  // The rotation, part-way through: before it every attempt is signed with the old secret. After it,
  // copies of messages first delivered before it are late retries still signed with the old secret;
  // other messages are signed with both secrets for a while (Svix signs with both during a rotation),
  // then with the new one alone.
  const rotationAt = Math.floor(deliveries.length * (0.35 + 0.3 * more()));
  const dualUntil = rotationAt + Math.floor((deliveries.length - rotationAt) * 0.3);
  const signing: Signing[] = deliveries.map((message, position) => {
    if (position < rotationAt || firstDelivery.get(message)! < rotationAt) return 'old';
    return position < dualUntil ? 'both' : 'new';
  });

  return { seed: options.seed, users, messages, deliveries, historical, inversions, rotationAt, signing, historicalInversions };
}
