import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { App, RemovalPolicy } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks, HIPAASecurityChecks } from 'cdk-nag';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { VitalWebhookPipelineStack } from '../../lib/vital-webhook-pipeline-stack';
import { METRICS_NAMESPACE } from '../../functions/shared/service';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
const stack = new VitalWebhookPipelineStack(app, 'Compliance', { env: { account: '123456789012', region: 'us-east-1' } });
/** The other shapes a deployment takes: its own secrets and event bus by name, and a test stack that deletes everything. */
const variants = {
  default: stack,
  'secrets and bus by name, DESTROY': new VitalWebhookPipelineStack(app, 'ComplianceVariant', {
    env: { account: '123456789012', region: 'us-east-1' },
    signingSecretName: 'prod/vital/signing',
    vitalApiKeySecretName: 'prod/vital/api-key',
    eventBusName: 'shared-bus',
    removalPolicy: RemovalPolicy.DESTROY,
  }),
};

describe('cdk-nag', () => {
  for (const pack of [new AwsSolutionsChecks(), new HIPAASecurityChecks()]) {
    for (const [variant, checked] of Object.entries(variants)) {
      it(`${pack.readPackName} (${variant}): no finding is left unaccepted`, () => {
        const report = pack.validateScope(checked);
        const findings = report.violations.map((violation) => `${violation.ruleName} at ${violation.violatingResources.map((r) => r.constructPath ?? r.resourceLogicalId).join(', ')}`);
        assert.deepEqual(findings, []);
        assert.equal(report.success, true);
      });
    }
  }

  it('accepts no finding for the whole stack: each acknowledgement sits on the resource it concerns', () => {
    for (const checked of Object.values(variants)) {
      const onStack = checked.node.metadata.filter((entry) => entry.type === 'aws:cdk:acknowledged-rules');
      assert.deepEqual(onStack, [], 'no acknowledgement on the stack itself');
    }
  });

  it('still reports a wildcard added later to a function\'s role', () => {
    const later = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const widened = new VitalWebhookPipelineStack(later, 'Widened', { env: { account: '123456789012', region: 'us-east-1' } });
    widened.functions.worker.addToRolePolicy(new PolicyStatement({ actions: ['s3:Get*'], resources: ['arn:aws:s3:::some-bucket/*'] }));
    const findings = new AwsSolutionsChecks().validateScope(widened).violations.map((violation) => violation.ruleName);
    assert.deepEqual(findings.sort(), ['AwsSolutions-IAM5[Action::s3:Get*]', 'AwsSolutions-IAM5[Resource::arn:aws:s3:::some-bucket/*]']);
  });

  it('gives every accepted finding a written reason', () => {
    const acknowledged = stack.node.findAll().flatMap((construct) =>
      construct.node.metadata
        .filter((entry) => entry.type === 'aws:cdk:acknowledged-rules')
        .flatMap((entry) => Object.entries(entry.data as Record<string, string>)),
    );
    assert.ok(acknowledged.length >= 10);
    for (const [id, reason] of acknowledged) assert.ok(reason.length > 30, `${id} has a reason`);
  });
});

describe('alarms', () => {
  const template = Template.fromStack(stack);
  it('sends every alarm to one encrypted topic the stack outputs', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as { Properties: { AlarmActions: unknown[]; AlarmDescription: string } }[];
    assert.ok(alarms.length >= 10);
    for (const alarm of alarms) assert.equal(alarm.Properties.AlarmActions.length, 1, alarm.Properties.AlarmDescription);
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: {} });
    template.hasOutput('AlarmTopicArn', {});
  });

  it('watches dead letters, backlog age, errors, 5xx, signature failures, failed backfills, unrecognised event types and silence', () => {
    const descriptions = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((alarm) => String(alarm.Properties.AlarmDescription));
    for (const expected of [/DLQ/, /backfill DLQ/, /oldest queued event/, /verifier function/, /worker function/, /answered 5xx/, /bad signatures/, /backfill job failed/, /waiting for the Vital API key/, /event type this deployment does not know: see vital-pipeline inspect unrecognised/, /No verified webhook arrived for 24 hours/]) {
      assert.ok(descriptions.some((description) => expected.test(description)), String(expected));
    }
    // The silence alarm counts verified, queued deliveries: forged requests must not keep it quiet.
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Enqueued', ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'breaching', EvaluationPeriods: 24 });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('watches only metrics the handlers really publish', () => {
    const functionsDir = path.join(import.meta.dirname, '..', '..', 'functions');
    const sources = readdirSync(functionsDir, { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts'))
      .map((file) => readFileSync(path.join(functionsDir, file), 'utf8'))
      .join('\n');
    // Metric names are PascalCase string literals in the handlers (in addMetric calls or name tables).
    const published = new Set([...sources.matchAll(/'([A-Z][A-Za-z0-9]+)'/g)].map((match) => match[1]));
    const json = JSON.stringify(template.toJSON());
    const watched = new Set<string>();
    for (const alarm of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) {
      if (alarm.Properties.Namespace === METRICS_NAMESPACE) watched.add(alarm.Properties.MetricName);
    }
    for (const match of json.matchAll(new RegExp(`\\\\"${METRICS_NAMESPACE}\\\\",\\\\"([A-Za-z]+)\\\\"`, 'g'))) watched.add(match[1]!);
    assert.ok(watched.size >= 10, `found the dashboard's metrics too (${[...watched].join(', ')})`);
    for (const name of watched) assert.ok(published.has(name), `${name} is published by a handler`);
  });
});
