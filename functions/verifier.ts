import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { SqsEventQueue, type ClaimCheckStore, type EventQueue } from './adapters/event-queue';
import { loadedOnFirstUse } from './adapters/loaded-on-first-use';
import { sqsClient } from './adapters/sqs-client';
import {
  CachedSigningSecrets,
  StaticSigningSecrets,
  type SigningSecretSource,
} from './adapters/signing-secret-source';
import { IngressError, InvalidSignatureError, QueueUnavailableError, SigningSecretNotSetError } from './domain/ingress-errors';
import { messageCreatedAtMs } from './domain/message-order';
import { DEFAULT_MAX_BODY_BYTES, verifyDelivery, type InboundRequest, type VerifiedDelivery } from './domain/webhook-verification';
import { requiredEnv } from './shared/environment';
import { BUCKET, QUEUES } from './shared/resources';
import { logger, metrics, publishMetrics } from './shared/observability';

/** What the verifier needs from the outside world. */
export interface VerifierDependencies {
  readonly secrets: SigningSecretSource;
  readonly queue: EventQueue;
  readonly maxBodyBytes?: number;
  readonly now?: () => Date;
}

const respond = (statusCode: number, body: Record<string, string>): APIGatewayProxyStructuredResultV2 => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

async function verifyWithRotationRetry(request: InboundRequest, deps: VerifierDependencies): Promise<VerifiedDelivery> {
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  try {
    return verifyDelivery(request, await deps.secrets.get(), maxBodyBytes);
  } catch (error) {
    if (!(error instanceof InvalidSignatureError)) throw error;
    const refreshed = await deps.secrets.refreshAfterFailure();
    if (!refreshed) throw error;
    return verifyDelivery(request, refreshed, maxBodyBytes);
  }
}

/**
 * Builds the verifier: verify the Svix signature on the raw body, enqueue, and answer 2xx only once
 * the event is durable. Every refusal is a short JSON reason; nothing of the body is logged.
 */
export function createVerifierHandler(deps: VerifierDependencies) {
  const now = deps.now ?? (() => new Date());
  return async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const receivedAt = now().toISOString();
    metrics.addMetric('WebhooksReceived', MetricUnit.Count, 1);
    try {
      const request = { headers: event.headers ?? {}, body: event.body, isBase64Encoded: event.isBase64Encoded };
      const delivery = await verifyWithRotationRetry(request, deps);
      logger.appendKeys({ svixId: delivery.svixId, eventType: delivery.eventType });
      metrics.addMetric(delivery.matchedSecret === 'current' ? 'VerifiedWithCurrentSecret' : 'VerifiedWithPreviousSecret', MetricUnit.Count, 1);
      let claimChecked: boolean;
      try {
        ({ claimChecked } = await deps.queue.enqueue({ ...delivery, receivedAt }));
      } catch (error) {
        logger.error('Could not enqueue a verified delivery; the sender will retry', { error: (error as Error).name });
        throw new QueueUnavailableError();
      }
      metrics.addMetric('Enqueued', MetricUnit.Count, 1);
      const createdAtMs = messageCreatedAtMs(delivery.svixId);
      if (createdAtMs !== undefined) metrics.addMetric('DeliveryLag', MetricUnit.Milliseconds, Math.max(0, Date.parse(receivedAt) - createdAtMs));
      if (claimChecked) metrics.addMetric('ClaimChecked', MetricUnit.Count, 1);
      logger.info('Delivery enqueued', { bodyBytes: delivery.bodyBytes, claimChecked });
      return respond(202, { status: 'accepted' });
    } catch (error) {
      if (error instanceof IngressError) {
        metrics.singleMetric().addDimension('reason', error.reason).addMetric('Rejected', MetricUnit.Count, 1);
        if (error instanceof SigningSecretNotSetError) logger.error(error.message, { reason: error.reason, secretId: error.secretId });
        else logger.warn('Delivery refused', { reason: error.reason, statusCode: error.statusCode });
        return respond(error.statusCode, { error: error.reason });
      }
      logger.error('Unexpected verifier failure', { error: (error as Error).name });
      return respond(500, { error: 'internal_error' });
    } finally {
      logger.resetKeys();
      publishMetrics();
    }
  };
}

/** Wires the verifier from its Lambda environment (or the local pipeline's, which sets the same names). */
export function verifierFromEnvironment(): VerifierDependencies {
  const secretId = process.env.SIGNING_SECRET_ID;
  const localSecret = process.env.VITAL_WEBHOOK_SECRET;
  let secrets: SigningSecretSource;
  if (secretId) {
    secrets = new CachedSigningSecrets({
      // CachedSigningSecrets is the one cache: each read it asks for goes to Secrets Manager.
      fetch: async () => {
        const value = await getSecret<string>(secretId, { forceFetch: true });
        if (typeof value !== 'string') throw new Error('The signing secret has no string value');
        return value;
      },
      maxAgeMs: 300_000,
      minRefreshIntervalMs: 30_000,
      secretId,
    });
  } else if (localSecret) {
    secrets = new StaticSigningSecrets(localSecret);
  } else {
    throw new Error('Set SIGNING_SECRET_ID (deployed) or VITAL_WEBHOOK_SECRET (local) for the verifier');
  }
  const bucket = requiredEnv(BUCKET.envVar);
  return {
    secrets,
    queue: new SqsEventQueue({
      sqs: sqsClient(),
      queueUrl: requiredEnv(QUEUES.events.envVar),
      // Most deliveries fit one message: the S3 client loads only when a body needs a claim check.
      claimChecks: loadedOnFirstUse<ClaimCheckStore>(async () => {
        const [{ S3ClaimCheckStore }, { s3Client }] = await Promise.all([import('./adapters/claim-check-store'), import('./adapters/s3-client')]);
        return new S3ClaimCheckStore(s3Client(), bucket);
      }),
    }),
    maxBodyBytes: Number(process.env.MAX_BODY_BYTES ?? DEFAULT_MAX_BODY_BYTES),
  };
}

let configured: ReturnType<typeof createVerifierHandler> | undefined;

/** The Lambda entry point. */
export const handler = (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> =>
  (configured ??= createVerifierHandler(verifierFromEnvironment()))(event);
