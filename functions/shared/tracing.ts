import type { Tracer } from '@aws-lambda-powertools/tracer';
import { SERVICE_NAME } from './service';

/**
 * Subsegments for each AWS SDK call of the worker and backfill functions, with Powertools Tracer, on
 * top of Lambda's active tracing (which traces every invocation either way). Opt-in: the stack sets
 * `POWERTOOLS_TRACE_ENABLED=true` only with `traceSdkCalls` (lib/vital-webhook-pipeline-stack.ts),
 * because the tracer's X-Ray SDK is the largest part of the worker's cold start (`npm run bench`,
 * docs/cost.md). Switched off, it is never loaded: no module, no cost. Switched on, it loads before
 * the first invocation's first call, and every client handed to `tracedClient` is captured then.
 */
const sdkCallsTraced = (): boolean => process.env.POWERTOOLS_TRACE_ENABLED === 'true';

interface CapturableClient {
  readonly middlewareStack: unknown;
}

let loaded: Tracer | undefined;
let loading: Promise<Tracer> | undefined;
/** Clients built before the tracer loaded; captured when it does. */
const waitingClients: CapturableClient[] = [];

function loadTracer(): Promise<Tracer> {
  return (loading ??= import('@aws-lambda-powertools/tracer').then(({ Tracer: PowertoolsTracer }) => {
    const tracer = new PowertoolsTracer({ serviceName: SERVICE_NAME });
    for (const client of waitingClients.splice(0)) tracer.captureAWSv3Client(client);
    loaded = tracer;
    return tracer;
  }));
}

/** Traces `client`'s calls when SDK-call tracing is on (from the next invocation's start, if the tracer is not loaded yet). */
export function tracedClient<Client extends CapturableClient>(client: Client): Client {
  if (!sdkCallsTraced()) return client;
  if (loaded) return loaded.captureAWSv3Client(client);
  waitingClients.push(client);
  return client;
}

/** Runs one invocation of a handler inside its own traced subsegment when SDK-call tracing is on. */
export async function traced<T>(name: string, invocation: () => Promise<T>): Promise<T> {
  if (!sdkCallsTraced()) return invocation();
  const tracer = await loadTracer();
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
