import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { VitalWebhookPipelineStack } from '../../lib/vital-webhook-pipeline-stack';
import { QUEUES, TABLES } from '../../functions/shared/resources';

/** Synthesizes the stack; bundling is skipped unless a test needs the real assets. */
function synthesize(options: { bundle?: boolean; props?: ConstructorParameters<typeof VitalWebhookPipelineStack>[2] } = {}) {
  const app = new App({ context: options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] } });
  const stack = new VitalWebhookPipelineStack(app, 'Test', {
    env: { account: '123456789012', region: 'eu-west-1' },
    ...options.props,
  });
  return { stack, template: Template.fromStack(stack) };
}

const { template } = synthesize();
type Resource = { Type: string; Properties: Record<string, any> };
const resources = (type: string): [string, Resource][] =>
  Object.entries(template.findResources(type) as Record<string, Resource>);

function functionLogicalId(descriptionStart: string): string {
  const match = resources('AWS::Lambda::Function').find(([, fn]) => String(fn.Properties.Description ?? '').startsWith(descriptionStart));
  assert.ok(match, `a function described "${descriptionStart}..."`);
  return match[0];
}

/** Every IAM statement attached to a function's role. */
function statementsOf(functionId: string): { Action: string | string[]; Resource: unknown }[] {
  const roleRef = template.toJSON().Resources[functionId].Properties.Role['Fn::GetAtt'][0];
  return resources('AWS::IAM::Policy')
    .filter(([, policy]) => policy.Properties.Roles.some((role: { Ref: string }) => role.Ref === roleRef))
    .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement);
}
const actionsOf = (functionId: string): string[] =>
  [...new Set(statementsOf(functionId).flatMap((statement) => [statement.Action].flat()))].sort();

describe('VitalWebhookPipelineStack', () => {
  it('routes POST /webhooks/vital to the verifier through an HTTP API with throttling and access logs', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /webhooks/vital' });
    template.resourceCountIs('AWS::ApiGatewayV2::Route', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      AccessLogSettings: Match.objectLike({ DestinationArn: Match.anyValue() }),
    });
    template.hasOutput('WebhookUrl', { Value: Match.objectLike({ 'Fn::Join': Match.anyValue() }) });
  });

  it('runs every function on Node.js 24, arm64, traced', () => {
    const functions = resources('AWS::Lambda::Function').filter(([, fn]) => fn.Properties.Runtime !== undefined);
    assert.ok(functions.length >= 3);
    for (const [id, fn] of functions) {
      if (!String(fn.Properties.Handler).startsWith('index.')) continue;
      assert.equal(fn.Properties.Runtime, 'nodejs24.x', id);
      assert.deepEqual(fn.Properties.Architectures, ['arm64'], id);
      assert.deepEqual(fn.Properties.TracingConfig, { Mode: 'Active' }, id);
    }
  });

  it('gives each queue a KMS-encrypted dead-letter queue after 5 receives, and a visibility of six function timeouts', () => {
    const queues = resources('AWS::SQS::Queue');
    // Events, backfill jobs and the change-events tap (change-events.test.ts), each with its dead-letter queue.
    assert.equal(queues.length, 6);
    for (const [id, queue] of queues) assert.ok(queue.Properties.KmsMasterKeyId, `${id} is KMS-encrypted`);
    const withRedrive = queues.filter(([, queue]) => queue.Properties.RedrivePolicy);
    assert.equal(withRedrive.length, 3);
    for (const [, queue] of withRedrive) assert.equal(queue.Properties.RedrivePolicy.maxReceiveCount, 5);
    const consumed = new Set(resources('AWS::Lambda::EventSourceMapping').map(([, mapping]) => mapping.Properties.EventSourceArn['Fn::GetAtt'][0]));
    const visibilities = withRedrive.filter(([id]) => consumed.has(id)).map(([, queue]) => queue.Properties.VisibilityTimeout).sort((a, b) => a - b);
    assert.deepEqual(visibilities, [QUEUES.events.visibilityTimeoutSeconds, QUEUES.backfill.visibilityTimeoutSeconds].sort((a, b) => a - b));
    for (const [, fn] of resources('AWS::Lambda::Function')) {
      const timeout = fn.Properties.Timeout;
      if (String(fn.Properties.Description).startsWith('Stores')) assert.ok(QUEUES.events.visibilityTimeoutSeconds >= 6 * timeout);
      if (String(fn.Properties.Description).startsWith('Fetches')) assert.ok(QUEUES.backfill.visibilityTimeoutSeconds >= 6 * timeout);
    }
  });

  it('turns X-Ray off everywhere when the deployment asks, for cost', () => {
    const { template: untraced } = synthesize({ props: { tracing: false } });
    for (const fn of Object.values(untraced.findResources('AWS::Lambda::Function'))) {
      assert.notDeepEqual(fn.Properties.TracingConfig, { Mode: 'Active' });
      if (fn.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME) assert.equal(fn.Properties.Environment.Variables.POWERTOOLS_TRACE_ENABLED, 'false');
    }
    assert.doesNotMatch(JSON.stringify(untraced.toJSON()), /xray:PutTraceSegments/);
  });

  it('traces invocations by default, and the worker and backfill SDK calls only when asked, since the X-Ray SDK weighs on the cold start', () => {
    /** `description: tracing mode, POWERTOOLS_TRACE_ENABLED` of each function the pipeline wrote. */
    const tracingOf = (props: ConstructorParameters<typeof VitalWebhookPipelineStack>[2]) =>
      Object.values(synthesize({ props }).template.findResources('AWS::Lambda::Function'))
        .filter((fn) => fn.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME)
        .map((fn) => `${String(fn.Properties.Description).split(' ')[0]}: ${fn.Properties.TracingConfig?.Mode}, ${fn.Properties.Environment.Variables.POWERTOOLS_TRACE_ENABLED}`)
        .sort();
    assert.deepEqual(tracingOf({}), ['Fetches: Active, false', 'Stores: Active, false', 'Verifies: Active, false']);
    // The verifier has no SDK-call tracer: its bundle has a size budget.
    assert.deepEqual(tracingOf({ traceSdkCalls: true }), ['Fetches: Active, true', 'Stores: Active, true', 'Verifies: Active, false']);
    assert.deepEqual(tracingOf({ tracing: false, traceSdkCalls: true }), ['Fetches: undefined, false', 'Stores: undefined, false', 'Verifies: undefined, false']);
  });

  it('consumes both queues with partial batch responses and capped concurrency', () => {
    const mappings = resources('AWS::Lambda::EventSourceMapping');
    assert.equal(mappings.length, 2);
    for (const [, mapping] of mappings) {
      assert.deepEqual(mapping.Properties.FunctionResponseTypes, ['ReportBatchItemFailures']);
      assert.ok(mapping.Properties.ScalingConfig?.MaximumConcurrency >= 2);
    }
  });

  it('creates every table from the shared definitions: on demand, point-in-time recovery, customer-managed KMS', () => {
    const tables = resources('AWS::DynamoDB::GlobalTable');
    assert.equal(tables.length, Object.keys(TABLES).length);
    for (const [id, table] of tables) {
      assert.equal(table.Properties.BillingMode, 'PAY_PER_REQUEST', id);
      assert.equal(table.Properties.SSESpecification.SSEEnabled, true, id);
      assert.equal(table.Properties.SSESpecification.SSEType, 'KMS', id);
      assert.equal(table.Properties.Replicas[0].PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled, true, id);
    }
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [
        { AttributeName: TABLES.summaries.partitionKey.name, KeyType: 'HASH' },
        { AttributeName: TABLES.summaries.sortKey.name, KeyType: 'RANGE' },
      ],
    });
    for (const definition of Object.values(TABLES)) template.hasOutput(`${definition.id}TableName`, {});
  });

  it('keeps raw bodies in a private, TLS-only, KMS-encrypted bucket that expires them', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: Match.anyValue() } })] },
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Prefix: 'raw-bodies/', ExpirationInDays: 30 })]) },
    });
    // Kept bodies (another team's, types the catalogue does not know) expire with the raw bodies: replay within that time.
    for (const prefix of ['quarantine/', 'unrecognised/']) {
      template.hasResourceProperties('AWS::S3::Bucket', {
        LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Prefix: prefix, ExpirationInDays: 30, NoncurrentVersionExpiration: { NoncurrentDays: 1 } })]) },
      });
    }
    // A failure note explains a dead letter, so it lives exactly as long as one (14 days).
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Prefix: 'failures/', ExpirationInDays: QUEUES.events.messageRetentionSeconds / 86_400 })]) },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });

  it('grants the verifier only: send to its queue, put under raw-bodies/, read its secret, use the key', () => {
    const verifier = functionLogicalId('Verifies');
    const allowed = new Set([
      'sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl',
      's3:PutObject', 's3:PutObjectLegalHold', 's3:PutObjectRetention', 's3:PutObjectTagging', 's3:PutObjectVersionTagging', 's3:Abort*',
      'secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret',
      'kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:GenerateDataKey*', 'kms:ReEncrypt*',
      'xray:PutTraceSegments', 'xray:PutTelemetryRecords',
      // Its own log group only (deploy-rules.test.ts).
      'logs:CreateLogStream', 'logs:PutLogEvents',
    ]);
    const actions = actionsOf(verifier);
    for (const action of actions) assert.ok(allowed.has(action), `verifier must not be granted ${action}`);
    assert.ok(actions.includes('sqs:SendMessage') && actions.includes('s3:PutObject') && actions.includes('secretsmanager:GetSecretValue'));
    const s3Resources = statementsOf(verifier)
      .filter((statement) => [statement.Action].flat().some((action) => action.startsWith('s3:')))
      .map((statement) => JSON.stringify(statement.Resource));
    for (const resource of s3Resources) assert.match(resource, /raw-bodies\/\*/);
    const unscoped = statementsOf(verifier).filter((statement) => statement.Resource === '*');
    assert.deepEqual(unscoped.flatMap((statement) => [statement.Action].flat()).sort(), ['xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
  });

  it('grants the worker and the backfill only the item operations, prefixes, queues and secret each uses', () => {
    const resourcesOf = (functionId: string, actionPrefix: string): string[] =>
      statementsOf(functionId)
        .filter((statement) => [statement.Action].flat().some((action) => action.startsWith(actionPrefix)))
        .map((statement) => JSON.stringify(statement.Resource));
    const expectations: [string, { tables: string[]; prefixes: string[]; sendTo: string[]; secrets: string[] }][] = [
      ['Stores', { tables: ['Summaries', 'Timeseries', 'Connections', 'Backfills', 'Erasures'], prefixes: ['raw-bodies/', 'quarantine/', 'unrecognised/', 'failures/'], sendTo: ['BackfillQueue'], secrets: [] }],
      ['Fetches', { tables: ['Summaries', 'Timeseries', 'Backfills', 'Erasures'], prefixes: ['workout-streams/', 'held-back/'], sendTo: ['BackfillQueue'], secrets: ['VitalApiKey'] }],
    ];
    for (const [description, expected] of expectations) {
      const fn = functionLogicalId(description);
      const dynamoActions = actionsOf(fn).filter((action) => action.startsWith('dynamodb:'));
      assert.deepEqual(dynamoActions, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'], description);
      const tablesGranted = resourcesOf(fn, 'dynamodb:').map((resource) => /Tables([A-Za-z]+?)[0-9A-F]{8}/.exec(resource)?.[1]).sort();
      assert.deepEqual(tablesGranted, [...expected.tables].sort(), `${description}: tables`);
      // The erasures are only read, one Query per delivery or page (functions/domain/erasure.ts).
      const onErasures = statementsOf(fn).filter((statement) => /TablesErasures/.test(JSON.stringify(statement.Resource)));
      assert.deepEqual(onErasures.flatMap((statement) => [statement.Action].flat()), ['dynamodb:Query'], `${description}: erasures`);
      const s3 = resourcesOf(fn, 's3:');
      assert.equal(s3.length, expected.prefixes.length, `${description}: one statement per prefix`);
      for (const prefix of expected.prefixes) assert.ok(s3.some((resource) => resource.includes(`/${prefix}*`)), `${description}: ${prefix}`);
      const sends = statementsOf(fn).filter((statement) => [statement.Action].flat().includes('sqs:SendMessage')).map((statement) => JSON.stringify(statement.Resource));
      assert.deepEqual(sends.map((resource) => /(BackfillQueue|EventsQueue)/.exec(resource)?.[1]), expected.sendTo, `${description}: queues it may send to`);
      const secrets = resourcesOf(fn, 'secretsmanager:').map((resource) => /(VitalApiKey|SigningSecret)/.exec(resource)?.[1]);
      assert.deepEqual(secrets, expected.secrets, `${description}: secrets`);
    }
  });

  it('never puts a secret value in the template: only secret ARNs reach the functions', () => {
    const json = JSON.stringify(template.toJSON());
    assert.doesNotMatch(json, /whsec_[A-Za-z0-9+/=]{8,}/);
    for (const [, fn] of resources('AWS::Lambda::Function')) {
      const variables = Object.keys(fn.Properties.Environment?.Variables ?? {});
      for (const name of variables) assert.doesNotMatch(name, /^(VITAL_WEBHOOK_SECRET|VITAL_API_KEY)$/);
    }
  });

  it('references existing secrets by name instead of creating placeholders when asked', () => {
    const { template: withNames } = synthesize({ props: { signingSecretName: 'prod/vital/signing', vitalApiKeySecretName: 'prod/vital/api-key' } });
    withNames.resourceCountIs('AWS::SecretsManager::Secret', 0);
    template.resourceCountIs('AWS::SecretsManager::Secret', 2);
    // A secret of the user's own may use a key of the user's own: Decrypt through Secrets Manager, for that secret only.
    const decryptStatements = Object.values(withNames.findResources('AWS::IAM::Policy'))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement as { Action: string; Resource: string; Condition?: Record<string, Record<string, unknown>> }[])
      .filter((statement) => statement.Action === 'kms:Decrypt' && statement.Resource === '*');
    for (const secretName of ['prod/vital/signing', 'prod/vital/api-key']) {
      const statement = decryptStatements.find((candidate) => JSON.stringify(candidate.Condition?.StringLike).includes(`:secret:${secretName}-??????`));
      assert.ok(statement, `kms:Decrypt for ${secretName}`);
      assert.deepEqual(statement.Condition!.StringEquals, { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' });
    }
  });

  it('bundles the handlers with esbuild offline (cdk synth works in CI without Docker)', () => {
    const { template: bundled } = synthesize({ bundle: true });
    const code = Object.values(bundled.findResources('AWS::Lambda::Function')).map((fn) => fn.Properties.Code);
    assert.ok(code.every((location) => location.S3Key && String(location.S3Key).endsWith('.zip')));
  });
});
