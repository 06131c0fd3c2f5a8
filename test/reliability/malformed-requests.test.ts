import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { request as httpRequest } from 'node:http';
import { createVerifierHandler } from '../../functions/verifier';
import { S3ClaimCheckStore } from '../../functions/adapters/claim-check-store';
import { SqsEventQueue, type EventQueue } from '../../functions/adapters/event-queue';
import { StaticSigningSecrets } from '../../functions/adapters/signing-secret-source';
import { startHttpApi, type RunningHttpApi } from '../../local/http-api';
import { WEBHOOK_ROUTE } from '../../functions/shared/resources';
import { LOCAL_AWS, startSqsAndS3, type RunningStandIn } from '../../local/stand-ins';
import { newSigningSecret } from '../support/signing';
import { badRequest, signedHeaders, validBody, type BadRequest } from './malformed-requests';
import { seededRandom } from '../../functions/domain/seeded-random';

/**
 * Bad input: at least 10,000 generated malformed requests through the verifier handler (in process,
 * with the real SQS queue on fauxqs behind it) and a sample of them through real HTTP (the local
 * HTTP API). Every one must get a 4xx, none may be enqueued, and the process must not crash.
 */

const COUNT = Number(process.env.MALFORMED_COUNT ?? 10_000);
const HTTP_SAMPLE = Number(process.env.MALFORMED_HTTP_SAMPLE ?? 400);
const SEED = Number(process.env.STORM_SEED ?? 20_261_122);

/** API Gateway passes text media types as text and base64-encodes everything else. */
const isText = (contentType: string | undefined) =>
  /^(text\/.*|application\/(json|javascript|xml|[\w.+-]*\+(json|xml)))$/.test(contentType?.split(';')[0]?.trim().toLowerCase() ?? '');

function apiEvent(request: BadRequest): APIGatewayProxyEventV2 {
  const text = isText(request.headers['content-type']);
  return {
    version: '2.0',
    routeKey: 'POST /webhooks/vital',
    rawPath: '/webhooks/vital',
    rawQueryString: '',
    headers: request.headers,
    requestContext: {} as APIGatewayProxyEventV2['requestContext'],
    ...(request.body.length > 0 ? { body: text ? request.body.toString('utf8') : request.body.toString('base64') } : {}),
    isBase64Encoded: request.body.length > 0 && !text,
  };
}

/** The status of a POST; 0 when the server reset the connection instead of answering. */
function post(url: string, request: BadRequest): Promise<number> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, { method: 'POST', headers: { ...request.headers, 'content-length': String(request.body.length) } }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    outgoing.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? resolve(0) : reject(error)));
    outgoing.end(request.body);
  });
}

describe(`malformed requests (${COUNT} in process, ${HTTP_SAMPLE} over HTTP, STORM_SEED=${SEED})`, { timeout: 300_000 }, () => {
  const secret = newSigningSecret();
  const otherSecret = newSigningSecret();
  let standIn: RunningStandIn;
  let sqs: SQSClient;
  let s3: S3Client;
  let queueUrl: string;
  let api: RunningHttpApi;
  let handler: ReturnType<typeof createVerifierHandler>;
  let enqueueCalls = 0;

  before(async () => {
    standIn = await startSqsAndS3();
    sqs = new SQSClient({ endpoint: standIn.endpoint, ...LOCAL_AWS });
    s3 = new S3Client({ endpoint: standIn.endpoint, forcePathStyle: true, ...LOCAL_AWS });
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'malformed-events' }))).QueueUrl!;
    await s3.send(new CreateBucketCommand({ Bucket: 'malformed-bodies' }));
    const real = new SqsEventQueue({ sqs, queueUrl, claimChecks: new S3ClaimCheckStore(s3, 'malformed-bodies') });
    // Counts what reaches the queue; the real queue does the work.
    const queue: EventQueue = {
      enqueue: (event) => {
        enqueueCalls += 1;
        return real.enqueue(event);
      },
    };
    handler = createVerifierHandler({ secrets: new StaticSigningSecrets(secret), queue });
    api = await startHttpApi({ port: 0, routes: [{ ...WEBHOOK_ROUTE, function: { name: 'verifier', timeoutSeconds: 10, handler } }] });
  });

  after(async () => {
    await api?.close();
    sqs?.destroy();
    s3?.destroy();
    await standIn?.stop();
  });

  const queued = async (): Promise<number> => {
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    return Number(Attributes?.ApproximateNumberOfMessages ?? 0) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  };

  it('accepts a well-signed event (the control: the endpoint does not refuse everything)', async () => {
    const body = validBody(seededRandom(SEED));
    const response = await handler(apiEvent({ kind: 'control', body: Buffer.from(body), headers: { 'content-type': 'application/json', ...signedHeaders(secret, body, new Date()) } }));
    assert.equal(typeof response === 'object' && response.statusCode, 202);
    assert.equal(await queued(), 1);
    assert.equal(enqueueCalls, 1);
  });

  it(`refuses ${COUNT} generated malformed requests with a 4xx and enqueues none`, async () => {
    const random = seededRandom(SEED);
    const byKind = new Map<string, number>();
    const wrong: string[] = [];
    for (let index = 0; index < COUNT; index += 1) {
      const request = await badRequest(random, secret, otherSecret);
      byKind.set(request.kind, (byKind.get(request.kind) ?? 0) + 1);
      const response = await handler(apiEvent(request));
      const status = typeof response === 'object' ? response.statusCode ?? 200 : 200;
      if (status < 400 || status >= 500 || (request.status !== undefined && status !== request.status)) {
        wrong.push(`${request.kind}: ${status}${request.status ? ` (expected ${request.status})` : ''}`);
      }
    }
    // A few bodies over the size limit (they are large, so not thousands of them).
    for (let index = 0; index < 3; index += 1) {
      const big = Buffer.alloc(4 * 1024 * 1024 + 1 + index * 1000, 'a');
      const response = await handler(apiEvent({ kind: 'too large', body: big, headers: { 'content-type': 'application/json', ...signedHeaders(secret, big, new Date()) } }));
      if (typeof response !== 'object' || response.statusCode !== 413) wrong.push(`too large: ${JSON.stringify(response).slice(0, 80)}`);
    }
    console.log(`malformed: ${COUNT + 3} requests in process, kinds: ${[...byKind].map(([kind, count]) => `${kind}=${count}`).join(', ')}`);
    assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} malformed requests were not refused as expected`);
    assert.ok(byKind.size >= 14, 'every kind of malformed request was generated');
    assert.equal(enqueueCalls, 1, 'nothing but the control reached the queue');
    assert.equal(await queued(), 1, 'nothing but the control is on the queue');
  });

  it(`refuses a sample of ${HTTP_SAMPLE} over real HTTP with a 4xx, and the server stays up`, async () => {
    const random = seededRandom(SEED + 1);
    const statuses = new Map<number, number>();
    const wrong: string[] = [];
    for (let index = 0; index < HTTP_SAMPLE; index += 1) {
      const request = await badRequest(random, secret, otherSecret);
      const status = await post(`${api.url}${WEBHOOK_ROUTE.path}`, request);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      // Over HTTP, Node itself refuses headers over 16 KB (431) and closes the connection, which the
      // client may see as a reset before it reads the answer; any other reset is a failure.
      const refusedAtHttpLevel = status === 0 && request.kind.startsWith('huge');
      if (!refusedAtHttpLevel && (status < 400 || status >= 500)) wrong.push(`${request.kind}: ${status}`);
    }
    console.log(`malformed: ${HTTP_SAMPLE} requests over HTTP, statuses: ${[...statuses].map(([status, count]) => `${status}=${count}`).join(', ')}`);
    assert.deepEqual(wrong, []);
    // Still serving: a good delivery is accepted after the barrage.
    const body = validBody(random);
    const status = await post(`${api.url}${WEBHOOK_ROUTE.path}`, { kind: 'control', body: Buffer.from(body), headers: { 'content-type': 'application/json', ...signedHeaders(secret, body, new Date()) } });
    assert.equal(status, 202);
    assert.equal(enqueueCalls, 2, 'only the two controls reached the queue');
    assert.equal(await queued(), 2);
  });
});
