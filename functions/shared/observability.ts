import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { METRICS_NAMESPACE, SERVICE_NAME } from './service';

/**
 * The logger and metrics every handler shares. Logs are structured JSON keyed by delivery and event
 * type; by rule they never carry a payload, a sample value, a secret or a signature.
 */

export const logger = new Logger({ serviceName: SERVICE_NAME });
export const metrics = new Metrics({ serviceName: SERVICE_NAME, namespace: METRICS_NAMESPACE });

/** Flushes the invocation's metrics; an invocation that recorded none writes nothing (Powertools would warn). */
export function publishMetrics(): void {
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
}
