#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { VitalWebhookPipelineStack } from '../lib/vital-webhook-pipeline-stack';

/**
 * The CDK app. Settings come from context (`npx cdk deploy -c expectedTeamId=...`), so a deployment
 * needs no code change; see the README for every key.
 */
const app = new App();
const context = (key: string): string | undefined => app.node.tryGetContext(key);
const number = (key: string): number | undefined => (context(key) === undefined ? undefined : Number(context(key)));

new VitalWebhookPipelineStack(app, context('stackName') ?? 'VitalWebhookPipeline', {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  signingSecretName: context('signingSecretName'),
  vitalApiKeySecretName: context('vitalApiKeySecretName'),
  vitalEnvironment: context('vitalEnvironment') as 'production' | 'sandbox' | undefined,
  vitalRegion: context('vitalRegion') as 'us' | 'eu' | undefined,
  expectedTeamId: context('expectedTeamId'),
  deliveryDedupeDays: number('deliveryDedupeDays'),
  rawBodyRetentionDays: number('rawBodyRetentionDays'),
  backfillConcurrency: number('backfillConcurrency'),
});
