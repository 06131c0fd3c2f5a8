import { Duration, RemovalPolicy } from 'aws-cdk-lib';
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
import { grantObjectAccess } from './object-grants';
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
}

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
      environment: {
        [QUEUES.events.envVar]: props.queue.queueUrl,
        [BUCKET.envVar]: props.bucket.bucketName,
        SIGNING_SECRET_ID: props.signingSecret.secretArn,
        ...(props.maxBodyBytes ? { MAX_BODY_BYTES: String(props.maxBodyBytes) } : {}),
      },
    });
    props.queue.grantSendMessages(this.verifier);
    grantObjectAccess(props.bucket, props.encryptionKey, this.verifier, BUCKET.prefixes.claimChecks, ['s3:PutObject']);
    props.signingSecret.grantRead(this.verifier);

    this.api = new HttpApi(this, 'Api', {
      description: 'Receives Vital (Junction) webhooks',
      createDefaultStage: false,
    });
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      encryptionKey: props.encryptionKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.jsonWithStandardFields({
          caller: false,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: false,
        }),
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
