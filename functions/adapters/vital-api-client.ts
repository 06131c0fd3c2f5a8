import type { ResourceDefinition } from '../domain/catalogue';
import { RefreshingValue, type RefreshingValueOptions } from './refreshing-value';
import type { BackfillWindow } from '../domain/backfill-plan';
import { classifyVitalAnswer } from '../domain/backfill-failure';
import {
  VitalApiClientError,
  VitalApiKeyNotSetError,
  VitalApiKeyRejectedError,
  VitalApiMalformedResponseError,
  VitalApiRateLimitedError,
  VitalApiUnavailableError,
  type SummaryFetch,
  type TimeseriesGroup,
  type TimeseriesPage,
  type VitalDataSource,
  type WorkoutStreamFetch,
} from '../domain/backfill-source';

/**
 * A small client for the Vital (Junction) Data Access API on plain `fetch`. Not an official SDK: they
 * bundle to ~500 KB, throw when a response lacks a field they consider required (schema drift would
 * stall backfills) and turn timestamps into Dates, while the pipeline stores payloads verbatim. See
 * docs/backfill.md. Paths, response keys and date styles all come from the catalogue.
 */

export type VitalEnvironment = 'production' | 'sandbox';
export type VitalRegion = 'us' | 'eu';

const JUNCTION_HOSTS: Record<VitalEnvironment, Record<VitalRegion, string>> = {
  production: { us: 'https://api.us.junction.com', eu: 'https://api.eu.junction.com' },
  sandbox: { us: 'https://api.sandbox.us.junction.com', eu: 'https://api.sandbox.eu.junction.com' },
};
const LEGACY_HOSTS: Record<VitalEnvironment, Record<VitalRegion, string>> = {
  production: { us: 'https://api.tryvital.io', eu: 'https://api.eu.tryvital.io' },
  sandbox: { us: 'https://api.sandbox.tryvital.io', eu: 'https://api.sandbox.eu.tryvital.io' },
};

/** The base URL of a team's API: environment × region, Junction hosts unless `legacyHosts`; `override` wins. */
export function vitalApiBaseUrl(options: {
  readonly environment: VitalEnvironment;
  readonly region: VitalRegion;
  readonly legacyHosts?: boolean;
  readonly override?: string;
}): string {
  if (options.override) return options.override.replace(/\/+$/, '');
  const hosts = options.legacyHosts ? LEGACY_HOSTS : JUNCTION_HOSTS;
  const url = hosts[options.environment]?.[options.region];
  if (!url) throw new RangeError(`no Vital API host for environment ${options.environment} and region ${options.region}`);
  return url;
}

/** The base URL the backfill function fetches from, by the `VITAL_*` settings the stack (or the local pipeline) gives it. */
export function vitalApiBaseUrlFromEnvironment(env: NodeJS.ProcessEnv = process.env): string {
  return vitalApiBaseUrl({
    environment: (env.VITAL_ENVIRONMENT ?? 'production') as VitalEnvironment,
    region: (env.VITAL_REGION ?? 'us') as VitalRegion,
    legacyHosts: env.VITAL_API_LEGACY_HOSTS === 'true',
    override: env.VITAL_API_BASE_URL,
  });
}

/** Retry policy for 429/503 and transient network failures. */
export interface RetryPolicy {
  /** Attempts per request, the first included. */
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  /** Cap of one wait, `Retry-After` included: a longer wait is left to SQS redelivery. */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 500, maxDelayMs: 20_000 };

/**
 * Supplies the team API key. `refresh` is called when Vital rejects the key, before the client
 * concludes that the key is bad: it reads the key's store again (bypassing any cache), so a key the
 * operator has just stored is used at once instead of after the cache expires.
 */
export interface ApiKeySource {
  get(): Promise<string>;
  refresh(): Promise<string>;
}

/** How the key is read and cached (`RefreshingValue`): Vital rejecting it is what asks for a fresh read. */
export type CachedApiKeyOptions = RefreshingValueOptions<string>;

/**
 * The API key read from a store (Secrets Manager in AWS), cached for `maxAgeMs` and read afresh when
 * Vital rejects it. An empty value is `VitalApiKeyNotSetError`: the job waits for the key. A warm
 * container therefore uses a newly stored key at its first rejected request, and in any case once
 * `maxAgeMs` has passed.
 */
export class CachedApiKey implements ApiKeySource {
  private readonly key: RefreshingValue<string>;

  constructor(options: CachedApiKeyOptions) {
    this.key = new RefreshingValue({
      ...options,
      fetch: async (forceFetch) => {
        const value = await options.fetch(forceFetch);
        if (typeof value !== 'string' || value.trim().length === 0) throw new VitalApiKeyNotSetError('the Vital API key secret holds no value yet');
        return value;
      },
    });
  }

  get(): Promise<string> {
    return this.key.get();
  }

  /** A fresh read; the cached key when it was read too recently to read again. */
  async refresh(): Promise<string> {
    return (await this.key.refresh()) ?? this.key.get();
  }
}

/** A function as a key source: `refresh` simply calls it again. */
const keySourceOf = (apiKey: ApiKeySource | (() => Promise<string>)): ApiKeySource =>
  typeof apiKey === 'function' ? { get: apiKey, refresh: apiKey } : apiKey;

export interface VitalApiClientOptions {
  readonly baseUrl: string;
  /**
   * The team API key (Secrets Manager in AWS, an environment variable locally): a source that can be
   * read afresh after a rejection, or a function (called again for the fresh read).
   */
  readonly apiKey: ApiKeySource | (() => Promise<string>);
  readonly retry?: RetryPolicy;
  /** Most requests started per second by this client: the per-invocation rate limit. */
  readonly maxRequestsPerSecond?: number;
  readonly requestTimeoutMs?: number;
  /** Told of every retry (for metrics and logs); gets the reason, never a body. */
  readonly onRetry?: (reason: string, delayMs: number) => void;
  readonly random?: () => number;
  readonly now?: () => number;
}

/**
 * The wait a `Retry-After` header asks for, in ms: delta-seconds or an HTTP date; undefined when
 * absent or unreadable.
 */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Exponential backoff with full jitter: uniform in [0, min(cap, base·2^retry)]. */
export function backoffMs(retry: number, policy: RetryPolicy, random: () => number): number {
  return Math.floor(random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry));
}

/** Spaces request starts so that no more than `perSecond` begin in any second. */
class RequestPacer {
  private nextSlotMs = 0;
  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  async take(): Promise<void> {
    const now = this.now();
    const slot = Math.max(now, this.nextSlotMs);
    this.nextSlotMs = slot + this.intervalMs;
    if (slot > now) await sleep(slot - now);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Transient statuses retried within the invocation; the other transient ones are left to SQS. */
const RETRIED_STATUSES = new Set([429, 503]);

export class VitalApiClient implements VitalDataSource {
  private readonly retry: RetryPolicy;
  private readonly pacer: RequestPacer;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly keys: ApiKeySource;

  constructor(private readonly options: VitalApiClientOptions) {
    this.keys = keySourceOf(options.apiKey);
    this.retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.pacer = new RequestPacer(1000 / (options.maxRequestsPerSecond ?? 10), this.now);
  }

  async fetchSummaries(resource: ResourceDefinition, userId: string, provider: string, window: BackfillWindow): Promise<SummaryFetch> {
    const { body, fetchedAtMs } = await this.getJson(this.pathOf(resource, { user_id: userId }), { provider, ...rangeQuery(window) });
    if (resource.dateParameters === 'none') {
      // profile: one object, not a list.
      if (!isObject(body)) throw new VitalApiMalformedResponseError(`${resource.name}: expected one object`);
      return { objects: [body], fetchedAtMs };
    }
    const key = resource.responseKey ?? resource.name;
    const list = isObject(body) ? body[key] : undefined;
    if (!Array.isArray(list) || !list.every(isObject)) {
      throw new VitalApiMalformedResponseError(`${resource.name}: expected a list of objects under "${key}"`);
    }
    return { objects: list, fetchedAtMs };
  }

  async fetchTimeseriesPage(
    resource: ResourceDefinition,
    userId: string,
    provider: string,
    window: BackfillWindow,
    cursor: string | null,
  ): Promise<TimeseriesPage> {
    const query = { provider, ...rangeQuery(window), ...(cursor === null ? {} : { next_cursor: cursor }) };
    const { body, fetchedAtMs } = await this.getJson(this.pathOf(resource, { user_id: userId }), query);
    const malformed = (why: string) => new VitalApiMalformedResponseError(`${resource.name} grouped: ${why}`);
    if (!isObject(body) || !isObject(body.groups)) throw malformed('expected an object with "groups"');
    const nextCursor = body.next_cursor ?? null;
    if (nextCursor !== null && typeof nextCursor !== 'string') throw malformed('"next_cursor" is neither a string nor null');
    const groups: TimeseriesGroup[] = [];
    for (const entries of Object.values(body.groups)) {
      if (!Array.isArray(entries)) throw malformed('a provider group is not a list');
      for (const entry of entries) {
        if (!isObject(entry) || !isObject(entry.source) || !Array.isArray(entry.data) || !entry.data.every(isObject)) {
          throw malformed('a group lacks "source" or a list of sample objects in "data"');
        }
        groups.push({ source: entry.source, samples: entry.data });
      }
    }
    return { groups, nextCursor, fetchedAtMs };
  }

  async fetchWorkoutStream(workoutId: string): Promise<WorkoutStreamFetch> {
    const path = '/v2/timeseries/workouts/{workout_id}/stream'.replace('{workout_id}', encodeURIComponent(workoutId));
    const { text, body, fetchedAtMs } = await this.getJson(path, {});
    if (!isObject(body)) throw new VitalApiMalformedResponseError('workout stream: expected an object');
    return { body: text, fetchedAtMs };
  }

  private pathOf(resource: ResourceDefinition, parameters: Record<string, string>): string {
    return resource.apiPath.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(parameters[name] ?? ''));
  }

  /**
   * GET with pacing, bounded retries of 429/503/network failures, one fresh read of the key after a
   * rejection, and every status other than 2xx classified by `classifyVitalAnswer` (no answer at
   * all is transient, a 2xx of the wrong shape permanent, as that rule says).
   */
  private async getJson(path: string, query: Record<string, string>): Promise<{ text: string; body: unknown; fetchedAtMs: number }> {
    const url = new URL(this.options.baseUrl + path);
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    let apiKey = await this.keys.get();
    let keyReadAfresh = false;
    for (let attempt = 1; ; attempt += 1) {
      await this.pacer.take();
      const fetchedAtMs = this.now();
      let response: Response;
      let text: string;
      try {
        response = await fetch(url, {
          headers: { 'x-vital-api-key': apiKey, accept: 'application/json' },
          signal: AbortSignal.timeout(this.options.requestTimeoutMs ?? 30_000),
        });
        text = await response.text();
      } catch (error) {
        const reason = `GET ${path}: ${(error as Error).name === 'TimeoutError' ? 'timed out' : 'network error'}`;
        if (attempt >= this.retry.maxAttempts) throw new VitalApiUnavailableError(reason);
        await this.wait(reason, backoffMs(attempt - 1, this.retry, this.random));
        continue;
      }
      if (response.ok) {
        try {
          return { text, body: JSON.parse(text), fetchedAtMs };
        } catch {
          throw new VitalApiMalformedResponseError(`GET ${path}: ${response.status} body is not JSON`);
        }
      }
      const reason = `GET ${path}: HTTP ${response.status}`;
      switch (classifyVitalAnswer({ kind: 'http', status: response.status, body: text })) {
        case 'waiting_for_api_key': {
          // The cached key may be older than the one the operator stored: read it afresh once, and
          // conclude only when the fresh key is the one just rejected.
          if (!keyReadAfresh) {
            keyReadAfresh = true;
            const fresh = await this.keys.refresh();
            if (fresh !== apiKey) {
              apiKey = fresh;
              attempt -= 1;
              continue;
            }
          }
          throw new VitalApiKeyRejectedError(`${reason}: the API key was rejected (read afresh from its store first)`, response.status);
        }
        case 'transient': {
          if (!RETRIED_STATUSES.has(response.status)) throw new VitalApiUnavailableError(reason);
          if (attempt >= this.retry.maxAttempts) throw new VitalApiRateLimitedError(`${reason} after ${attempt} attempts`);
          const asked = retryAfterMs(response.headers.get('retry-after'), this.now());
          const delay = asked === undefined ? backoffMs(attempt - 1, this.retry, this.random) : asked + backoffMs(0, this.retry, this.random) / 10;
          if (delay > this.retry.maxDelayMs) throw new VitalApiRateLimitedError(`${reason}, Retry-After ${Math.round(delay / 1000)} s is longer than this invocation waits`);
          await this.wait(reason, delay);
          continue;
        }
        case 'permanent':
          throw new VitalApiClientError(`${reason}${describeValidationError(text)}`, response.status);
      }
    }
  }

  private async wait(reason: string, delayMs: number): Promise<void> {
    this.options.onRetry?.(reason, delayMs);
    await sleep(delayMs);
  }
}

/** `start_date`/`end_date` of a window, absent for range-less resources. */
function rangeQuery(window: BackfillWindow): Record<string, string> {
  return {
    ...(window.startDate === undefined ? {} : { start_date: window.startDate }),
    ...(window.endDate === undefined ? {} : { end_date: window.endDate }),
  };
}

/**
 * The locations and error types of a 422 body (`detail[].loc`, `type`, e.g. `query.start_date:
 * missing`): field names and codes, never values. `msg` is left out: it is free text that a future
 * API version could fill with the offending input.
 */
function describeValidationError(text: string): string {
  try {
    const detail = (JSON.parse(text) as { detail?: unknown }).detail;
    if (!Array.isArray(detail)) return '';
    const parts = detail
      .filter(isObject)
      .map((item) => `${Array.isArray(item.loc) ? item.loc.join('.') : '?'}: ${typeof item.type === 'string' ? item.type : '?'}`);
    return parts.length ? ` (${parts.join('; ')})` : '';
  } catch {
    return '';
  }
}
