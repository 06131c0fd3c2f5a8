import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Webhook } from 'svix';
import { RESOURCES } from '../../functions/domain/catalogue';
import { isolatedAwsEnvironment, runCli } from '../support/cli-process';
import { newSigningSecret } from '../support/signing';

/**
 * `send` and the catalogue commands as a user meets them, the CLI run as a child process: what
 * each line sent says, `--print` (signed, not sent), and what a mistyped type or resource gets.
 * No pipeline runs: `--url` points at a small endpoint on loopback, or nothing is sent at all.
 */

const secret = newSigningSecret();
let home: string;
let endpoint: Server;
let url: string;
const received: { headers: IncomingMessage['headers']; body: string }[] = [];

before(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'send-cli-'));
  endpoint = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      response.writeHead(202, { 'content-type': 'application/json' });
      response.end('{"status":"accepted"}');
    });
  });
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(endpoint.address() as { port: number }).port}/webhooks/vital`;
});

after(async () => {
  await new Promise<void>((resolve) => endpoint.close(() => resolve()));
  await rm(home, { recursive: true, force: true });
});

const cli = (args: string[]) => runCli(args, isolatedAwsEnvironment(home, 'us-east-1'));

describe('vital-pipeline send', () => {
  it('says for each delivery the status, svix-id, event type, user and provider it used', async () => {
    const run = await cli(['send', '--type', 'daily.data.sleep.created', '--user', 'user-send', '--provider', 'oura', '--url', url, '--secret', secret]);
    assert.equal(run.code, 0, run.stderr);
    const [status, svixId, eventType, ...rest] = run.stdout.trim().split(/\s+/);
    assert.equal(status, '202');
    assert.match(svixId!, /^msg_/);
    assert.equal(eventType, 'daily.data.sleep.created');
    assert.match(rest.join(' '), /^user user-send provider oura \{"status":"accepted"\}$/);
    assert.equal(received.at(-1)!.headers['svix-id'], svixId);

    const json = await cli(['send', '--type', 'daily.data.heartrate.created', '--user', 'user-send', '--provider', 'garmin', '--url', url, '--secret', secret, '--json']);
    assert.deepEqual({ ...JSON.parse(json.stdout), svix_id: 'id' }, {
      status: 202, svix_id: 'id', event_type: 'daily.data.heartrate.created', user_id: 'user-send', provider: 'garmin', response: '{"status":"accepted"}',
    });
  });

  it('--print signs each event as Svix does and prints it without sending it', async () => {
    const before = received.length;
    const run = await cli(['send', '--print', '--type', 'daily.data.workouts.created', '--type', 'provider.connection.created', '--user', 'user-print', '--secret', secret]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(received.length, before, 'nothing was sent');
    const lines = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as { svix_id: string; event_type: string; user_id: string; headers: Record<string, string>; body: string });
    assert.deepEqual(lines.map((line) => [line.event_type, line.user_id]), [['daily.data.workouts.created', 'user-print'], ['provider.connection.created', 'user-print']]);
    for (const line of lines) {
      assert.equal(line.headers['svix-id'], line.svix_id);
      // What a receiver does: the printed headers verify the printed body under the secret.
      assert.doesNotThrow(() => new Webhook(secret).verify(line.body, line.headers));
    }
  });

  it('answers a mistyped event type with the close ones, exit code 2, and sends nothing', async () => {
    const before = received.length;
    const typo = await cli(['send', '--type', 'daily.data.sleap.created', '--url', url, '--secret', secret]);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /Unknown event type "daily\.data\.sleap\.created"\. Did you mean daily\.data\.sleep\.created\b.*\? Every type: vital-pipeline send --list-types/);
    const resourceOnly = await cli(['send', '--type', 'heartrate', '--url', url, '--secret', secret]);
    assert.match(resourceOnly.stderr, /Did you mean [^?]*daily\.data\.heartrate\.created/);
    const nothingClose = await cli(['send', '--type', 'zzzz', '--url', url, '--secret', secret]);
    assert.match(nothingClose.stderr, /Unknown event type "zzzz"\. Every type: vital-pipeline send --list-types/);
    assert.equal(received.length, before);
  });
});

describe('vital-pipeline inspect resources', () => {
  it('lists every resource --resource takes, with its kind, without a pipeline', async () => {
    const run = await cli(['inspect', 'resources', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const listed = JSON.parse(run.stdout) as { resource: string; kind: string }[];
    assert.equal(listed.length, RESOURCES.size);
    assert.deepEqual(listed.find((entry) => entry.resource === 'heartrate'), { resource: 'heartrate', kind: 'timeseries' });
  });

  it('answers a mistyped --resource with the close names before looking for a pipeline', async () => {
    const run = await cli(['inspect', 'records', '--user', 'u', '--resource', 'heartrat']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /Unknown resource "heartrat"\. Did you mean heartrate\b.*\? Every resource: vital-pipeline inspect resources/);
  });
});
