import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startHttpApi, type HandledRequest, type RunningHttpApi } from '../../local/http-api';

let api: RunningHttpApi;
const events: APIGatewayProxyEventV2[] = [];
const handled: HandledRequest[] = [];

before(async () => {
  api = await startHttpApi({
    port: 0,
    routes: [
      {
        method: 'POST',
        path: '/webhooks/vital',
        function: {
          name: 'echo',
          timeoutSeconds: 5,
          handler: async (event) => {
            events.push(event);
            if (event.headers['x-fail']) throw new Error('handler failure');
            return { statusCode: 202, headers: { 'Content-Type': 'application/json' }, body: '{"status":"accepted"}' };
          },
        },
      },
    ],
    onRequest: (done) => handled.push(done),
  });
});

after(() => api.close());

/** Sends a raw request (node:http keeps repeated headers, which fetch would merge). */
function send(path: string, headers: [string, string][], body?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const grouped: Record<string, string[]> = {};
    for (const [name, value] of headers) (grouped[name] ??= []).push(value);
    const outgoing = request(`${api.url}${path}`, { method: 'POST', headers: grouped }, (response) => {
      let text = '';
      response.on('data', (chunk) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, body: text }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

describe('startHttpApi', () => {
  it('builds the payload 2.0 event API Gateway builds, with a text body as is', async () => {
    const body = Buffer.from('{"event_type":"x"}');
    const response = await send('/webhooks/vital?a=1&a=2', [
      ['Content-Type', 'application/json; charset=utf-8'],
      ['Svix-Id', 'msg_1'],
      ['X-Repeated', 'one'],
      ['X-Repeated', 'two'],
      ['Cookie', 'a=1; b=2'],
    ], body);
    assert.deepEqual(response, { status: 202, body: '{"status":"accepted"}' });
    const event = events.at(-1)!;
    assert.equal(event.version, '2.0');
    assert.equal(event.routeKey, 'POST /webhooks/vital');
    assert.equal(event.rawPath, '/webhooks/vital');
    assert.equal(event.rawQueryString, 'a=1&a=2');
    assert.deepEqual(event.queryStringParameters, { a: '1,2' });
    assert.equal(event.headers['svix-id'], 'msg_1');
    assert.equal(event.headers['x-repeated'], 'one,two');
    assert.equal(event.headers.cookie, undefined);
    assert.deepEqual(event.cookies, ['a=1', 'b=2']);
    assert.equal(event.isBase64Encoded, false);
    assert.equal(event.body, '{"event_type":"x"}');
    assert.equal(event.requestContext.http.method, 'POST');
    assert.equal(event.requestContext.http.sourceIp, '127.0.0.1');
    assert.equal(event.requestContext.stage, '$default');
    assert.match(event.requestContext.time, /^\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
    assert.equal(handled.at(-1)!.statusCode, 202);
  });

  it('base64-encodes a body that is not text, and leaves out an empty one', async () => {
    const bytes = Buffer.from([0xff, 0x00, 0x7b]);
    await send('/webhooks/vital', [['Content-Type', 'application/octet-stream']], bytes);
    assert.equal(events.at(-1)!.isBase64Encoded, true);
    assert.equal(events.at(-1)!.body, bytes.toString('base64'));
    await send('/webhooks/vital', []);
    assert.equal(events.at(-1)!.body, undefined);
    assert.equal(events.at(-1)!.isBase64Encoded, false);
  });

  it('answers 404 for other routes and 500 when the function fails, as API Gateway does', async () => {
    assert.deepEqual(await send('/elsewhere', []), { status: 404, body: '{"message":"Not Found"}' });
    assert.deepEqual(await send('/webhooks/vital', [['X-Fail', '1']]), { status: 500, body: '{"message":"Internal Server Error"}' });
  });
});
