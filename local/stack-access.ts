import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import type { PipelineFunctionName } from '../functions/shared/resources';
import { VitalWebhookPipelineStack } from '../lib/vital-webhook-pipeline-stack';
import { AccessEvaluator } from './aws-access';
import type { RunningStandIn } from './stand-ins';
import type { CfnManagedPolicy } from 'aws-cdk-lib/aws-iam';
import { LOCAL_ACCOUNT, localAccessModel, type OperatorPolicyName, type SynthesizedTemplate } from './synthesized-access';

/**
 * The stack's IAM, held over the stand-ins: the app is synthesized in process (no bundling) with
 * the stand-ins' account and region, and its policies are resolved onto the local resources.
 */

interface SynthesizedStack {
  readonly template: SynthesizedTemplate;
  readonly functions: Readonly<Record<PipelineFunctionName, string>>;
  /** Logical ids of the policies the stack makes for operators' roles. */
  readonly operatorPolicies: Readonly<Record<OperatorPolicyName, string>>;
}

let synthesized: SynthesizedStack | undefined;

/**
 * Names a file holding `synthesizedStack()` as JSON, written once per test run by the suite's global
 * setup (test/support/global-setup.ts), so that each test process does not synthesize it again.
 */
export const SYNTHESIZED_STACK_FILE_VARIABLE = 'PIPELINE_SYNTHESIZED_STACK_FILE';

/** The stack as `cdk deploy` would create it (default settings), synthesized once per process (or per test run). */
export function synthesizedStack(): SynthesizedStack {
  const file = process.env[SYNTHESIZED_STACK_FILE_VARIABLE];
  if (!synthesized && file) synthesized = JSON.parse(readFileSync(file, 'utf8')) as SynthesizedStack;
  if (!synthesized) {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new VitalWebhookPipelineStack(app, 'VitalWebhookPipeline', {
      env: { account: LOCAL_ACCOUNT.accountId, region: LOCAL_ACCOUNT.region },
    });
    const functions = Object.fromEntries(
      Object.entries(stack.functions).map(([name, fn]) => [name, stack.getLogicalId(fn.node.defaultChild as CfnFunction)]),
    ) as Record<PipelineFunctionName, string>;
    const operatorPolicies = { erase: stack.getLogicalId(stack.erasePolicy.node.defaultChild as CfnManagedPolicy) };
    synthesized = { template: Template.fromStack(stack).toJSON() as SynthesizedTemplate, functions, operatorPolicies };
  }
  return synthesized;
}

/**
 * From now on, every request a function (or an operator role of the stack) signs with
 * `functionCredentials` to these stand-ins is evaluated against the stack's policies, resolved onto
 * the resources `localEnvironment` names (the handlers' environment variables). Call again when the
 * resources change (a test case's new queue).
 */
export function enforceStackAccess(standIns: readonly RunningStandIn[], localEnvironment: Readonly<Record<string, string>>): AccessEvaluator {
  const { template, functions, operatorPolicies } = synthesizedStack();
  const access = new AccessEvaluator(localAccessModel(template, functions, localEnvironment, operatorPolicies));
  for (const standIn of standIns) standIn.enforce(access);
  return access;
}
