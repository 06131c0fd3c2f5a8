import { deterministicUuid, exampleEvent } from '../../functions/domain/example-events';
import { newMessageId } from '../../functions/domain/message-order';
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

export type MessageKind = 'summary' | 'timeseries' | 'historical' | 'connection' | 'ignored' | 'poison';

/** One Svix message of the storm. */
export interface StormMessage {
  readonly svixId: string;
  readonly kind: MessageKind;
  readonly eventType: string;
  readonly body: string;
  /** The parsed envelope (the oracle reads it; the sender sends `body`). */
  readonly envelope: { readonly event_type: string; readonly user_id: string; readonly data: Record<string, unknown> };
}

/** A historical backfill the storm announces. */
export interface HistoricalRequest {
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
}

export interface StormOptions {
  readonly seed: number;
  /** Users in the storm; every other figure scales with it. */
  readonly users: number;
  /** Fraction of messages delivered more than once. @default 0.3 */
  readonly duplicateFraction?: number;
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

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Incremental data lives in May 2024; backfilled history in January 2024, so the two never share an identity. */
const INCREMENTAL_START = Date.parse('2024-05-01T00:00:00Z');
const HISTORY_START = Date.parse('2024-01-01T00:00:00Z');
const TEAM_ID = '8d2e6b14-5a3f-4c97-b0e1-7f9a2c4d6e85';

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
    messages.push({ svixId: newMessageId(new Date(createdAtMs), idBytes()), kind, eventType: envelope.event_type, body, envelope });
    return messages.length - 1;
  };
  const envelopeOf = (event: ReturnType<typeof exampleEvent>): StormMessage['envelope'] => ({ ...event, team_id: TEAM_ID }) as never;

  const users = Array.from({ length: options.users }, (_, index) => deterministicUuid('storm-user', options.seed, index));
  users.forEach((userId, userIndex) => {
    const providers = shuffle(random, [...PROVIDERS]).slice(0, int(random, 1, 2));
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
      historical.push({ userId, provider, resource, startDate: vitalTime(from), endDate: vitalTime(to) });
      const envelope = {
        event_type: `historical.data.${resource}.created`,
        data: { user_id: userId, provider, start_date: startDate, end_date: endDate, ...(random() < 0.5 ? { is_final: true } : {}) },
        user_id: userId,
        client_user_id: clientUserId,
        team_id: TEAM_ID,
      };
      add('historical', envelope, INCREMENTAL_START + int(random, 0, 5) * DAY);
    }

    // Events to acknowledge and count, never store: out of scope, unknown, device.
    if (random() < 0.3) {
      const type = pick(random, ['labtest.order.updated', 'daily.data.brand_new_resource.created', 'provider.device.created']);
      add('ignored', { event_type: type, data: { user_id: userId, provider: providers[0] }, user_id: userId, client_user_id: clientUserId, team_id: TEAM_ID } as never, INCREMENTAL_START);
    }
  });

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
  const inversions = versionGroups.filter(
    (group) => group.length > 1 && firstDelivery.get(group[group.length - 1]!)! < firstDelivery.get(group[0]!)!,
  ).length;

  return { seed: options.seed, users, messages, deliveries, historical, inversions };
}
