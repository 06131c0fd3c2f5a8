import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { resourceNamed } from '../../functions/domain/catalogue';
import {
  VitalApiClientError,
  VitalApiMalformedResponseError,
  VitalApiRateLimitedError,
} from '../../functions/domain/backfill-source';
import { retryAfterMs, VitalApiClient, vitalApiBaseUrl } from '../../functions/adapters/vital-api-client';
import { startFakeVitalApi, type FakeVitalApi } from '../../local/fake-vital-api';

const API_KEY = 'test-key';
const USER = 'user-1';
let fake: FakeVitalApi;
const retries: string[] = [];

const client = (overrides: Partial<ConstructorParameters<typeof VitalApiClient>[0]> = {}) =>
  new VitalApiClient({
    baseUrl: fake.url,
    apiKey: async () => API_KEY,
    maxRequestsPerSecond: 1000,
    retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 2000 },
    onRetry: (reason) => retries.push(reason),
    ...overrides,
  });
const resource = (name: string) => resourceNamed(name)!;
const window = { startDate: '2025-01-01T00:00:00.000Z', endDate: '2025-01-05T00:00:00.000Z' };

before(async () => {
  fake = await startFakeVitalApi({ apiKey: API_KEY, pageSize: 10 });
});
after(() => fake.stop());

describe('vitalApiBaseUrl', () => {
  it('selects Junction hosts by environment and region, legacy hosts on request, the override first', () => {
    assert.equal(vitalApiBaseUrl({ environment: 'production', region: 'us' }), 'https://api.us.junction.com');
    assert.equal(vitalApiBaseUrl({ environment: 'sandbox', region: 'eu' }), 'https://api.sandbox.eu.junction.com');
    assert.equal(vitalApiBaseUrl({ environment: 'production', region: 'eu', legacyHosts: true }), 'https://api.eu.tryvital.io');
    assert.equal(vitalApiBaseUrl({ environment: 'sandbox', region: 'us', override: 'http://127.0.0.1:9/' }), 'http://127.0.0.1:9');
    assert.throws(() => vitalApiBaseUrl({ environment: 'staging' as 'production', region: 'us' }), RangeError);
  });
});

describe('retryAfterMs', () => {
  it('reads delta-seconds and HTTP dates', () => {
    assert.equal(retryAfterMs('3', 0), 3000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6_000);
    assert.equal(retryAfterMs('soon', 0), undefined);
    assert.equal(retryAfterMs(null, 0), undefined);
  });
});

describe('VitalApiClient against the fake API', () => {
  it('reads summary lists under the catalogue key (meals for meal) and profile as one object', async () => {
    const meals = await client().fetchSummaries(resource('meal'), USER, 'oura', window);
    assert.ok(meals.objects.length > 0);
    const profile = await client().fetchSummaries(resource('profile'), USER, 'oura', {});
    assert.equal(profile.objects.length, 1);
  });

  it('pages grouped timeseries by next_cursor, on the catalogue path (weight → body_weight)', async () => {
    const pages: number[] = [];
    let cursor: string | null = null;
    do {
      const page = await client().fetchTimeseriesPage(resource('weight'), USER, 'oura', window, cursor);
      pages.push(page.groups.reduce((sum, group) => sum + group.samples.length, 0));
      cursor = page.nextCursor;
    } while (cursor !== null);
    const expected = fake.identitiesFor(USER, 'oura', 'weight', window.startDate, window.endDate).size;
    assert.equal(pages.reduce((a, b) => a + b, 0), expected);
    assert.equal(pages.length, Math.ceil(expected / 10));
  });

  it('retries 429/503 honouring Retry-After, then gives up with VitalApiRateLimitedError', async () => {
    retries.length = 0;
    fake.setFaults({ transientFraction: 1, retryAfter: '0' });
    await assert.rejects(client().fetchSummaries(resource('activity'), USER, 'oura', window), VitalApiRateLimitedError);
    assert.equal(retries.length, 3);
    fake.setFaults({ transientFraction: 1, retryAfter: '3600' });
    await assert.rejects(client().fetchSummaries(resource('activity'), USER, 'oura', window), /longer than this invocation waits/);
    fake.setFaults({});
  });

  it('fails 4xx with the status and the validation reason, and garbage bodies as malformed', async () => {
    await assert.rejects(
      client({ apiKey: async () => 'wrong' }).fetchSummaries(resource('activity'), USER, 'oura', window),
      (error: unknown) => error instanceof VitalApiClientError && error.status === 401,
    );
    await assert.rejects(
      client().fetchSummaries(resource('sleep_cycle'), USER, 'oura', window),
      (error: unknown) => error instanceof VitalApiClientError && error.status === 422 && /query\.start_date/.test(error.message),
    );
    fake.setFaults({ malformedFraction: 1 });
    await assert.rejects(client().fetchSummaries(resource('activity'), USER, 'oura', window), VitalApiMalformedResponseError);
    fake.setFaults({});
  });

  it('paces requests to the configured rate', async () => {
    const started = Date.now();
    const paced = client({ maxRequestsPerSecond: 20 });
    for (let i = 0; i < 11; i += 1) await paced.fetchSummaries(resource('body'), USER, 'oura', window);
    assert.ok(Date.now() - started >= 480, `11 requests at 20/s took ${Date.now() - started} ms`);
  });
});
