/** The names under which the pipeline logs and publishes metrics; the CDK alarms read the same ones. */
export const SERVICE_NAME = 'vital-webhook-pipeline';
export const METRICS_NAMESPACE = 'VitalWebhookPipeline';
