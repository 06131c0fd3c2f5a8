/**
 * Webhook bodies for the benchmarks: Vital-shaped heart-rate batches of a chosen size. Generated rather
 * than read from files so that any size can be asked for; `test/support/signing.ts` signs them.
 */

/** One heart-rate sample as Vital sends it, 1 Hz from `start`. */
export function heartRateSample(start: Date, index: number): Record<string, unknown> {
  return {
    id: 1_000_000 + index,
    timestamp: new Date(start.getTime() + index * 1000).toISOString().replace('Z', '+00:00'),
    value: 60 + ((index * 7) % 40),
    unit: 'bpm',
    timezone_offset: 3600,
    type: null,
  };
}

/** A `daily.data.heartrate.created` body holding `sampleCount` samples. */
export function heartRateEventBody(sampleCount: number, start = new Date('2026-11-01T00:00:00Z')): string {
  return JSON.stringify({
    event_type: 'daily.data.heartrate.created',
    user_id: '4f0b9a0e-4c5c-4a55-9d0f-6f1a1b3c2d10',
    client_user_id: '01JDQ3W8Z6K5Y4X3V2T1S0R9Q8',
    team_id: '9a1c7e52-2b7d-4b8e-a2f4-0c3d5e6f7a8b',
    data: {
      user_id: '4f0b9a0e-4c5c-4a55-9d0f-6f1a1b3c2d10',
      source: { provider: 'oura', type: 'ring', app_id: null, device_id: 'ring-1', sport: null, workout_id: null },
      data: Array.from({ length: sampleCount }, (_, index) => heartRateSample(start, index)),
    },
  });
}

/** The heart-rate body whose length is closest to `bytes` (within half a sample). */
export function heartRateEventBodyOfSize(bytes: number): string {
  const perSample = heartRateEventBody(2).length - heartRateEventBody(1).length;
  const envelope = heartRateEventBody(0).length;
  return heartRateEventBody(Math.max(1, Math.round((bytes - envelope) / perSample)));
}
