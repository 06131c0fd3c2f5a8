import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { RESOURCES, type ResourceDefinition } from '../functions/domain/catalogue';
import { seededRandom } from '../functions/domain/seeded-random';

/**
 * A fake Vital (Junction) Data Access API for tests, the local pipeline and the benchmark, written
 * from the documented shapes: summary lists (and `profile` as one object), grouped timeseries with
 * `next_cursor` paging, workout streams, date validation (422) for date-only resources, and the
 * `x-vital-api-key` check (401). Data is generated deterministically from a seed, the user, the
 * resource and the day, so any range can be asked for and the same request gets the same answer.
 * Faults (429/503 with `Retry-After`, malformed bodies, records that break the schema, delays, a fixed status) and a server-side
 * request rate limit are injectable; counters say what was served, so tests compare sets.
 */

export interface FakeVitalFaults {
  /** Fraction of data requests answered 429 or 503 (alternately) with `Retry-After`. */
  readonly transientFraction?: number;
  /** The `Retry-After` value sent with injected and rate-limit responses. @default '0' */
  readonly retryAfter?: string;
  /** Fraction of data requests answered 200 with a body that is not JSON. */
  readonly malformedFraction?: number;
  /** Every data request is answered with this status and a JSON error body. */
  readonly fixedStatus?: number;
  /** Delay before each answer, ms. */
  readonly delayMs?: number;
  /**
   * Fraction of records (summary objects, timeseries samples) sent breaking the schema, the same
   * ones on every request: a summary without `id` or with an unreadable `updated_at`, a sample
   * without `timestamp`. Counted in `counters.broken`.
   */
  readonly brokenRecords?: number;
}

export interface FakeVitalApiOptions {
  readonly apiKey: string;
  readonly seed?: number;
  /** Samples per grouped-timeseries page. @default 100 */
  readonly pageSize?: number;
  /** Timeseries samples per day and source. @default 24 */
  readonly samplesPerDay?: number;
  /** Points in each workout stream. @default 60 */
  readonly streamPoints?: number;
  /** Fraction of workouts that have no stream (manual entries): their stream answers 404. @default 0 */
  readonly workoutsWithoutStream?: number;
  /** Providers for which the API has no data yet (Garmin right after its historical event). */
  readonly emptyProviders?: readonly string[];
  /** Requests per trailing second above which the server answers 429. */
  readonly maxRequestsPerSecond?: number;
  readonly faults?: FakeVitalFaults;
}

/** What the fake has served so far. */
export interface FakeVitalCounters {
  /** Every request answered, faults and rejections included. */
  requests: number;
  /** Data answered with 200 and a valid body. */
  dataResponses: number;
  byStatus: Map<number, number>;
  concurrent: number;
  maxConcurrent: number;
  /** Identities served per `${userId}/${resource}` (workout streams under `workout_stream`). */
  readonly served: Map<string, Set<string>>;
  /** Request start times (ms), to measure rates. */
  readonly requestTimes: number[];
  /** Path and query of every request answered 200, in order. */
  readonly dataRequests: string[];
  /** Identities (as in `served`) of the records sent broken (`faults.brokenRecords`), per `${userId}/${resource}`. */
  readonly broken: Map<string, Set<string>>;
}

export interface FakeVitalApi {
  readonly url: string;
  readonly counters: FakeVitalCounters;
  /** Replaces the fault settings for the requests that follow. */
  setFaults(faults: FakeVitalFaults): void;
  /** Changes the one API key accepted from now on (a key rotated or revoked in the dashboard); others get 401. */
  setApiKey(apiKey: string): void;
  /** Every identity the API holds for `(userId, provider, resource)` within the range (for test expectations). */
  identitiesFor(userId: string, provider: string, resource: string, startDate: string, endDate: string): Set<string>;
  resetCounters(): void;
  stop(): Promise<void>;
}

const DAY_MS = 86_400_000;

/** FNV-1a, 32 bits: a stable hash for deterministic generation. */
function hash(...parts: readonly (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const character of parts.join('\u0000')) {
    h ^= character.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function deterministicUuid(...parts: readonly (string | number)[]): string {
  const hex = [0, 1, 2, 3].map((i) => hash(i, ...parts).toString(16).padStart(8, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', '+00:00');
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
/** Resources whose samples come several to an instant, told apart by the sample `type`. */
const TYPED_SAMPLES: Record<string, readonly string[]> = { cholesterol: ['ldl', 'hdl', 'total'], ige: ['peanut', 'egg'], igg: ['milk', 'wheat'] };

class ValidationError extends Error {
  constructor(readonly field: string, readonly kind: 'missing' | 'invalid') {
    super(`${kind} ${field}`);
  }
}

const summaryResources = [...RESOURCES.values()].filter((resource) => resource.kind === 'summary');
const timeseriesByPath = new Map(
  [...RESOURCES.values()].filter((resource) => resource.kind === 'timeseries').map((resource) => [resource.apiPath.split('/')[4]!, resource]),
);

export async function startFakeVitalApi(options: FakeVitalApiOptions): Promise<FakeVitalApi> {
  const seed = options.seed ?? 1;
  const pageSize = options.pageSize ?? 100;
  const samplesPerDay = options.samplesPerDay ?? 24;
  const streamPoints = options.streamPoints ?? 60;
  const emptyProviders = new Set(options.emptyProviders ?? []);
  const hasNoStream = (workoutId: string): boolean => (hash(seed, workoutId) % 1000) / 1000 < (options.workoutsWithoutStream ?? 0);
  let faults: FakeVitalFaults = options.faults ?? {};
  let acceptedKey = options.apiKey;
  const random = seededRandom(seed);
  const workoutOwners = new Map<string, string>();
  const counters: FakeVitalCounters = {
    requests: 0,
    dataResponses: 0,
    byStatus: new Map(),
    concurrent: 0,
    maxConcurrent: 0,
    served: new Map(),
    requestTimes: [],
    dataRequests: [],
    broken: new Map(),
  };

  const recordServed = (userId: string, resource: string, identities: Iterable<string>) => {
    const key = `${userId}/${resource}`;
    const set = counters.served.get(key) ?? new Set<string>();
    for (const identity of identities) set.add(identity);
    counters.served.set(key, set);
  };

  /**
   * The record as sent: broken (`faults.brokenRecords`) when its identity draws so, the same way on
   * every request, and then counted under `counters.broken`.
   */
  const asSent = (userId: string, resource: string, identity: string, record: Record<string, unknown>): Record<string, unknown> => {
    const draw = hash(seed, 'broken', identity);
    if ((draw % 1000) / 1000 >= (faults.brokenRecords ?? 0)) return record;
    const key = `${userId}/${resource}`;
    counters.broken.set(key, (counters.broken.get(key) ?? new Set<string>()).add(identity));
    const { id: _id, timestamp: _timestamp, ...rest } = record;
    if ('timestamp' in record) return rest;
    return draw % 2 === 0 ? { ...record, id: undefined } : { ...record, updated_at: 'not a time' };
  };

  /** The range a request asks for, validated the way the real API does for the resource's date style. */
  function rangeOf(resource: ResourceDefinition, query: URLSearchParams): { fromMs: number; toMs: number } {
    const start = query.get('start_date');
    const end = query.get('end_date');
    if (!start) throw new ValidationError('start_date', 'missing');
    const parse = (value: string, field: string): number => {
      if (resource.dateParameters === 'date' && !DATE_ONLY.test(value)) throw new ValidationError(field, 'invalid');
      const ms = Date.parse(DATE_ONLY.test(value) ? `${value}T00:00:00Z` : value);
      if (Number.isNaN(ms)) throw new ValidationError(field, 'invalid');
      return ms;
    };
    const fromMs = parse(start, 'start_date');
    // A date-only end_date is inclusive: the whole day.
    const toMs = end ? parse(end, 'end_date') + (DATE_ONLY.test(end) ? DAY_MS - 1 : 0) : Date.now();
    return { fromMs, toMs };
  }

  function* days(fromMs: number, toMs: number): Generator<number> {
    for (let day = Math.floor(fromMs / DAY_MS) * DAY_MS; day <= toMs; day += DAY_MS) yield day;
  }

  /** The summary objects of a user and resource whose time falls in the range. */
  function summaries(resource: ResourceDefinition, userId: string, provider: string, fromMs: number, toMs: number): Record<string, unknown>[] {
    const objects: Record<string, unknown>[] = [];
    for (const day of days(fromMs, toMs)) {
      // Workouts on about two days in three, ECGs and cycles now and then, the rest daily.
      const every = resource.name === 'workouts' ? 3 : resource.dateParameters === 'date' ? 4 : 1;
      const perDay = resource.name === 'workouts' ? 2 : 1;
      for (let i = 0; i < perDay; i += 1) {
        if (every > 1 && hash(seed, userId, resource.name, day, i) % every === 0) continue;
        const at = day + ((hash(seed, 'time', userId, resource.name, day, i) % 20) + 2) * 3_600_000;
        if (at < fromMs || at > toMs) continue;
        const id = deterministicUuid(seed, userId, provider, resource.name, day, i);
        const calendarDate = iso(day).slice(0, 10);
        const object: Record<string, unknown> = {
          id,
          user_id: userId,
          calendar_date: calendarDate,
          created_at: iso(at + 600_000),
          updated_at: iso(at + 3_600_000),
          source: { provider, type: 'watch', app_id: null, device_id: null },
        };
        if (resource.timeFields[0] && resource.timeFields[0] !== 'calendar_date') {
          // Date-only resources carry naive datetimes, as Vital's own examples do.
          object[resource.timeFields[0]] = resource.dateParameters === 'date' ? iso(at).slice(0, 19) : iso(at);
        }
        if (resource.name === 'workouts') {
          object.time_end = iso(at + 3_600_000);
          object.sport = { id: 1, name: 'running' };
          object.calories = 200 + (hash(id) % 400);
          workoutOwners.set(id, userId);
        } else {
          object.value = hash(id, 'value') % 1000;
        }
        objects.push(object);
      }
    }
    return objects;
  }

  function samples(resource: ResourceDefinition, fromMs: number, toMs: number): Record<string, unknown>[] {
    const stepMs = DAY_MS / samplesPerDay;
    const types = TYPED_SAMPLES[resource.name] ?? [null];
    const list: Record<string, unknown>[] = [];
    for (let at = Math.ceil(fromMs / stepMs) * stepMs; at <= toMs; at += stepMs) {
      for (const type of types) {
        const value = hash(seed, resource.name, at, String(type)) % 200;
        const sample: Record<string, unknown> = { id: hash(at, String(type)), timestamp: iso(at), unit: 'unit', timezone_offset: 0, type };
        if (resource.name === 'blood_pressure') Object.assign(sample, { systolic: 100 + (value % 40), diastolic: 60 + (value % 30) });
        else if (resource.name === 'note') sample.value = `note ${value}`;
        else sample.value = value;
        list.push(sample);
      }
    }
    return list;
  }

  function workoutStream(workoutId: string): Record<string, unknown> {
    const start = Math.floor(hash(seed, workoutId) % 1_000_000_000) + 1_600_000_000;
    const series = (name: string, base: number) => Array.from({ length: streamPoints }, (_, i) => base + (hash(workoutId, name, i) % 20));
    return {
      time: Array.from({ length: streamPoints }, (_, i) => start + i * 5),
      heartrate: series('heartrate', 110),
      velocity_smooth: series('velocity', 2),
      distance: Array.from({ length: streamPoints }, (_, i) => i * 12),
      altitude: series('altitude', 30),
      cadence: series('cadence', 80),
      lat: series('lat', 40),
      lng: series('lng', 10),
      power: series('power', 150),
      resistance: series('resistance', 5),
    };
  }

  /** Answers one data request with a status and a JSON value (or raw text). */
  function route(path: string, query: URLSearchParams): { status: number; body: unknown } {
    const provider = query.get('provider') ?? 'oura';
    const empty = emptyProviders.has(provider);
    let match = /^\/v2\/summary\/([a-z_]+)\/([^/]+)$/.exec(path);
    if (match) {
      const resource = summaryResources.find((candidate) => candidate.name === match![1]);
      if (!resource) return { status: 404, body: { detail: 'Not Found' } };
      const userId = decodeURIComponent(match[2]!);
      if (resource.dateParameters === 'none') {
        const id = deterministicUuid(seed, userId, provider, 'profile');
        recordServed(userId, resource.name, [id]);
        return { status: 200, body: { id, user_id: userId, height: 150 + (hash(id) % 50), source: { provider, type: 'unknown' }, created_at: iso(0), updated_at: iso(DAY_MS) } };
      }
      const { fromMs, toMs } = rangeOf(resource, query);
      const objects = empty ? [] : summaries(resource, userId, provider, fromMs, toMs);
      recordServed(userId, resource.name, objects.map((object) => object.id as string));
      const sent = objects.map((object) => asSent(userId, resource.name, object.id as string, object));
      return { status: 200, body: { [resource.responseKey ?? resource.name]: sent } };
    }
    match = /^\/v2\/timeseries\/workouts\/([^/]+)\/stream$/.exec(path);
    if (match) {
      const workoutId = decodeURIComponent(match[1]!);
      const owner = workoutOwners.get(workoutId);
      if (!owner) return { status: 404, body: { detail: 'Workout not found' } };
      if (hasNoStream(workoutId)) return { status: 404, body: { detail: 'No stream for this workout' } };
      recordServed(owner, 'workout_stream', [workoutId]);
      return { status: 200, body: workoutStream(workoutId) };
    }
    match = /^\/v2\/timeseries\/([^/]+)\/([a-z_0-9]+)\/grouped$/.exec(path);
    if (match) {
      const resource = timeseriesByPath.get(match[2]!);
      if (!resource) return { status: 404, body: { detail: 'Not Found' } };
      const userId = decodeURIComponent(match[1]!);
      const { fromMs, toMs } = rangeOf(resource, query);
      const all = empty ? [] : samples(resource, fromMs, toMs);
      const cursor = query.get('next_cursor');
      const offset = cursor === null ? 0 : Number(Buffer.from(cursor, 'base64url').toString('utf8'));
      if (!Number.isInteger(offset) || offset < 0) throw new ValidationError('next_cursor', 'invalid');
      const page = all.slice(offset, offset + pageSize);
      const source = { provider, type: 'ring', app_id: null, device_id: null };
      const identityOf = (sample: Record<string, unknown>) => `${provider}|ring|${sample.timestamp}|${sample.type}`;
      recordServed(userId, resource.name, page.map(identityOf));
      const sent = page.map((sample) => asSent(userId, resource.name, identityOf(sample), sample));
      const nextCursor = offset + pageSize < all.length ? Buffer.from(String(offset + pageSize)).toString('base64url') : null;
      return { status: 200, body: { groups: page.length ? { [provider]: [{ source, data: sent }] } : {}, next_cursor: nextCursor } };
    }
    return { status: 404, body: { detail: 'Not Found' } };
  }

  const send = (response: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) => {
    counters.byStatus.set(status, (counters.byStatus.get(status) ?? 0) + 1);
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(text);
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    counters.requests += 1;
    const now = Date.now();
    counters.requestTimes.push(now);
    if (faults.delayMs) await sleep(faults.delayMs);
    if (request.headers['x-vital-api-key'] !== acceptedKey) return send(response, 401, JSON.stringify({ detail: 'Invalid API key' }));
    const retryAfter = faults.retryAfter ?? '0';
    if (options.maxRequestsPerSecond !== undefined) {
      const recent = counters.requestTimes.filter((at) => at > now - 1000).length;
      if (recent > options.maxRequestsPerSecond) return send(response, 429, JSON.stringify({ detail: 'Too Many Requests' }), { 'retry-after': retryAfter });
    }
    if (faults.fixedStatus) return send(response, faults.fixedStatus, JSON.stringify({ detail: `injected ${faults.fixedStatus}` }));
    if (faults.transientFraction && random() < faults.transientFraction) {
      const status = random() < 0.5 ? 429 : 503;
      return send(response, status, JSON.stringify({ detail: 'injected' }), { 'retry-after': retryAfter });
    }
    const url = new URL(request.url ?? '/', 'http://fake');
    let answer: { status: number; body: unknown };
    try {
      answer = route(url.pathname, url.searchParams);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      const value = url.searchParams.get(error.field);
      const detail = error.kind === 'missing'
        ? { type: 'missing', loc: ['query', error.field], msg: 'Field required', input: null }
        : { type: 'date_from_datetime_parsing', loc: ['query', error.field], msg: 'Input should be a valid date', input: value };
      return send(response, 422, JSON.stringify({ detail: [detail] }));
    }
    if (answer.status === 200 && faults.malformedFraction && random() < faults.malformedFraction) {
      return send(response, 200, JSON.stringify(answer.body).slice(0, 20));
    }
    if (answer.status === 200) {
      counters.dataResponses += 1;
      counters.dataRequests.push(`${url.pathname}${url.search}`);
    }
    send(response, answer.status, JSON.stringify(answer.body));
  }

  const server: Server = createServer((request, response) => {
    counters.concurrent += 1;
    counters.maxConcurrent = Math.max(counters.maxConcurrent, counters.concurrent);
    response.once('close', () => {
      counters.concurrent -= 1;
    });
    handle(request, response).catch(() => send(response, 500, JSON.stringify({ detail: 'fake failure' })));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  return {
    url: `http://127.0.0.1:${port}`,
    counters,
    setFaults: (next) => {
      faults = next;
    },
    setApiKey: (apiKey) => {
      acceptedKey = apiKey;
    },
    identitiesFor: (userId, provider, resourceName, startDate, endDate) => {
      const resource = RESOURCES.get(resourceName);
      if (!resource) throw new RangeError(`unknown resource ${resourceName}`);
      if (emptyProviders.has(provider)) return new Set();
      let fromMs = Math.min(Date.parse(startDate), Date.parse(endDate));
      let toMs = Math.max(Date.parse(startDate), Date.parse(endDate));
      if (resource.dateParameters === 'date') {
        // Asked for by date, end inclusive: whole days.
        fromMs = Math.floor(fromMs / DAY_MS) * DAY_MS;
        toMs = Math.floor(toMs / DAY_MS) * DAY_MS + DAY_MS - 1;
      }
      if (resource.kind === 'timeseries') return new Set(samples(resource, fromMs, toMs).map((s) => `${provider}|ring|${s.timestamp}|${s.type}`));
      if (resource.dateParameters === 'none') return new Set([deterministicUuid(seed, userId, provider, 'profile')]);
      const listing = resource.kind === 'stream' ? RESOURCES.get('workouts')! : resource;
      return new Set(summaries(listing, userId, provider, fromMs, toMs).map((object) => object.id as string));
    },
    resetCounters: () => {
      counters.requests = 0;
      counters.dataResponses = 0;
      counters.byStatus.clear();
      counters.maxConcurrent = counters.concurrent;
      counters.served.clear();
      counters.requestTimes.length = 0;
      counters.dataRequests.length = 0;
      counters.broken.clear();
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
