import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake of the two Junction APIs `doctor` asks, on loopback: the Data Access API's provider list
 * (`GET /v2/providers`, team key in `x-vital-api-key`, 401 for any other key) and the Management API's
 * endpoint list (`GET /v1/org/{org}/team/{team}/{environment}/webhook`, `X-Management-Key`, one
 * `{data, next_cursor}` page). The data the doctor needs from local/fake-vital-api.ts (summaries,
 * timeseries) it does not; that fake has no provider list.
 */

export interface FakeWebhookEndpoint {
  readonly id: string;
  readonly url: string;
  readonly disabled: boolean;
  readonly filter_types: readonly string[] | null;
}

export interface FakeJunction {
  readonly url: string;
  /** The team keys `GET /v2/providers` accepts; any other is answered 401. */
  readonly apiKeys: Set<string>;
  /** Endpoints by `org/team/environment`. */
  readonly endpoints: Map<string, FakeWebhookEndpoint[]>;
  /** Every request: method, path, and whether its key was accepted. Never the key itself. */
  readonly requests: { method: string; path: string; authorised: boolean }[];
  stop(): Promise<void>;
}

export async function startFakeJunction(options: { apiKeys: readonly string[]; managementKey: string }): Promise<FakeJunction> {
  const apiKeys = new Set(options.apiKeys);
  const endpoints = new Map<string, FakeWebhookEndpoint[]>();
  const requests: FakeJunction['requests'] = [];
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://fake');
    const reply = (status: number, value: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(value));
    };
    if (url.pathname === '/v2/providers' && request.method === 'GET') {
      const authorised = apiKeys.has(String(request.headers['x-vital-api-key'] ?? ''));
      requests.push({ method: 'GET', path: url.pathname, authorised });
      if (!authorised) return reply(401, { detail: 'Invalid API key' });
      return reply(200, [
        { name: 'Oura', slug: 'oura', description: 'Smart ring', logo: 'https://storage.googleapis.com/vital-assets/oura.png' },
        { name: 'Garmin', slug: 'garmin', description: 'Watches', logo: 'https://storage.googleapis.com/vital-assets/garmin.png' },
      ]);
    }
    const match = /^\/v1\/org\/([^/]+)\/team\/([^/]+)\/(sandbox|production)\/webhook$/.exec(url.pathname);
    const authorised = request.headers['x-management-key'] === options.managementKey;
    requests.push({ method: request.method ?? '', path: url.pathname, authorised });
    if (!match || request.method !== 'GET') return reply(404, { detail: 'Not Found' });
    if (!authorised) return reply(401, { detail: 'Invalid management key' });
    return reply(200, { data: endpoints.get(`${match[1]}/${match[2]}/${match[3]}`) ?? [], next_cursor: null });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    apiKeys,
    endpoints,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
