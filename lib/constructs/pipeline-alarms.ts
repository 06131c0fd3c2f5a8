import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../../functions/shared/service';

export interface PipelineAlarmsProps {
  readonly topic: ITopic;
  readonly api: HttpApi;
  readonly verifier: IFunction;
  readonly worker: IFunction;
  readonly backfill: IFunction;
  readonly eventsQueue: IQueue;
  readonly eventsDeadLetterQueue: IQueue;
  readonly backfillDeadLetterQueue: IQueue;
  /** Alarm when no webhook arrived for this many hours (Svix disables an endpoint failing for 5 days). */
  readonly silenceHours: number;
  /** Alarm when more signatures than this fail within 5 minutes. */
  readonly signatureFailureThreshold: number;
}

/** A metric the handlers publish through Powertools (EMF), with the service dimension Powertools adds. */
function pipelineMetric(metricName: string, dimensions: Record<string, string> = {}, period = Duration.minutes(5)): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: SERVICE_NAME, ...dimensions },
    statistic: 'Sum',
    period,
  });
}

/**
 * The alarms an operator of a health-data pipeline needs, all sent to one SNS topic, and a dashboard
 * of the same signals. Each alarm names what it means in its description.
 */
export class PipelineAlarms extends Construct {
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: PipelineAlarmsProps) {
    super(scope, id);
    const alarm = (name: string, description: string, metric: IMetric, threshold: number, options: {
      comparison?: ComparisonOperator; missing?: TreatMissingData; evaluationPeriods?: number;
    } = {}): void => {
      const created = new Alarm(this, name, {
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods: options.evaluationPeriods ?? 1,
        comparisonOperator: options.comparison ?? ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: options.missing ?? TreatMissingData.NOT_BREACHING,
      });
      created.addAlarmAction(new SnsAction(props.topic));
      created.addOkAction(new SnsAction(props.topic));
      this.alarms.push(created);
    };

    const fiveMinutes = { period: Duration.minutes(5) };
    alarm('EventsDeadLetters', 'Events failed 5 times and wait in the DLQ: inspect, fix, then replay them',
      props.eventsDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ ...fiveMinutes, statistic: 'Maximum' }), 0);
    alarm('BackfillDeadLetters', 'Backfill jobs failed 5 times and wait in the backfill DLQ',
      props.backfillDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ ...fiveMinutes, statistic: 'Maximum' }), 0);
    alarm('EventsBacklogAge', 'The oldest queued event is over 15 minutes old: the worker is failing or throttled',
      props.eventsQueue.metricApproximateAgeOfOldestMessage({ ...fiveMinutes, statistic: 'Maximum' }), 15 * 60);
    alarm('VerifierErrors', 'The verifier function is failing', props.verifier.metricErrors(fiveMinutes), 0);
    alarm('WorkerErrors', 'The worker function is failing (whole invocations, not single records)', props.worker.metricErrors(fiveMinutes), 0);
    alarm('BackfillErrors', 'The backfill function is failing', props.backfill.metricErrors(fiveMinutes), 0);
    alarm('Verifier5xx', 'The webhook endpoint answered 5xx: Vital will retry, but events are delayed',
      props.api.metricServerError({ ...fiveMinutes, statistic: 'Sum' }), 0);
    alarm('SignatureFailures', 'Many requests with bad signatures: a wrong or rotated secret, or someone probing the endpoint',
      pipelineMetric('Rejected', { reason: 'invalid_signature' }), props.signatureFailureThreshold);
    alarm('BackfillsFailed', 'A backfill job failed: see the backfills table for its last error',
      pipelineMetric('BackfillFailures'), 0);
    alarm('BackfillsWaitingForApiKey', 'A backfill is waiting for the Vital API key: store it with vital-pipeline secrets set --stack <name> --api-key-only; the backfill goes on by itself',
      pipelineMetric('BackfillWaitingForApiKey'), 0);
    alarm('ChangeEventsNotPublished', 'Backfill progress or completion could not be published as change events after retries: consumers missed them; the backfills table holds the current status',
      pipelineMetric('ChangeEventsNotPublished'), 0);
    alarm('UnrecognisedEvents', 'Vital sent an event type this deployment does not know: see vital-pipeline inspect unrecognised; replay once the pipeline is updated',
      pipelineMetric('UnknownEvents'), 0);
    // Verified and queued deliveries, not requests: forged or unsigned traffic must not keep it quiet.
    alarm('NoWebhooks', `No verified webhook arrived for ${props.silenceHours} hours: has Svix disabled the endpoint, or the signing secret changed?`,
      pipelineMetric('Enqueued', {}, Duration.hours(1)), 1, {
        comparison: ComparisonOperator.LESS_THAN_THRESHOLD,
        missing: TreatMissingData.BREACHING,
        evaluationPeriods: props.silenceHours,
      });

    const received = pipelineMetric('WebhooksReceived');
    const enqueued = pipelineMetric('Enqueued');
    this.dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.days(1) });
    this.dashboard.addWidgets(
      new TextWidget({ markdown: '# Vital webhook pipeline\nIngress, processing, backfills. Alarms go to the stack\'s alarm topic.', width: 24, height: 2 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({ title: 'Webhooks: received, enqueued, rejected', left: [received, enqueued, pipelineMetric('Rejected', { reason: 'invalid_signature' }), pipelineMetric('Rejected', { reason: 'timestamp_out_of_tolerance' })], width: 12 }),
      new GraphWidget({ title: 'Delivery lag (ms)', left: [new Metric({ namespace: METRICS_NAMESPACE, metricName: 'DeliveryLag', dimensionsMap: { service: SERVICE_NAME }, statistic: 'p99' })], width: 12 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({ title: 'Records written and skipped', left: [
        ...['SummaryRecordsWritten', 'TimeseriesSamplesWritten', 'WorkoutStreamsRecorded', 'ConnectionsWritten'].map((name) => pipelineMetric(name)),
        pipelineMetric('DuplicateDeliveries'),
        pipelineMetric('StaleVersionsIgnored'),
      ], width: 12 }),
      new GraphWidget({ title: 'Unknown, out-of-scope and quarantined events', left: ['UnknownEvents', 'OutOfScopeEvents', 'QuarantinedEvents'].map((name) => pipelineMetric(name)), width: 12 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({ title: 'Queues: backlog and dead letters', left: [
        props.eventsQueue.metricApproximateNumberOfMessagesVisible(), props.eventsDeadLetterQueue.metricApproximateNumberOfMessagesVisible(), props.backfillDeadLetterQueue.metricApproximateNumberOfMessagesVisible(),
      ], right: [props.eventsQueue.metricApproximateAgeOfOldestMessage()], width: 12 }),
      new GraphWidget({ title: 'Function errors and error rate', left: [props.verifier, props.worker, props.backfill].map((fn) => fn.metricErrors()), right: [
        new MathExpression({ expression: '100 * errors / MAX([errors, invocations])', usingMetrics: { errors: props.worker.metricErrors(), invocations: props.worker.metricInvocations() }, label: 'worker error %' }),
      ], width: 12 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({ title: 'Backfills: pages, records, retries, failures, held back, streams missing', left: ['BackfillPages', 'BackfillRecords', 'BackfillRetries', 'BackfillFailures', 'BackfillWaitingForApiKey', 'BackfillRecordsHeldBack', 'BackfillWorkoutStreamsMissing'].map((name) => pipelineMetric(name)), width: 24 }),
    );
  }
}
