import { exampleEvent } from '../functions/domain/example-events';

/**
 * Webhook bodies for the benchmarks, from the project's own realistic examples: heart-rate batches
 * (1 Hz) of a chosen size. `test/support/signing.ts` signs them.
 */

/** A `daily.data.heartrate.created` body of `sampleCount` samples, one a second from `at`. */
export function heartRateEventBody(sampleCount: number, options: { readonly at?: string; readonly seed?: number } = {}): string {
  return JSON.stringify(exampleEvent('daily.data.heartrate.created', { sampleCount, sampleIntervalSeconds: 1, ...options }));
}

/** The heart-rate body whose length is closest to `bytes` (within half a sample). */
export function heartRateEventBodyOfSize(bytes: number): string {
  const oneSample = heartRateEventBody(1).length;
  const perSample = heartRateEventBody(2).length - oneSample;
  return heartRateEventBody(Math.max(1, 1 + Math.round((bytes - oneSample) / perSample)));
}
