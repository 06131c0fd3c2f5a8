import type { Storm, StormMessage } from './storm';

/**
 * What the pipeline must hold after the storm, computed from the generated messages alone (no
 * pipeline code): the newest `updated_at` of every summary id, the sample of the newest message for
 * every sample identity (user, resource, provider, source type, timestamp, sample type), the newest
 * state of every connection, the backfills announced (the newest event's run for each key), the
 * workouts whose streams were announced, the bodies too large for one queue message, another team's
 * events (quarantined), events of types no catalogue knows (kept for a replay) and the poison messages.
 *
 * "Newest message" is Svix's creation order: a `msg_` id is a KSUID, 27 base-62 characters whose
 * alphabet (0-9, A-Z, a-z) is in ASCII order, so comparing the ids as strings compares creation time
 * first and the random payload second.
 */

export interface ExpectedSummary {
  readonly userId: string;
  readonly resource: string;
  readonly id: string;
  readonly object: Record<string, unknown>;
  readonly updatedAt: string;
}

export interface ExpectedSample {
  readonly provider: string;
  readonly sourceType: string;
  readonly sample: Record<string, unknown>;
  readonly svixId: string;
}

export interface ExpectedConnection {
  readonly userId: string;
  readonly provider: string;
  readonly status: 'connected' | 'error';
  readonly svixId: string;
}

export interface ExpectedStream {
  readonly userId: string;
  readonly provider: string;
  readonly workoutId: string;
  /** The svix-ids of every notice for the workout, oldest first. */
  readonly notices: readonly string[];
  /** The newest notice's `data`: what the stored notice record must hold. */
  readonly newest: Record<string, unknown>;
}

export interface ExpectedBackfill {
  readonly userId: string;
  readonly provider: string;
  readonly resource: string;
  /** Every historical event for the key, oldest first, with its range as sent. */
  readonly runs: readonly { readonly svixId: string; readonly startDate: string; readonly endDate: string }[];
}

/** SQS's message limit (1 MiB): a body above it travels through S3. */
export const QUEUE_MESSAGE_LIMIT_BYTES = 1024 * 1024;

export interface Oracle {
  /** By `${userId}|${resource}|${id}`. */
  readonly summaries: ReadonlyMap<string, ExpectedSummary>;
  /** By `${userId}|${resource}`, then by `sampleIdentity`. */
  readonly samples: ReadonlyMap<string, ReadonlyMap<string, ExpectedSample>>;
  /** By `${userId}|${provider}`. */
  readonly connections: ReadonlyMap<string, ExpectedConnection>;
  readonly poisonIds: ReadonlySet<string>;
  /** By `${userId}|${provider}|${workoutId}`. */
  readonly streams: ReadonlyMap<string, ExpectedStream>;
  /** By `${userId}|${provider}|${resource}`; the newest run (last of `runs`) must be the one completed. */
  readonly backfills: ReadonlyMap<string, ExpectedBackfill>;
  /** svix-ids of bodies larger than one queue message. */
  readonly claimChecked: ReadonlySet<string>;
  /** Another team's events, by svix-id: each body must be in quarantine and nowhere else. */
  readonly foreign: ReadonlyMap<string, StormMessage>;
  /** Events of unknown types, by svix-id: each body must be kept under unrecognised/ and listed, and nowhere else. */
  readonly unrecognised: ReadonlyMap<string, StormMessage>;
}

/** Within one (user, resource): provider, source type, the timestamp as sent, and the sample type. */
export function sampleIdentity(provider: string, sourceType: string, sample: Readonly<Record<string, unknown>>): string {
  const type = typeof sample.type === 'string' && sample.type !== '' ? sample.type : '';
  return `${provider}|${sourceType}|${String(sample.timestamp ?? sample.start)}|${type}`;
}

/** The KSUID part of a `msg_` id. */
export const ksuidOf = (svixId: string): string => svixId.replace(/^msg_/, '');

interface Source {
  readonly provider: string;
  readonly type?: string | null;
}

const resourceOf = (eventType: string): string => eventType.split('.')[2]!;

/** What one message asks to be stored, as identities with the version it carries. */
export type Claim =
  | { readonly kind: 'summary'; readonly key: string; readonly updatedAt: string }
  | { readonly kind: 'sample'; readonly series: string; readonly identity: string }
  | { readonly kind: 'connection'; readonly key: string }
  | { readonly kind: 'historical'; readonly userId: string; readonly provider: string; readonly resource: string }
  | { readonly kind: 'stream'; readonly key: string; readonly userId: string; readonly provider: string; readonly workoutId: string }
  | { readonly kind: 'quarantine' }
  | { readonly kind: 'unrecognised' };

export function claimsOf(message: StormMessage): Claim[] {
  const { envelope } = message;
  const data = envelope.data;
  switch (message.kind) {
    case 'summary':
      return [{ kind: 'summary', key: `${envelope.user_id}|${resourceOf(envelope.event_type)}|${String(data.id)}`, updatedAt: String(data.updated_at) }];
    case 'timeseries': {
      const source = data.source as Source;
      const series = `${envelope.user_id}|${resourceOf(envelope.event_type)}`;
      return (data.data as Record<string, unknown>[]).map((sample) => ({
        kind: 'sample' as const,
        series,
        identity: sampleIdentity(source.provider, source.type || 'unknown', sample),
      }));
    }
    case 'connection': {
      const provider = typeof data.provider === 'string' ? data.provider : (data.provider as { slug: string }).slug;
      return [{ kind: 'connection', key: `${envelope.user_id}|${provider}` }];
    }
    case 'historical':
      return [{ kind: 'historical', userId: envelope.user_id, provider: String(data.provider), resource: resourceOf(envelope.event_type) }];
    case 'stream': {
      const provider = (data.source as Source).provider;
      const workoutId = String(data.workout_id);
      return [{ kind: 'stream', key: `${envelope.user_id}|${provider}|${workoutId}`, userId: envelope.user_id, provider, workoutId }];
    }
    case 'foreign':
      return [{ kind: 'quarantine' }];
    case 'unrecognised':
      return [{ kind: 'unrecognised' }];
    default:
      return [];
  }
}

export function computeOracle(storm: Pick<Storm, 'messages'>): Oracle {
  const summaries = new Map<string, ExpectedSummary>();
  const samples = new Map<string, Map<string, ExpectedSample>>();
  const connections = new Map<string, ExpectedConnection>();
  const poisonIds = new Set<string>();
  const streams = new Map<string, ExpectedStream & { notices: string[] }>();
  const backfills = new Map<string, ExpectedBackfill & { runs: ExpectedBackfill['runs'][number][] }>();
  const claimChecked = new Set<string>();
  const foreign = new Map<string, StormMessage>();
  const unrecognised = new Map<string, StormMessage>();
  const newestFirst = (a: string, b: string) => (ksuidOf(a) < ksuidOf(b) ? -1 : 1);

  for (const message of storm.messages) {
    const { envelope, svixId } = message;
    const data = envelope.data;
    if (Buffer.byteLength(message.body) > QUEUE_MESSAGE_LIMIT_BYTES) claimChecked.add(svixId);
    switch (message.kind) {
      case 'summary': {
        const resource = resourceOf(envelope.event_type);
        const key = `${envelope.user_id}|${resource}|${String(data.id)}`;
        const updatedAt = String(data.updated_at);
        const current = summaries.get(key);
        // Every generated timestamp has one form (`YYYY-MM-DDTHH:MM:SS+00:00`), so strings order them.
        if (!current || current.updatedAt < updatedAt) {
          summaries.set(key, { userId: envelope.user_id, resource, id: String(data.id), object: data, updatedAt });
        }
        break;
      }
      case 'timeseries': {
        const source = data.source as Source;
        const sourceType = source.type || 'unknown';
        const series = `${envelope.user_id}|${resourceOf(envelope.event_type)}`;
        let byIdentity = samples.get(series);
        if (!byIdentity) samples.set(series, (byIdentity = new Map()));
        for (const sample of data.data as Record<string, unknown>[]) {
          const identity = sampleIdentity(source.provider, sourceType, sample);
          const current = byIdentity.get(identity);
          if (!current || ksuidOf(current.svixId) < ksuidOf(svixId)) {
            byIdentity.set(identity, { provider: source.provider, sourceType, sample, svixId });
          }
        }
        break;
      }
      case 'connection': {
        const claim = claimsOf(message)[0] as { key: string };
        const current = connections.get(claim.key);
        if (!current || ksuidOf(current.svixId) < ksuidOf(svixId)) {
          const [userId, provider] = claim.key.split('|') as [string, string];
          connections.set(claim.key, { userId, provider, status: envelope.event_type.endsWith('.error') ? 'error' : 'connected', svixId });
        }
        break;
      }
      case 'stream': {
        const claim = claimsOf(message)[0] as Extract<Claim, { kind: 'stream' }>;
        const current = streams.get(claim.key);
        if (!current) streams.set(claim.key, { userId: claim.userId, provider: claim.provider, workoutId: claim.workoutId, notices: [svixId], newest: data });
        else {
          current.notices.push(svixId);
          current.notices.sort(newestFirst);
          if (current.notices.at(-1) === svixId) streams.set(claim.key, { ...current, newest: data });
        }
        break;
      }
      case 'historical': {
        const claim = claimsOf(message)[0] as Extract<Claim, { kind: 'historical' }>;
        const key = `${claim.userId}|${claim.provider}|${claim.resource}`;
        const backfill = backfills.get(key) ?? { userId: claim.userId, provider: claim.provider, resource: claim.resource, runs: [] };
        backfill.runs.push({ svixId, startDate: String(data.start_date), endDate: String(data.end_date) });
        backfill.runs.sort((a, b) => newestFirst(a.svixId, b.svixId));
        backfills.set(key, backfill);
        break;
      }
      case 'foreign':
        foreign.set(svixId, message);
        break;
      case 'unrecognised':
        unrecognised.set(svixId, message);
        break;
      case 'poison':
        poisonIds.add(svixId);
        break;
      default:
        break;
    }
  }
  return { summaries, samples, connections, poisonIds, streams, backfills, claimChecked, foreign, unrecognised };
}
