#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks } from 'cdk-nag';
import { VitalWebhookPipelineStack } from '../lib/vital-webhook-pipeline-stack';

/**
 * The CDK app. Settings come from context (`npx cdk deploy -c expectedTeamId=...`), so a deployment
 * needs no code change; see the README for every key.
 */
const app = new App();
// Health data: every synth is checked against the AWS Solutions and HIPAA Security rule packs, and
// fails on any finding not accepted, with its reason, in lib/compliance.ts.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new HIPAASecurityChecks(app));
const context = (key: string): string | undefined => app.node.tryGetContext(key);
const number = (key: string): number | undefined => (context(key) === undefined ? undefined : Number(context(key)));
const flag = (key: string): boolean | undefined => (context(key) === undefined ? undefined : String(context(key)) !== 'false');

new VitalWebhookPipelineStack(app, context('stackName') ?? 'VitalWebhookPipeline', {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  signingSecretName: context('signingSecretName'),
  vitalApiKeySecretName: context('vitalApiKeySecretName'),
  vitalEnvironment: context('vitalEnvironment') as 'production' | 'sandbox' | undefined,
  vitalRegion: context('vitalRegion') as 'us' | 'eu' | undefined,
  expectedTeamId: context('expectedTeamId'),
  rawBodyRetentionDays: number('rawBodyRetentionDays'),
  backfillConcurrency: number('backfillConcurrency'),
  silenceAlarmHours: number('silenceAlarmHours'),
  eventBusName: context('eventBusName'),
  tracing: flag('tracing'),
  traceSdkCalls: flag('traceSdkCalls'),
});
