import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import { createVerifierHandler } from '../functions/verifier';
import { SqsEventQueue, type ClaimCheckStore } from '../functions/adapters/event-queue';
import { StaticSigningSecrets } from '../functions/adapters/signing-secret-source';
import { parseSigningSecrets } from '../functions/domain/signing-secrets';
import { verifyDelivery } from '../functions/domain/webhook-verification';
import { newSigningSecret, svixHeaders } from '../test/support/signing';
import { heartRateEventBodyOfSize } from './fixtures';
import { formatNumber, type Row } from './report';
import { medianRates } from './timing';
import { webhookRequestEvent } from '../test/support/http-api-event';

/**
 * Verifier handler throughput against a bare HMAC-SHA256 check of the same body. The handler runs
 * with everything real (svix verification, envelope parsing, the SQS client with its signing, MD5
 * check and middleware, Powertools logging and metrics) except the network: the SQS client's request
 * handler answers SendMessage with a canned response.
 */

const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/vital-events';

/**
 * An SDK v3 request handler that answers every request with SendMessage's JSON response for `body`,
 * as SQS would; the MD5 in it is computed once, as the client checks it against what it sent.
 */
function cannedSendMessageHandler(body: string): NonNullable<SQSClientConfig['requestHandler']> {
  const response = Buffer.from(
    JSON.stringify({
      MessageId: '5fea7756-0ea4-451a-a703-a558b933e274',
      MD5OfMessageBody: createHash('md5').update(body).digest('hex'),
    }),
  );
  return {
    handle: async () => ({
      response: {
        statusCode: 200,
        headers: { 'content-type': 'application/x-amz-json-1.0' },
        // A fresh copy per response: the SDK adopts the body it is given.
        body: new Uint8Array(response),
      },
    }),
    updateHttpClientConfig: () => {},
    httpHandlerConfigs: () => ({}),
  };
}

/** Every body here fits one SQS message, so a claim check would be a bug in the benchmark. */
const noClaimChecks: ClaimCheckStore = {
  put: () => Promise.reject(new Error('the benchmark bodies fit one message: no claim check expected')),
  get: () => Promise.reject(new Error('the verifier never reads claim checks')),
};

/**
 * The least a correct receiver must do: HMAC-SHA256 over `id.timestamp.body` with `node:crypto`, and a
 * constant-time comparison with each `v1` signature in the header.
 */
function bareHmacVerify(key: Buffer, headers: Record<string, string>, body: string): boolean {
  const expected = createHmac('sha256', key)
    .update(`${headers['svix-id']}.${headers['svix-timestamp']}.`)
    .update(body)
    .digest();
  for (const entry of headers['svix-signature']!.split(' ')) {
    const [version, signature] = entry.split(',');
    if (version !== 'v1' || !signature) continue;
    const given = Buffer.from(signature, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return true;
  }
  return false;
}

/** A per-request time, given as a rate or directly in microseconds, in the unit that reads best. */
function perRequest(microseconds: number): string {
  return microseconds >= 1000 ? `${formatNumber(microseconds / 1000)} ms` : `${formatNumber(microseconds)} µs`;
}
const timeOf = (perSecond: number): number => 1e6 / perSecond;

async function measureBodySize(targetBytes: number): Promise<Row> {
  const secret = newSigningSecret();
  const body = heartRateEventBodyOfSize(targetBytes);
  const headers = svixHeaders(secret, body);
  const event = webhookRequestEvent(headers, body);
  const request = { headers: event.headers, body, isBase64Encoded: false };
  const secrets = parseSigningSecrets(secret);
  const hmacKey = Buffer.from(secret.slice('whsec_'.length), 'base64');

  const sqs = new SQSClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDBENCHMARK', secretAccessKey: 'benchmark' },
    requestHandler: cannedSendMessageHandler(body),
  });
  const queue = new SqsEventQueue({ sqs, queueUrl: QUEUE_URL, claimChecks: noClaimChecks });
  const handler = createVerifierHandler({ secrets: new StaticSigningSecrets(secret), queue });
  const delivery = verifyDelivery(request, secrets);
  const queued = { ...delivery, receivedAt: new Date().toISOString() };

  // A benchmark of refusals would measure the wrong path: check each operation succeeds once first.
  const first = await handler(event);
  if (typeof first === 'string' || first.statusCode !== 202) throw new Error(`verifier answered ${JSON.stringify(first)}`);
  if (!bareHmacVerify(hmacKey, headers, body)) throw new Error('bare HMAC verification rejected a valid signature');

  const rates = await medianRates(
    {
      handler: () => handler(event),
      verifyDelivery: () => verifyDelivery(request, secrets),
      enqueue: () => queue.enqueue(queued),
      bareHmac: () => bareHmacVerify(hmacKey, headers, body),
    },
    { warmupMs: 500, roundMs: 250, rounds: 7 },
  );
  sqs.destroy();

  const kilobytes = formatNumber(Buffer.byteLength(body) / 1024);
  return {
    figure: `verifier handler throughput, ${kilobytes} KB body`,
    measured: { value: rates.handler, unit: 'req/s' },
    baseline: { value: rates.bareHmac, unit: 'req/s', label: 'bare node:crypto HMAC verify' },
    target: { on: 'ratio', bound: 'atLeast', limit: 0.5 },
    limitedBy:
      `per request ${perRequest(timeOf(rates.handler))} = verifyDelivery (svix with pure-JS SHA-256, then JSON.parse) ` +
      `${perRequest(timeOf(rates.verifyDelivery))} + SqsEventQueue.enqueue (SDK serialisation, SigV4, MD5 check, middleware) ` +
      `${perRequest(timeOf(rates.enqueue))} + the rest (logging, metrics, event plumbing) ` +
      `${perRequest(Math.max(0, timeOf(rates.handler) - timeOf(rates.verifyDelivery) - timeOf(rates.enqueue)))}; ` +
      `bare HMAC ${perRequest(timeOf(rates.bareHmac))}`,
  };
}

/** Handler throughput for a small (2 KB) and a large (200 KB) heart-rate batch. */
export async function run(): Promise<Row[]> {
  return [await measureBodySize(2 * 1024), await measureBodySize(200 * 1024)];
}
