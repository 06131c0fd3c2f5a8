import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { CreateBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { createVerifierHandler } from '../../functions/verifier';
import { SqsEventQueue } from '../../functions/adapters/event-queue';
import { S3ClaimCheckStore } from '../../functions/adapters/claim-check-store';
import { CachedSigningSecrets, StaticSigningSecrets, type SigningSecretSource } from '../../functions/adapters/signing-secret-source';
import { decodeQueuedEvent } from '../../functions/domain/queued-event';
import { ownerOfMetadata } from '../../functions/domain/envelope-owner';
import { BUCKET, QUEUES } from '../../functions/shared/resources';
import { functionCredentials } from '../../local/aws-access';
import { enforceStackAccess } from '../../local/stack-access';
import { LOCAL_AWS, standInClients, startSqsAndS3, type StandInClients } from '../../local/stand-ins';
import { newSigningSecret, svixHeaders } from '../support/signing';
import { webhookRequestEvent } from '../support/http-api-event';

function envelope(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    event_type: 'daily.data.sleep.created',
    data: { id: 'f5b1e8a2-4b4a-4c7e-9a43-7f0f4b2c1d10', updated_at: '2026-11-01T07:00:00+00:00', ...extra },
    user_id: 'u-1',
    client_user_id: 'c-1',
    team_id: 't-1',
  });
}

const attributesOf = (message: Message): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [name, value.StringValue]));

describe('verifier handler against SQS and S3 (fauxqs)', () => {
  let stop: () => Promise<void>;
  let sqs: SQSClient;
  let s3: S3Client;
  /** The verifier's clients: held to its role's policies from the synthesized stack. */
  let asVerifier: StandInClients;
  let queueUrl: string;
  const bucket = 'raw-bodies-test';
  const secret = newSigningSecret();

  before(async () => {
    const standIn = await startSqsAndS3();
    stop = standIn.stop;
    sqs = new SQSClient({ endpoint: standIn.endpoint, ...LOCAL_AWS });
    s3 = new S3Client({ endpoint: standIn.endpoint, forcePathStyle: true, ...LOCAL_AWS });
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'events-test' }))).QueueUrl!;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    enforceStackAccess([standIn], { [QUEUES.events.envVar]: queueUrl, [BUCKET.envVar]: bucket });
    asVerifier = standInClients({ dynamodb: standIn.endpoint, sqs: standIn.endpoint, s3: standIn.endpoint }, functionCredentials('verifier'));
  });

  after(async () => {
    asVerifier.destroy();
    sqs.destroy();
    s3.destroy();
    await stop();
  });

  const handlerWith = (queue: string, maxMessageBytes?: number, secrets: SigningSecretSource = new StaticSigningSecrets(secret)) =>
    createVerifierHandler({
      secrets,
      queue: new SqsEventQueue({
        sqs: asVerifier.sqs,
        queueUrl: queue,
        claimChecks: new S3ClaimCheckStore(asVerifier.s3, bucket),
        maxMessageBytes,
      }),
      now: () => new Date('2026-11-22T10:00:00.000Z'),
    });

  async function receiveAll(expected: number): Promise<Message[]> {
    const received = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MessageAttributeNames: ['All'], WaitTimeSeconds: 1, MaxNumberOfMessages: 10 }),
    );
    assert.equal(received.Messages?.length, expected, `exactly ${expected} message(s) queued`);
    return received.Messages!;
  }
  const receiveOne = async (): Promise<Message> => (await receiveAll(1))[0]!;

  it('answers 202 only after the event is queued, with the body verbatim and the delivery facts as attributes', async () => {
    const body = envelope();
    const headers = svixHeaders(secret, body);
    const response = await handlerWith(queueUrl)(webhookRequestEvent(headers, body));
    assert.equal(response.statusCode, 202);
    const message = await receiveOne();
    assert.equal(message.Body, body);
    assert.deepEqual(attributesOf(message), {
      'svix-id': headers['svix-id'],
      'svix-timestamp': headers['svix-timestamp'],
      'event-type': 'daily.data.sleep.created',
      'received-at': '2026-11-22T10:00:00.000Z',
    });
  });

  it('parks a body too large for one message in S3 and queues a pointer that reads back byte for byte', async () => {
    const body = envelope({ hypnogram: 'é🫀'.repeat(60_000) });
    const headers = svixHeaders(secret, body);
    const response = await handlerWith(queueUrl, 64 * 1024)(webhookRequestEvent(headers, Buffer.from(body).toString('base64'), true));
    assert.equal(response.statusCode, 202);
    const message = await receiveOne();
    const queued = decodeQueuedEvent(message.Body!, attributesOf(message));
    assert.equal(queued.body, undefined);
    assert.equal(queued.claimCheck?.bucket, bucket);
    assert.match(queued.claimCheck!.key, /^raw-bodies\/2026-11-22\/msg_/);
    const stored = await new S3ClaimCheckStore(s3, bucket).get(queued.claimCheck!);
    assert.ok(Buffer.from(stored).equals(Buffer.from(body)), 'claim-checked body is byte-identical');
    // Labelled with the user its envelope names, so that an erasure finds it without reading it.
    const { Metadata } = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: queued.claimCheck!.key }));
    assert.equal(ownerOfMetadata(Metadata), 'u-1');
  });

  it('answers 503 and queues nothing when the queue cannot take the event, so Svix retries', async () => {
    const body = envelope();
    const response = await handlerWith(queueUrl.replace('events-test', 'no-such-queue'))(webhookRequestEvent(svixHeaders(secret, body), body));
    assert.equal(response.statusCode, 503);
    assert.deepEqual(JSON.parse(response.body!), { error: 'queue_unavailable' });
  });

  it('refuses bad requests with a short reason and queues none of them', async () => {
    const body = envelope();
    const cases: [string, APIGatewayProxyEventV2, number, string][] = [
      ['bad signature', webhookRequestEvent(svixHeaders(newSigningSecret(), body), body), 401, 'invalid_signature'],
      ['stale timestamp', webhookRequestEvent(svixHeaders(secret, body, new Date(Date.now() - 3_600_000)), body), 401, 'timestamp_out_of_tolerance'],
      ['no headers', webhookRequestEvent({}, body), 401, 'missing_signature_headers'],
      ['not JSON', webhookRequestEvent(svixHeaders(secret, 'not json'), 'not json'), 400, 'malformed_json'],
      ['no event_type', webhookRequestEvent(svixHeaders(secret, '{"data":1}'), '{"data":1}'), 400, 'missing_event_type'],
    ];
    for (const [name, event, statusCode, reason] of cases) {
      const response = await handlerWith(queueUrl)(event);
      assert.equal(response.statusCode, statusCode, name);
      assert.deepEqual(JSON.parse(response.body!), { error: reason }, name);
    }
    const oversized = envelope({ padding: 'x'.repeat(5 * 1024 * 1024) });
    const tooLarge = await handlerWith(queueUrl)(webhookRequestEvent(svixHeaders(secret, oversized), oversized));
    assert.equal(tooLarge.statusCode, 413);
    const leftover = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1 }));
    assert.equal(leftover.Messages, undefined, 'nothing refused reaches the queue');
  });

  it('picks up a rotated secret without a redeploy: a failed signature refreshes the cached secret once', async () => {
    let stored = secret;
    let reads = 0;
    const secrets = new CachedSigningSecrets({
      fetch: async () => {
        reads += 1;
        return stored;
      },
      maxAgeMs: 300_000,
      minRefreshIntervalMs: 0,
    });
    const handler = handlerWith(queueUrl, undefined, secrets);
    const first = envelope();
    assert.equal((await handler(webhookRequestEvent(svixHeaders(secret, first), first))).statusCode, 202);
    const rotated = newSigningSecret();
    stored = JSON.stringify({ current: rotated, previous: secret });
    const second = envelope({ id: 'second' });
    assert.equal((await handler(webhookRequestEvent(svixHeaders(rotated, second), second))).statusCode, 202);
    assert.equal(reads, 2, 'read once at start and once after the unknown signature');
    await receiveAll(2);
  });

  it('answers 503 naming the secret while the stack\'s placeholder is still stored, and accepts once the secret is set', async () => {
    // What the stack's generated placeholder looks like: a random string, not whsec_.
    let stored = 'Xq7-placeholder-generated-by-secrets-manager';
    const secrets = new CachedSigningSecrets({ fetch: async () => stored, maxAgeMs: 300_000, minRefreshIntervalMs: 30_000, secretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:SigningSecret-AbCdEf' });
    const handler = handlerWith(queueUrl, undefined, secrets);
    const body = envelope({ id: 'before-the-secret' });
    const refused = await handler(webhookRequestEvent(svixHeaders(secret, body), body));
    assert.equal(refused.statusCode, 503, 'Svix retries a 503 for about 27 hours: nothing is lost');
    assert.deepEqual(JSON.parse(String(refused.body)), { error: 'signing_secret_not_set' });
    const leftover = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 0 }));
    assert.equal(leftover.Messages, undefined, 'nothing queued');

    stored = secret;
    const retried = await handler(webhookRequestEvent(svixHeaders(secret, body), body));
    assert.equal(retried.statusCode, 202, 'the retry after the secret is stored is accepted');
    await receiveAll(1);
  });
});
