import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { Key } from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Secret, type ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { PolicyStatement, ServicePrincipal, type ManagedPolicy } from 'aws-cdk-lib/aws-iam';
import { Topic, type ITopic } from 'aws-cdk-lib/aws-sns';
import { acceptAccessLogBucketFindings, acceptBucketFindings, acceptPlaceholderSecretFindings, acceptWebhookRouteFindings } from './compliance';
import { ChangeEvents } from './constructs/change-events';
import { ErasePolicy } from './constructs/erase-policy';
import { PipelineAlarms } from './constructs/pipeline-alarms';
import { grantObjectAccess, grantSecretRead } from './constructs/object-grants';
import type { Construct } from 'constructs';
import { BUCKET, CHANGE_EVENT_BUS, QUEUES, TABLES, type PipelineFunctionName, type QueueDefinition } from '../functions/shared/resources';
import { PipelineFunction } from './constructs/pipeline-function';
import { vitalApiBaseUrl } from '../functions/adapters/vital-api-client';
import { PipelineQueue } from './constructs/pipeline-queue';
import { PipelineTables } from './constructs/pipeline-tables';
import { WebhookIngress } from './constructs/webhook-ingress';

/** Settings of a deployment; every one has a safe default. */
export interface VitalWebhookPipelineProps extends StackProps {
  /**
   * Name of an existing Secrets Manager secret holding the webhook signing secret (`whsec_...`, or
   * JSON `{"current": ..., "previous": ...}` during a rotation).
   * @default the stack creates a placeholder secret that you fill in after the first deploy
   */
  readonly signingSecretName?: string;
  /**
   * Name of an existing Secrets Manager secret holding the Vital team API key.
   * @default the stack creates a placeholder secret that you fill in after the first deploy
   */
  readonly vitalApiKeySecretName?: string;
  /** @default 'production' */
  readonly vitalEnvironment?: 'production' | 'sandbox';
  /** @default 'us' */
  readonly vitalRegion?: 'us' | 'eu';
  /**
   * The Vital team id this deployment serves; events for any other team are quarantined, not stored.
   * @default accept every team
   */
  readonly expectedTeamId?: string;
  /**
   * Days raw bodies (claim checks, quarantined events, events of an unrecognised type, backfill
   * records held back) are kept in the bucket. @default 30
   */
  readonly rawBodyRetentionDays?: number;
  /**
   * X-Ray tracing of every function. At low volume nearly every invocation is traced, which makes
   * X-Ray the largest cost of a small deployment (docs/cost.md). @default true
   */
  readonly tracing?: boolean;
  /**
   * With `tracing`, the worker and backfill also trace each AWS SDK call (DynamoDB, S3, SQS) as a
   * subsegment. Off by default: the X-Ray SDK it loads is the largest part of the worker's cold
   * start (docs/cost.md). @default false
   */
  readonly traceSdkCalls?: boolean;
  /** @default RetentionDays.THREE_MONTHS */
  readonly logRetention?: RetentionDays;
  /** Concurrent backfill invocations (each fetches one window or page at a time). @default QUEUES.backfill.maxConcurrency */
  readonly backfillConcurrency?: number;
  /** API Gateway throttling of the webhook route. @default 50 requests/s, bursts of 100 */
  readonly throttle?: { readonly rateLimit: number; readonly burstLimit: number };
  /**
   * Where alarms are sent; subscribe your e-mail or pager to it.
   * @default the stack creates an encrypted topic (output `AlarmTopicArn`)
   */
  readonly alarmTopic?: ITopic;
  /** Hours without any webhook before the silence alarm fires. @default 24 */
  readonly silenceAlarmHours?: number;
  /**
   * Name of an existing EventBridge bus (in this account and region) to publish change events on
   * (docs/events/); the stack adds its tap rule to it.
   * @default the stack creates its own bus, `<stack name>-change-events` (output `ChangeEventBusName`)
   */
  readonly eventBusName?: string;
  /**
   * What happens to the stateful resources (key, tables, buckets, queues, secrets, log groups) when
   * the stack is deleted. Health data is kept by default, except when the stack's first create
   * rolls back (a retry would otherwise meet a second set of orphans). `DESTROY` also empties the
   * buckets, for test stacks.
   * @default RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
   */
  readonly removalPolicy?: RemovalPolicy;
}

function secretOrPlaceholder(
  scope: Construct,
  id: string,
  name: string | undefined,
  description: string,
  encryptionKey: Key,
  removalPolicy: RemovalPolicy,
): ISecret {
  if (name) return Secret.fromSecretNameV2(scope, id, name);
  const secret = new Secret(scope, id, { description, encryptionKey, removalPolicy });
  acceptPlaceholderSecretFindings(secret);
  return secret;
}

/**
 * The whole pipeline: HTTP API → verifier → SQS → worker → DynamoDB, and the backfill function
 * that fetches what historical events announce; both publish change events on EventBridge. One
 * customer-managed KMS key encrypts queues, tables, bucket, secrets and logs.
 */
export class VitalWebhookPipelineStack extends Stack {
  readonly webhookUrl: string;
  /** The three functions, by the name the local runner and the tests give them. */
  readonly functions: Readonly<Record<PipelineFunctionName, PipelineFunction>>;
  /** What `vital-pipeline erase --stack` needs, for the operator's role (output `ErasePolicyArn`). */
  readonly erasePolicy: ManagedPolicy;

  constructor(scope: Construct, id: string, props: VitalWebhookPipelineProps = {}) {
    super(scope, id, props);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE;
    const destroyed = removalPolicy === RemovalPolicy.DESTROY;
    const logRetention = props.logRetention ?? RetentionDays.THREE_MONTHS;
    const tracing = props.tracing ?? true;
    const vitalEnvironment = props.vitalEnvironment ?? 'production';
    const vitalRegion = props.vitalRegion ?? 'us';

    const encryptionKey = new Key(this, 'DataKey', {
      description: 'Encrypts the Vital webhook pipeline: queues, tables, bucket, secrets, logs',
      enableKeyRotation: true,
      removalPolicy,
    });
    // CloudWatch Logs may use the key only for this account's log groups in this region.
    encryptionKey.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal(`logs.${this.region}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${this.partition}:logs:${this.region}:${this.account}:log-group:*` } },
      }),
    );
    // CloudWatch alarms publish to the encrypted alarm topic, and need the key to do it. Both grants
    // (here and on the topic) hold only for this account's alarms: no confused deputy.
    const onBehalfOfOurAlarms = {
      StringEquals: { 'aws:SourceAccount': this.account },
      ArnLike: { 'aws:SourceArn': `arn:${this.partition}:cloudwatch:${this.region}:${this.account}:alarm:*` },
    };
    encryptionKey.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: onBehalfOfOurAlarms,
      }),
    );

    const tables = new PipelineTables(this, 'Tables', { encryptionKey, removalPolicy });
    const events = new PipelineQueue(this, 'EventsQueue', { definition: QUEUES.events, encryptionKey, removalPolicy });
    const backfillDefinition: QueueDefinition = {
      ...QUEUES.backfill,
      maxConcurrency: props.backfillConcurrency ?? QUEUES.backfill.maxConcurrency,
    };
    const backfill = new PipelineQueue(this, 'BackfillQueue', { definition: backfillDefinition, encryptionKey, removalPolicy });
    const changeEvents = new ChangeEvents(this, CHANGE_EVENT_BUS.id, { eventBusName: props.eventBusName, encryptionKey, removalPolicy });

    const rawBodyRetention = Duration.days(props.rawBodyRetentionDays ?? 30);
    const accessLogs = new Bucket(this, 'AccessLogs', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_PREFERRED,
      enforceSSL: true,
      versioned: true,
      lifecycleRules: [{ expiration: Duration.days(365), noncurrentVersionExpiration: Duration.days(1) }],
      removalPolicy,
      autoDeleteObjects: destroyed,
    });
    const bucket = new Bucket(this, BUCKET.id, {
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'raw-bodies-bucket/',
      encryption: BucketEncryption.KMS,
      encryptionKey,
      bucketKeyEnabled: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      versioned: true,
      lifecycleRules: [
        { prefix: BUCKET.prefixes.claimChecks, expiration: rawBodyRetention, noncurrentVersionExpiration: Duration.days(1) },
        { prefix: BUCKET.prefixes.quarantine, expiration: rawBodyRetention, noncurrentVersionExpiration: Duration.days(1) },
        { prefix: BUCKET.prefixes.unrecognised, expiration: rawBodyRetention, noncurrentVersionExpiration: Duration.days(1) },
        { prefix: BUCKET.prefixes.workoutStreams, noncurrentVersionExpiration: Duration.days(7) },
        { prefix: BUCKET.prefixes.heldBack, expiration: rawBodyRetention, noncurrentVersionExpiration: Duration.days(1) },
        // A failure note explains a dead letter: it lives as long as the dead letter can.
        { prefix: BUCKET.prefixes.deliveryFailures, expiration: Duration.seconds(QUEUES.events.messageRetentionSeconds), noncurrentVersionExpiration: Duration.days(1) },
      ],
      removalPolicy,
      autoDeleteObjects: destroyed,
    });

    const signingSecret = secretOrPlaceholder(
      this,
      'SigningSecret',
      props.signingSecretName,
      'Vital webhook signing secret: whsec_... (or {"current": ..., "previous": ...} during a rotation)',
      encryptionKey,
      removalPolicy,
    );
    const vitalApiKey = secretOrPlaceholder(
      this,
      'VitalApiKey',
      props.vitalApiKeySecretName,
      'Vital (Junction) team API key used to fetch historical backfills',
      encryptionKey,
      removalPolicy,
    );

    const ingress = new WebhookIngress(this, 'Ingress', {
      queue: events.queue,
      bucket,
      signingSecret,
      encryptionKey,
      logRetention,
      tracing,
      throttle: props.throttle ?? { rateLimit: 50, burstLimit: 100 },
      removalPolicy,
    });
    this.webhookUrl = ingress.url;

    const common = { encryptionKey, logRetention, tracing, traceSdkCalls: props.traceSdkCalls ?? false, removalPolicy };
    const worker = new PipelineFunction(this, 'Worker', {
      ...common,
      entry: 'worker.ts',
      description: 'Stores verified Vital events in DynamoDB and schedules backfills',
      timeout: Duration.seconds(QUEUES.events.consumerTimeoutSeconds),
      environment: {
        ...tables.environment(),
        [BUCKET.envVar]: bucket.bucketName,
        [QUEUES.backfill.envVar]: backfill.queue.queueUrl,
        ...changeEvents.environment(),
        ...(props.expectedTeamId ? { EXPECTED_TEAM_ID: props.expectedTeamId } : {}),
      },
    });
    tables.grantRecordAccess(worker, 'summaries', 'timeseries', 'connections', 'backfills');
    tables.grantErasureReads(worker);
    grantObjectAccess(bucket, encryptionKey, worker, BUCKET.prefixes.claimChecks, ['s3:GetObject']);
    grantObjectAccess(bucket, encryptionKey, worker, BUCKET.prefixes.quarantine, ['s3:PutObject']);
    grantObjectAccess(bucket, encryptionKey, worker, BUCKET.prefixes.unrecognised, ['s3:PutObject']);
    grantObjectAccess(bucket, encryptionKey, worker, BUCKET.prefixes.deliveryFailures, ['s3:PutObject']);
    backfill.queue.grantSendMessages(worker);
    changeEvents.grantPublish(worker);
    worker.addEventSource(sqsEventSource(events.queue, QUEUES.events));

    const backfiller = new PipelineFunction(this, 'Backfill', {
      ...common,
      entry: 'backfill.ts',
      description: 'Fetches announced historical data from the Vital Data Access API, window by window',
      timeout: Duration.seconds(QUEUES.backfill.consumerTimeoutSeconds),
      environment: {
        ...tables.environment(),
        [BUCKET.envVar]: bucket.bucketName,
        [QUEUES.backfill.envVar]: backfill.queue.queueUrl,
        VITAL_API_KEY_SECRET_ID: vitalApiKey.secretArn,
        VITAL_ENVIRONMENT: vitalEnvironment,
        VITAL_REGION: vitalRegion,
        ...changeEvents.environment(),
      },
    });
    tables.grantRecordAccess(backfiller, 'summaries', 'timeseries', 'backfills');
    tables.grantErasureReads(backfiller);
    grantObjectAccess(bucket, encryptionKey, backfiller, BUCKET.prefixes.workoutStreams, ['s3:GetObject', 's3:PutObject']);
    grantObjectAccess(bucket, encryptionKey, backfiller, BUCKET.prefixes.heldBack, ['s3:PutObject']);
    backfill.queue.grantSendMessages(backfiller);
    changeEvents.grantPublish(backfiller);
    grantSecretRead(vitalApiKey, backfiller);
    backfiller.addEventSource(sqsEventSource(backfill.queue, backfillDefinition));
    this.functions = { verifier: ingress.verifier, worker, backfill: backfiller };

    const alarmTopic = props.alarmTopic ?? new Topic(this, 'AlarmTopic', { masterKey: encryptionKey, enforceSSL: true });
    // Alarms publish as cloudwatch.amazonaws.com; the topic policy enforceSSL creates would refuse it.
    // (A topic given as `alarmTopic` is the user's: its policy is theirs to open to CloudWatch.)
    alarmTopic.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [alarmTopic.topicArn],
        conditions: onBehalfOfOurAlarms,
      }),
    );
    new PipelineAlarms(this, 'Alarms', {
      topic: alarmTopic,
      api: ingress.api,
      verifier: ingress.verifier,
      worker,
      backfill: backfiller,
      eventsQueue: events.queue,
      eventsDeadLetterQueue: events.deadLetterQueue,
      backfillDeadLetterQueue: backfill.deadLetterQueue,
      silenceHours: props.silenceAlarmHours ?? 24,
      signatureFailureThreshold: 20,
    });

    // For the operator's role, not a function's: `vital-pipeline erase --stack` (docs/erasure.md).
    this.erasePolicy = new ErasePolicy(this, 'ErasePolicy', { tables: tables.tables, bucket, encryptionKey }).policy;

    acceptWebhookRouteFindings(ingress.api);
    acceptAccessLogBucketFindings(accessLogs);
    acceptBucketFindings(bucket);

    const outputs: Record<string, string> = {
      AlarmTopicArn: alarmTopic.topicArn,
      WebhookUrl: ingress.url,
      EventsQueueUrl: events.queue.queueUrl,
      EventsDlqUrl: events.deadLetterQueue.queueUrl,
      BackfillQueueUrl: backfill.queue.queueUrl,
      BackfillDlqUrl: backfill.deadLetterQueue.queueUrl,
      ChangeEventBusName: changeEvents.bus.eventBusName,
      // The tap `vital-pipeline events --stack` reads.
      ChangeEventsQueueUrl: changeEvents.queue.queueUrl,
      RawBodyBucketName: bucket.bucketName,
      SigningSecretArn: signingSecret.secretArn,
      VitalApiKeySecretArn: vitalApiKey.secretArn,
      // Where the backfill fetches history: what `vital-pipeline doctor` checks the API key against.
      VitalApiBaseUrl: vitalApiBaseUrl({ environment: vitalEnvironment, region: vitalRegion }),
      // Attach it to the role that runs `vital-pipeline erase --stack`.
      ErasePolicyArn: this.erasePolicy.managedPolicyArn,
    };
    for (const [name, definition] of Object.entries(TABLES)) {
      outputs[`${definition.id}TableName`] = tables.tables[name as keyof typeof TABLES].tableName;
    }
    // How long each queue's consumer may run: `vital-pipeline erase` waits that long for invocations
    // that may have missed its tombstone, as this deployment runs them.
    for (const definition of Object.values(QUEUES)) outputs[`${definition.id}FunctionTimeoutSeconds`] = String(definition.consumerTimeoutSeconds);
    for (const [name, value] of Object.entries(outputs)) new CfnOutput(this, name, { value });
  }
}

/** The event source mapping Lambda uses for a queue, from its shared definition. */
function sqsEventSource(queue: PipelineQueue['queue'], definition: QueueDefinition): SqsEventSource {
  return new SqsEventSource(queue, {
    batchSize: definition.batchSize,
    maxBatchingWindow: definition.maxBatchingWindowSeconds ? Duration.seconds(definition.maxBatchingWindowSeconds) : undefined,
    maxConcurrency: definition.maxConcurrency,
    reportBatchItemFailures: true,
  });
}
