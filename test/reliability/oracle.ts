import type { Storm, StormMessage } from './storm';

/**
 * What the pipeline must hold after the storm, computed from the generated messages alone (no
 * pipeline code): the newest `updated_at` of every summary id, the sample of the newest message for
 * every sample identity (user, resource, provider, source type, timestamp, sample type), the newest
 * state of every connection, the backfills announced, and the poison messages.
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

export interface Oracle {
  /** By `${userId}|${resource}|${id}`. */
  readonly summaries: ReadonlyMap<string, ExpectedSummary>;
  /** By `${userId}|${resource}`, then by `sampleIdentity`. */
  readonly samples: ReadonlyMap<string, ReadonlyMap<string, ExpectedSample>>;
  /** By `${userId}|${provider}`. */
  readonly connections: ReadonlyMap<string, ExpectedConnection>;
  readonly poisonIds: ReadonlySet<string>;
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
  | { readonly kind: 'historical'; readonly userId: string; readonly provider: string; readonly resource: string };

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
    default:
      return [];
  }
}

export function computeOracle(storm: Pick<Storm, 'messages'>): Oracle {
  const summaries = new Map<string, ExpectedSummary>();
  const samples = new Map<string, Map<string, ExpectedSample>>();
  const connections = new Map<string, ExpectedConnection>();
  const poisonIds = new Set<string>();

  for (const message of storm.messages) {
    const { envelope, svixId } = message;
    const data = envelope.data;
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
      case 'poison':
        poisonIds.add(svixId);
        break;
      default:
        break;
    }
  }
  return { summaries, samples, connections, poisonIds };
}
