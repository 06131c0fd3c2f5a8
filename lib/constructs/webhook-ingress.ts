import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import { HttpApi, HttpMethod, HttpStage, LogGroupLogDestination } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { BUCKET, QUEUES, VERIFIER_TIMEOUT_SECONDS, WEBHOOK_ROUTE } from '../../functions/shared/resources';
import { grantObjectAccess, grantSecretRead } from './object-grants';
import { PipelineFunction } from './pipeline-function';

export interface WebhookIngressProps {
  readonly queue: IQueue;
  readonly bucket: IBucket;
  readonly signingSecret: ISecret;
  readonly encryptionKey: IKey;
  readonly logRetention: RetentionDays;
  readonly tracing: boolean;
  /** Steady-state requests per second and burst the API accepts before answering 429 (Svix retries those). */
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly maxBodyBytes?: number;
  /** What happens to the access-log group when the stack is deleted. */
  readonly removalPolicy: RemovalPolicy;
}

/**
 * One JSON line per request in the access log, from the variables HTTP APIs support. (The REST-API
 * helper `AccessLogFormat.jsonWithStandardFields` emits `$context.resourcePath`, which an HTTP API
 * stage refuses at deploy time.) No header, body or query string: only who, when and what answer.
 */
export const HTTP_API_ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  httpMethod: '$context.httpMethod',
  routeKey: '$context.routeKey',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationStatus: '$context.integrationStatus',
  integrationError: '$context.integrationErrorMessage',
  error: '$context.error.message',
} as const;

/**
 * The public edge: an HTTP API with one route, `POST /webhooks/vital`, served by the verifier, which
 * checks the Svix signature on the raw body and answers 2xx only once the event is queued. The
 * verifier may send to its queue, write claim-checked bodies under one prefix, and read its secret:
 * nothing else.
 */
export class WebhookIngress extends Construct {
  readonly api: HttpApi;
  readonly verifier: PipelineFunction;
  readonly url: string;

  constructor(scope: Construct, id: string, props: WebhookIngressProps) {
    super(scope, id);
    this.verifier = new PipelineFunction(this, 'Verifier', {
      entry: 'verifier.ts',
      description: 'Verifies Vital webhook signatures and queues verified deliveries',
      timeout: Duration.seconds(VERIFIER_TIMEOUT_SECONDS),
      encryptionKey: props.encryptionKey,
      logRetention: props.logRetention,
      tracing: props.tracing,
      removalPolicy: props.removalPolicy,
      environment: {
        [QUEUES.events.envVar]: props.queue.queueUrl,
        [BUCKET.envVar]: props.bucket.bucketName,
        SIGNING_SECRET_ID: props.signingSecret.secretArn,
        ...(props.maxBodyBytes ? { MAX_BODY_BYTES: String(props.maxBodyBytes) } : {}),
      },
    });
    props.queue.grantSendMessages(this.verifier);
    grantObjectAccess(props.bucket, props.encryptionKey, this.verifier, BUCKET.prefixes.claimChecks, ['s3:PutObject']);
    grantSecretRead(props.signingSecret, this.verifier);

    this.api = new HttpApi(this, 'Api', {
      description: 'Receives Vital (Junction) webhooks',
      createDefaultStage: false,
    });
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      encryptionKey: props.encryptionKey,
      removalPolicy: props.removalPolicy,
    });
    const stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(HTTP_API_ACCESS_LOG_FIELDS)),
      },
    });
    this.api.addRoutes({
      path: WEBHOOK_ROUTE.path,
      methods: [HttpMethod[WEBHOOK_ROUTE.method]],
      integration: new HttpLambdaIntegration('VerifierIntegration', this.verifier),
    });
    this.url = `${stage.url.replace(/\/$/, '')}${WEBHOOK_ROUTE.path}`;
  }
}
