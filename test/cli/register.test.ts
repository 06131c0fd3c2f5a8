import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createEndpoint, listEndpoints, ManagementApiError, rotateSecret, type ManagementScope } from '../../cli/commands/register';
import { CLI_COMMAND, PROJECT_ROOT } from '../support/cli-process';

/**
 * `register` against a small fake of the Junction Management API (and of the team API's portal-link
 * endpoint) on loopback: paths, the `X-Management-Key` header, cursor paging, secrets and rotation.
 */

const root = PROJECT_ROOT;
const KEY = 'mgmt-key';
const BASE_PATH = '/v1/org/org-1/team/team-1/sandbox/webhook';

interface Endpoint {
  id: string;
  url: string;
  description?: string;
  filter_types?: string[] | null;
  disabled: boolean;
  secret: string;
}

let server: Server;
let baseUrl: string;
const endpoints: Endpoint[] = [];
const seen: { method: string; path: string; key: string | undefined; body: unknown }[] = [];

async function readJson(request: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of request) text += chunk;
  return text ? JSON.parse(text) : undefined;
}

before(async () => {
  server = createServer(async (request, response) => {
    const url = new URL(request.url!, 'http://localhost');
    const body = await readJson(request);
    seen.push({ method: request.method!, path: url.pathname, key: request.headers['x-management-key'] as string | undefined, body });
    const reply = (status: number, value: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(value));
    };
    if (url.pathname === '/v2/team/svix/url') {
      return request.headers['x-vital-api-key'] === 'team-key' ? reply(200, { url: 'https://portal.example/session' }) : reply(401, { detail: 'bad key' });
    }
    if (request.headers['x-management-key'] !== KEY) return reply(401, { detail: 'Invalid management key' });
    if (!url.pathname.startsWith(BASE_PATH)) return reply(404, { detail: 'Not Found' });
    const rest = url.pathname.slice(BASE_PATH.length).split('/').filter(Boolean);
    const strip = ({ secret: _secret, ...endpoint }: Endpoint) => endpoint;
    if (rest.length === 0 && request.method === 'GET') {
      // Pages of one, to exercise next_cursor.
      const index = Number(url.searchParams.get('next_cursor') ?? 0);
      return reply(200, { data: endpoints.slice(index, index + 1).map(strip), next_cursor: index + 1 < endpoints.length ? String(index + 1) : null });
    }
    if (rest.length === 0 && request.method === 'POST') {
      const input = body as { url: string; description?: string; filter_types?: string[] };
      const endpoint = { id: `ep_${endpoints.length + 1}`, ...input, disabled: false, secret: `whsec_${Buffer.from(`s${endpoints.length}`).toString('base64')}` };
      endpoints.push(endpoint);
      return reply(200, strip(endpoint));
    }
    const endpoint = endpoints.find((candidate) => candidate.id === rest[0]);
    if (!endpoint) return reply(404, { detail: 'Webhook not found' });
    if (rest[1] === 'secret' && rest.length === 2 && request.method === 'GET') return reply(200, { key: endpoint.secret });
    if (rest[1] === 'secret' && rest[2] === 'rotate' && request.method === 'POST') {
      endpoint.secret = `whsec_${Buffer.from(`rotated-${endpoint.id}`).toString('base64')}`;
      return reply(200, {});
    }
    return reply(405, { detail: 'Method Not Allowed' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const scope = (): ManagementScope => ({ baseUrl, managementKey: KEY, orgId: 'org-1', teamId: 'team-1', environment: 'sandbox' });

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      CLI_COMMAND[0]!,
      [...CLI_COMMAND.slice(1), ...args],
      { cwd: root, env: { ...process.env, VITAL_MANAGEMENT_KEY: '', VITAL_API_KEY: '', ...env } },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('register', () => {
  it('creates endpoints with their secret, lists them across pages, and rotates a secret', async () => {
    const first = await createEndpoint(scope(), { url: 'https://hooks.example/webhooks/vital', description: 'prod', filterTypes: ['daily.data.sleep.created'] });
    assert.equal(first.endpoint.id, 'ep_1');
    assert.match(first.secret, /^whsec_/);
    const posted = seen.find((request) => request.method === 'POST' && request.path === BASE_PATH)!;
    assert.deepEqual(posted.body, { url: 'https://hooks.example/webhooks/vital', description: 'prod', filter_types: ['daily.data.sleep.created'] });
    assert.equal(posted.key, KEY);
    await createEndpoint(scope(), { url: 'https://other.example/hook' });

    assert.deepEqual((await listEndpoints(scope())).map((endpoint) => endpoint.id), ['ep_1', 'ep_2']);

    const rotated = await rotateSecret(scope(), 'ep_1');
    assert.notEqual(rotated, first.secret);
    assert.ok(seen.some((request) => request.method === 'POST' && request.path === `${BASE_PATH}/ep_1/secret/rotate`));
  });

  it('turns an error answer into one ManagementApiError', async () => {
    await assert.rejects(listEndpoints({ ...scope(), managementKey: 'wrong' }), (error: Error) => {
      assert.ok(error instanceof ManagementApiError);
      assert.match(error.message, /answered 401: Invalid management key \(check --management-key, --org and --team\)/);
      return true;
    });
  });

  it('works from the command line', async () => {
    const listed = await cli(['register', 'list', '--management-key', KEY, '--management-url', baseUrl, '--org', 'org-1', '--team', 'team-1', '--environment', 'sandbox', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual((JSON.parse(listed.stdout) as { id: string }[]).map((endpoint) => endpoint.id), ['ep_1', 'ep_2']);
    const missingOrg = await cli(['register', 'list', '--management-key', KEY, '--management-url', baseUrl]);
    assert.equal(missingOrg.code, 2);
    assert.match(missingOrg.stderr, /^vital-pipeline: --org is required/);
  });

  it('without a management key, explains the dashboard route and prints the portal link for a team key', async () => {
    const withoutKeys = await cli(['register']);
    assert.equal(withoutKeys.code, 0);
    assert.match(withoutKeys.stdout, /dashboard/);
    assert.match(withoutKeys.stdout, /Set VITAL_API_KEY/);
    const withTeamKey = await cli(['register'], { VITAL_API_KEY: 'team-key', VITAL_API_BASE_URL: baseUrl });
    assert.equal(withTeamKey.code, 0, withTeamKey.stderr);
    assert.match(withTeamKey.stdout, /^Webhook portal: https:\/\/portal\.example\/session$/m);
  });
});
