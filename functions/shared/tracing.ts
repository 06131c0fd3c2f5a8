import { Tracer } from '@aws-lambda-powertools/tracer';
import { SERVICE_NAME } from './service';

/**
 * X-Ray tracing for the worker and backfill functions: a subsegment per invocation, cold starts
 * annotated, and every AWS SDK call traced. The verifier does without it: the tracer's X-Ray SDK
 * would triple the verifier's bundle, which has a size budget (Lambda's active tracing still records
 * each verifier invocation). Outside Lambda the tracer is off, so local runs and tests emit nothing.
 */
export const tracer = new Tracer({ serviceName: SERVICE_NAME });

/** Runs one invocation of a handler inside its own traced subsegment. */
export async function traced<T>(name: string, invocation: () => Promise<T>): Promise<T> {
  const parent = tracer.getSegment();
  const subsegment = parent?.addNewSubsegment(`## ${name}`);
  if (subsegment) tracer.setSegment(subsegment);
  tracer.annotateColdStart();
  try {
    return await invocation();
  } catch (error) {
    subsegment?.addError(error as Error);
    throw error;
  } finally {
    subsegment?.close();
    if (parent) tracer.setSegment(parent);
  }
}
