import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { CHANGE_EVENT_SOURCE } from '../../functions/domain/change-events';
import { CHANGE_EVENT_BUS } from '../../functions/shared/resources';
import { VitalWebhookPipelineStack } from '../../lib/vital-webhook-pipeline-stack';
import { AccessEvaluator, functionCredentials } from '../../local/aws-access';
import { synthesizedStack } from '../../local/stack-access';
import { LOCAL_ACCOUNT, localAccessModel } from '../../local/synthesized-access';

/**
 * Change events on EventBridge: the worker and the backfill may put events on the pipeline's bus
 * (its own, or one the deployment names) and do nothing else there; a tap rule copies the
 * pipeline's events to an encrypted queue that only that rule, through EventBridge, may send to.
 */

type Resource = { Type: string; Properties: Record<string, any> };
type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Principal?: { Service?: string }; Condition?: Record<string, Record<string, unknown>> };

function synthesize(props: ConstructorParameters<typeof VitalWebhookPipelineStack>[2] = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new VitalWebhookPipelineStack(app, 'Test', { env: { account: '123456789012', region: 'eu-west-1' }, ...props });
  const template = Template.fromStack(stack);
  const json = template.toJSON() as { Resources: Record<string, Resource>; Outputs: Record<string, { Value: unknown }> };
  const ofType = (type: string) => Object.entries(json.Resources).filter(([, resource]) => resource.Type === type);
  const logicalIdOf = (name: keyof VitalWebhookPipelineStack['functions']) => stack.getLogicalId(stack.functions[name].node.defaultChild as CfnFunction);
  const roleOf = (name: keyof VitalWebhookPipelineStack['functions']) => json.Resources[logicalIdOf(name)]!.Properties.Role['Fn::GetAtt'][0] as string;
  /** The roles of the stack's IAM policies that allow any `events:` action, and those statements. */
  const eventsGrants = ofType('AWS::IAM::Policy').flatMap(([, policy]) =>
    (policy.Properties.PolicyDocument.Statement as Statement[])
      .filter((statement) => [statement.Action].flat().some((action) => action.startsWith('events:')))
      .flatMap((statement) => policy.Properties.Roles.map((role: { Ref: string }) => ({ role: role.Ref, statement }))),
  );
  const [[queueId]] = ofType('AWS::SQS::Queue').filter(([id]) => id.startsWith('ChangeEventsQueue'));
  const [[deadLettersId]] = ofType('AWS::SQS::Queue').filter(([id]) => id.startsWith('ChangeEventsDeadLetters'));
  const [[ruleId, rule]] = ofType('AWS::Events::Rule');
  const keyStatements = ofType('AWS::KMS::Key').flatMap(([, key]) => key.Properties.KeyPolicy.Statement as Statement[]);
  return { json, ofType, logicalIdOf, roleOf, eventsGrants, queueId: queueId!, deadLettersId: deadLettersId!, ruleId: ruleId!, rule: rule!, keyStatements };
}

/** An ARN as the template writes it (`Fn::Join` over the partition), as a string. */
function arn(value: unknown): string {
  if (typeof value === 'string') return value;
  const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  assert.ok(join, `an ARN: ${JSON.stringify(value)}`);
  return join[1].map((part) => (typeof part === 'string' ? part : (part as { Ref?: string }).Ref === 'AWS::Partition' ? 'aws' : JSON.stringify(part))).join(join[0]);
}

const own = synthesize();
const [[busId, bus]] = own.ofType('AWS::Events::EventBus');
const eventsStatements = (statements: Statement[]) => statements.filter((statement) => statement.Principal?.Service === 'events.amazonaws.com');

describe('change events on EventBridge', () => {
  it('creates the stack\'s own bus, named after the stack, and outputs its name and the tap queue\'s URL', () => {
    assert.equal(own.ofType('AWS::Events::EventBus').length, 1);
    assert.equal(bus!.Properties.Name, 'Test-change-events');
    assert.deepEqual(own.json.Outputs.ChangeEventBusName?.Value, { Ref: busId });
    assert.deepEqual(own.json.Outputs.ChangeEventsQueueUrl?.Value, { Ref: own.queueId });
    // Nobody else may put events on it: no bus policy.
    assert.equal(own.ofType('AWS::Events::EventBusPolicy').length, 0);
  });

  it('tells the worker and the backfill the bus, and the verifier nothing', () => {
    const variables = (name: 'verifier' | 'worker' | 'backfill') => own.json.Resources[own.logicalIdOf(name)]!.Properties.Environment.Variables;
    assert.deepEqual(variables('worker')[CHANGE_EVENT_BUS.envVar], { Ref: busId });
    assert.deepEqual(variables('backfill')[CHANGE_EVENT_BUS.envVar], { Ref: busId });
    assert.equal(variables('verifier')[CHANGE_EVENT_BUS.envVar], undefined);
  });

  it('grants events:PutEvents on that bus to the worker and the backfill, and no events action to anyone else', () => {
    assert.deepEqual(own.eventsGrants.map(({ role }) => role).sort(), [own.roleOf('worker'), own.roleOf('backfill')].sort());
    for (const { statement } of own.eventsGrants) {
      assert.equal(statement.Effect, 'Allow');
      assert.equal(statement.Action, 'events:PutEvents');
      assert.deepEqual(statement.Resource, { 'Fn::GetAtt': [busId, 'Arn'] });
    }
  });

  it('taps the pipeline\'s events into an encrypted queue, with a dead-letter queue for what EventBridge cannot deliver', () => {
    assert.equal(own.ofType('AWS::Events::Rule').length, 1);
    assert.deepEqual(own.rule.Properties.EventBusName, { Ref: busId });
    assert.deepEqual(own.rule.Properties.EventPattern, { source: [CHANGE_EVENT_SOURCE] });
    assert.deepEqual(own.rule.Properties.Targets, [
      { Id: 'Target0', Arn: { 'Fn::GetAtt': [own.queueId, 'Arn'] }, DeadLetterConfig: { Arn: { 'Fn::GetAtt': [own.deadLettersId, 'Arn'] } } },
    ]);
    const [[keyId]] = own.ofType('AWS::KMS::Key');
    const queue = own.json.Resources[own.queueId]!.Properties;
    assert.deepEqual(queue.KmsMasterKeyId, { 'Fn::GetAtt': [keyId, 'Arn'] });
    assert.equal(queue.MessageRetentionPeriod, 4 * 86_400);
    // Read by people, not a function: a message received 5 times and never deleted moves aside too.
    assert.deepEqual(queue.RedrivePolicy, { deadLetterTargetArn: { 'Fn::GetAtt': [own.deadLettersId, 'Arn'] }, maxReceiveCount: 5 });
    assert.deepEqual(own.json.Resources[own.deadLettersId]!.Properties.KmsMasterKeyId, { 'Fn::GetAtt': [keyId, 'Arn'] });
  });

  it('lets EventBridge send to the tap queue and its dead-letter queue for the tap rule alone, over TLS, and to no other queue', () => {
    const policies = own.ofType('AWS::SQS::QueuePolicy');
    const admitting = policies.filter(([, policy]) => eventsStatements(policy.Properties.PolicyDocument.Statement).length > 0);
    assert.deepEqual(admitting.flatMap(([, policy]) => policy.Properties.Queues.map((queue: { Ref: string }) => queue.Ref)).sort(), [own.queueId, own.deadLettersId].sort());
    for (const [, policy] of admitting) {
      const statements = policy.Properties.PolicyDocument.Statement as Statement[];
      const [allow, ...others] = eventsStatements(statements);
      assert.equal(others.length, 0);
      assert.equal(allow!.Action, 'sqs:SendMessage');
      assert.deepEqual(allow!.Condition, { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [own.ruleId, 'Arn'] } } });
      assert.ok(statements.some((statement) => statement.Effect === 'Deny' && JSON.stringify(statement.Condition) === '{"Bool":{"aws:SecureTransport":"false"}}'), 'TLS only');
    }
  });

  it('lets EventBridge use the key for this account\'s rules on the bus only, to encrypt what it sends to the tap', () => {
    const [grant, ...others] = eventsStatements(own.keyStatements);
    assert.equal(others.length, 0);
    assert.deepEqual([grant!.Action].flat().sort(), ['kms:Decrypt', 'kms:GenerateDataKey']);
    assert.deepEqual(grant!.Condition!.StringEquals, { 'aws:SourceAccount': '123456789012' });
    assert.equal(arn(grant!.Condition!.ArnLike!['aws:SourceArn']), 'arn:aws:events:eu-west-1:123456789012:rule/Test-change-events/*');
  });

  it('publishes on a bus the deployment names instead: creates none, and grants, taps and outputs that one', () => {
    const named = synthesize({ eventBusName: 'shared-bus' });
    assert.equal(named.ofType('AWS::Events::EventBus').length, 0);
    for (const name of ['worker', 'backfill'] as const) {
      assert.equal(named.json.Resources[named.logicalIdOf(name)]!.Properties.Environment.Variables[CHANGE_EVENT_BUS.envVar], 'shared-bus');
    }
    assert.deepEqual(named.eventsGrants.map(({ role }) => role).sort(), [named.roleOf('worker'), named.roleOf('backfill')].sort());
    for (const { statement } of named.eventsGrants) {
      assert.equal(statement.Action, 'events:PutEvents');
      assert.equal(arn(statement.Resource), 'arn:aws:events:eu-west-1:123456789012:event-bus/shared-bus');
    }
    assert.equal(named.rule.Properties.EventBusName, 'shared-bus');
    assert.equal(named.json.Outputs.ChangeEventBusName?.Value, 'shared-bus');
    const [grant] = eventsStatements(named.keyStatements);
    assert.equal(arn(grant!.Condition!.ArnLike!['aws:SourceArn']), 'arn:aws:events:eu-west-1:123456789012:rule/shared-bus/*');
    // The default bus's rules have no bus in their ARN.
    const [onDefault] = eventsStatements(synthesize({ eventBusName: 'default' }).keyStatements);
    assert.equal(arn(onDefault!.Condition!.ArnLike!['aws:SourceArn']), 'arn:aws:events:eu-west-1:123456789012:rule/*');
  });

  it('holds the functions to it on the stand-ins\' IAM: PutEvents on the bus, nothing else there, and no other bus', async () => {
    const { template, functions } = synthesizedStack();
    const localBus = 'local-change-events';
    const access = new AccessEvaluator(localAccessModel(template, functions, { [CHANGE_EVENT_BUS.envVar]: localBus }));
    const { partition, region, accountId } = LOCAL_ACCOUNT;
    const busArn = (name: string) => `arn:${partition}:events:${region}:${accountId}:event-bus/${name}`;
    const allowed = async (name: 'verifier' | 'worker' | 'backfill', action: string, resource: string) =>
      (await access.decide(functionCredentials(name).accessKeyId, [{ action, resource }])).allowed;
    for (const name of ['worker', 'backfill'] as const) {
      assert.equal(await allowed(name, 'events:PutEvents', busArn(localBus)), true, `${name} publishes`);
      assert.equal(await allowed(name, 'events:PutRule', `arn:${partition}:events:${region}:${accountId}:rule/${localBus}/any`), false, `${name} adds no rules`);
      assert.equal(await allowed(name, 'events:PutEvents', busArn('default')), false, `${name} publishes on no other bus`);
    }
    assert.equal(await allowed('verifier', 'events:PutEvents', busArn(localBus)), false, 'the verifier publishes nothing');
  });
});
