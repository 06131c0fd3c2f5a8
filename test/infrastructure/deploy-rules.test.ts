import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { App, RemovalPolicy } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { VitalWebhookPipelineStack } from '../../lib/vital-webhook-pipeline-stack';
import { vitalApiBaseUrl } from '../../functions/adapters/vital-api-client';

/**
 * Rules AWS checks only at deploy time, or only when something happens in production (an alarm
 * fires, a first create rolls back), asserted on the synthesized template so that `cdk synth` in
 * CI catches what the stand-ins never would.
 */

function synthesize(props: ConstructorParameters<typeof VitalWebhookPipelineStack>[2] = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new VitalWebhookPipelineStack(app, 'Rules', { env: { account: '123456789012', region: 'eu-west-1' }, ...props });
  return Template.fromStack(stack).toJSON() as { Resources: Record<string, { Type: string; Properties: any; DeletionPolicy?: string; UpdateReplacePolicy?: string }> };
}

const template = synthesize();
const ofType = (t: typeof template, type: string) => Object.entries(t.Resources).filter(([, resource]) => resource.Type === type);
const statements = (policy: { Statement: any[] }) => policy.Statement;
const principalIs = (statement: any, service: string) => [statement.Principal?.Service].flat().includes(service);
const actions = (statement: any): string[] => [statement.Action].flat();

/**
 * The `$context` variables an HTTP API stage accepts in its access-log format (API Gateway developer
 * guide, "Customizing HTTP API access logs"); anything else, such as the REST API's
 * `$context.resourcePath`, makes the stage fail to deploy.
 */
const HTTP_API_CONTEXT_VARIABLES = new Set([
  'accountId', 'apiId', 'awsEndpointRequestId', 'awsEndpointRequestId2', 'customDomain.basePathMatched', 'dataProcessed',
  'domainName', 'domainPrefix', 'error.message', 'error.messageString', 'error.responseType', 'extendedRequestId',
  'httpMethod', 'identity.accountId', 'identity.caller', 'identity.cognitoAuthenticationProvider',
  'identity.cognitoAuthenticationType', 'identity.cognitoIdentityId', 'identity.cognitoIdentityPoolId',
  'identity.principalOrgId', 'identity.clientCert.clientCertPem', 'identity.clientCert.subjectDN',
  'identity.clientCert.issuerDN', 'identity.clientCert.serialNumber', 'identity.clientCert.validity.notBefore',
  'identity.clientCert.validity.notAfter', 'identity.sourceIp', 'identity.user', 'identity.userAgent', 'identity.userArn',
  'integration.error', 'integration.integrationStatus', 'integration.latency', 'integration.requestId', 'integration.status',
  'integrationErrorMessage', 'integrationLatency', 'integrationStatus', 'path', 'protocol', 'requestId', 'requestTime',
  'requestTimeEpoch', 'responseLatency', 'responseLength', 'routeKey', 'stage', 'status',
]);

describe('rules AWS enforces at deploy time, checked on the template', () => {
  it('writes the HTTP API access log with HTTP API variables only', () => {
    const stages = ofType(template, 'AWS::ApiGatewayV2::Stage');
    assert.equal(stages.length, 1);
    const format: string = stages[0]![1].Properties.AccessLogSettings.Format;
    const variables = [...format.matchAll(/\$context\.([A-Za-z0-9.]+)/g)].map((match) => match[1]!);
    assert.ok(variables.length >= 5, format);
    assert.deepEqual(variables.filter((variable) => !HTTP_API_CONTEXT_VARIABLES.has(variable)), [], 'variables an HTTP API stage refuses');
    assert.doesNotThrow(() => JSON.parse(format), 'one JSON object per line');
  });

  it('lets CloudWatch publish every alarm to its topic: the topic policy allows it, and so does the topic key', () => {
    const alarms = ofType(template, 'AWS::CloudWatch::Alarm');
    assert.ok(alarms.length > 0);
    const topics = new Set(alarms.flatMap(([, alarm]) => (alarm.Properties.AlarmActions ?? []).map((action: { Ref: string }) => action.Ref)));
    assert.equal(topics.size, 1, 'every alarm notifies the alarm topic');
    const [topicId] = [...topics];
    for (const [id, alarm] of alarms) assert.ok(alarm.Properties.AlarmActions?.length, `${id} notifies someone`);

    const topicPolicies = ofType(template, 'AWS::SNS::TopicPolicy').filter(([, policy]) => policy.Properties.Topics.some((topic: { Ref: string }) => topic.Ref === topicId));
    const policyStatements = topicPolicies.flatMap(([, policy]) => statements(policy.Properties.PolicyDocument));
    const allow = policyStatements.find((statement) => statement.Effect === 'Allow' && principalIs(statement, 'cloudwatch.amazonaws.com') && actions(statement).includes('sns:Publish'));
    assert.ok(allow, 'the topic policy allows cloudwatch.amazonaws.com to publish');
    assert.deepEqual(allow.Condition.StringEquals['aws:SourceAccount'], '123456789012', 'only for this account');
    // enforceSSL adds a Deny for requests without TLS: CloudWatch publishes over TLS, so it does not match.
    for (const deny of policyStatements.filter((statement) => statement.Effect === 'Deny')) {
      assert.deepEqual(deny.Condition, { Bool: { 'aws:SecureTransport': 'false' } });
    }

    const keyRef = template.Resources[topicId!]!.Properties.KmsMasterKeyId['Fn::GetAtt']?.[0] ?? template.Resources[topicId!]!.Properties.KmsMasterKeyId.Ref;
    const keyStatements = statements(template.Resources[keyRef]!.Properties.KeyPolicy);
    const keyActions = keyStatements
      .filter((statement) => statement.Effect === 'Allow' && principalIs(statement, 'cloudwatch.amazonaws.com'))
      .flatMap(actions);
    assert.ok(keyActions.includes('kms:Decrypt') && keyActions.includes('kms:GenerateDataKey*'), `the topic key lets CloudWatch encrypt: ${keyActions.join(', ')}`);
    const keyGrant = keyStatements.find((statement) => statement.Effect === 'Allow' && principalIs(statement, 'cloudwatch.amazonaws.com'))!;
    assert.deepEqual(keyGrant.Condition, allow.Condition, 'the key grant holds for the same alarms as the topic policy');
  });

  it('scopes the key policy statements of service principals to this account', () => {
    const keys = ofType(template, 'AWS::KMS::Key');
    const servicesStatements = keys.flatMap(([, key]) => statements(key.Properties.KeyPolicy)).filter((statement) => statement.Principal?.Service);
    assert.ok(servicesStatements.length >= 2);
    for (const statement of servicesStatements) {
      assert.ok(statement.Condition, `a condition on ${JSON.stringify(statement.Principal)}`);
    }
    const logs = servicesStatements.find((statement) => principalIs(statement, 'logs.eu-west-1.amazonaws.com'))!;
    assert.ok(logs.Condition.ArnLike['kms:EncryptionContext:aws:logs:arn'], 'CloudWatch Logs only for log groups of this account');
  });

  it('lets each function write only to its own log group: no managed policy with logs actions on every group', () => {
    const functions = ofType(template, 'AWS::Lambda::Function');
    assert.equal(functions.length, 3);
    for (const [id, fn] of functions) {
      const roleId = fn.Properties.Role['Fn::GetAtt'][0];
      assert.equal(template.Resources[roleId]!.Properties.ManagedPolicyArns, undefined, `${id}'s role has no managed policy`);
      const logGroupId = fn.Properties.LoggingConfig.LogGroup.Ref;
      const policies = ofType(template, 'AWS::IAM::Policy').filter(([, policy]) => policy.Properties.Roles.some((role: { Ref: string }) => role.Ref === roleId));
      const logStatements = policies.flatMap(([, policy]) => statements(policy.Properties.PolicyDocument)).filter((statement) => actions(statement).some((action) => action.startsWith('logs:')));
      assert.deepEqual(logStatements.flatMap(actions).sort(), ['logs:CreateLogStream', 'logs:PutLogEvents'], id);
      for (const statement of logStatements) assert.deepEqual(statement.Resource, { 'Fn::GetAtt': [logGroupId, 'Arn'] }, `${id} writes to its own log group`);
    }
  });

  it('outputs the Vital API its backfill fetches from, for vital-pipeline doctor to check the key against', () => {
    const outputs = (t: ReturnType<typeof synthesize>) => (t as unknown as { Outputs: Record<string, { Value: unknown }> }).Outputs;
    assert.equal(outputs(template).VitalApiBaseUrl?.Value, vitalApiBaseUrl({ environment: 'production', region: 'us' }));
    const sandbox = synthesize({ vitalEnvironment: 'sandbox', vitalRegion: 'eu' });
    assert.equal(outputs(sandbox).VitalApiBaseUrl?.Value, vitalApiBaseUrl({ environment: 'sandbox', region: 'eu' }));
  });

  it('keeps data when the stack is deleted, but not the orphans of a first create that rolls back', () => {
    const stateful = ['AWS::KMS::Key', 'AWS::DynamoDB::GlobalTable', 'AWS::S3::Bucket', 'AWS::SQS::Queue', 'AWS::SecretsManager::Secret', 'AWS::Logs::LogGroup'];
    for (const type of stateful) {
      const found = ofType(template, type);
      assert.ok(found.length > 0, type);
      for (const [id, resource] of found) {
        assert.equal(resource.DeletionPolicy, 'RetainExceptOnCreate', `${type} ${id}`);
        assert.equal(resource.UpdateReplacePolicy, 'Retain', `${type} ${id}`);
      }
    }
  });

  it('honours removalPolicy DESTROY for every stateful resource, emptying the buckets first', () => {
    const destroyed = synthesize({ removalPolicy: RemovalPolicy.DESTROY });
    for (const type of ['AWS::KMS::Key', 'AWS::DynamoDB::GlobalTable', 'AWS::S3::Bucket', 'AWS::SQS::Queue', 'AWS::SecretsManager::Secret', 'AWS::Logs::LogGroup']) {
      for (const [id, resource] of ofType(destroyed, type)) assert.equal(resource.DeletionPolicy, 'Delete', `${type} ${id}`);
    }
    const buckets = ofType(destroyed, 'AWS::S3::Bucket').map(([id]) => id);
    const autoDeleted = ofType(destroyed, 'Custom::S3AutoDeleteObjects').map(([, resource]) => resource.Properties.BucketName.Ref);
    assert.deepEqual(autoDeleted.sort(), buckets.sort());
    for (const [, table] of ofType(destroyed, 'AWS::DynamoDB::GlobalTable')) {
      assert.ok(table.Properties.Replicas.every((replica: { DeletionProtectionEnabled?: boolean }) => !replica.DeletionProtectionEnabled));
    }
  });
});
