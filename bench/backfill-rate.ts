import { randomUUID } from 'node:crypto';
import { startHarness } from '../test/backfill/harness';
import { describePublished, publishedOf } from './change-events';
import { formatNumber, type Row } from './report';
import { median } from './timing';

/**
 * The backfill's request rate against a fake Vital API that answers 429 above R requests a second,
 * with the backfill's client configured for the same R, as a deployment would be. Four days of
 * heart rate (one sample a minute, 100 a page) runs through the real handler, event source mapping,
 * DynamoDB Local and fauxqs; every page the API served must end up stored.
 */

const ALLOWED_REQUESTS_PER_SECOND = 20;
const PAGE_SIZE = 100;
const SAMPLES_PER_DAY = 1440;
const RANGE = { start: '2024-05-01T00:00:00+00:00', end: '2024-05-05T00:00:00+00:00' } as const;

/** Pages of the expected samples (in time order, `PAGE_SIZE` a page) that lack at least one sample in the store. */
function lostPages(expected: ReadonlySet<string>, stored: ReadonlySet<string>): number {
  const ordered = [...expected].sort((a, b) => (a.split('|')[2]! < b.split('|')[2]! ? -1 : 1));
  const pages = new Set<number>();
  ordered.forEach((key, index) => {
    if (!stored.has(key)) pages.add(Math.floor(index / PAGE_SIZE));
  });
  return pages.size;
}

/** Request rate against R, and pages lost, for one heart-rate backfill. */
export async function run(): Promise<Row[]> {
  const harness = await startHarness({
    fake: { maxRequestsPerSecond: ALLOWED_REQUESTS_PER_SECOND, pageSize: PAGE_SIZE, samplesPerDay: SAMPLES_PER_DAY },
    maxRequestsPerSecond: ALLOWED_REQUESTS_PER_SECOND,
    // The deployed timeouts: one long run, as in AWS.
    timeScale: 1,
  });
  try {
    const stopBackfill = await harness.startBackfill();
    const key = { userId: randomUUID(), provider: 'oura', resource: 'heartrate' };
    const runId = await harness.historical(key, RANGE.start, RANGE.end);
    const status = await harness.waitForState(key, runId, ['completed', 'failed'], 120_000);
    await stopBackfill();
    if (status.state !== 'completed') throw new Error(`the backfill ended ${status.state}`);

    const { requestTimes, dataResponses, byStatus } = harness.fake.counters;
    const spanSeconds = (requestTimes.at(-1)! - requestTimes[0]!) / 1000;
    // n requests span n-1 intervals.
    const rate = (requestTimes.length - 1) / spanSeconds;
    const expected = harness.fake.identitiesFor(key.userId, key.provider, key.resource, RANGE.start, RANGE.end);
    const { samples } = await harness.records.readTimeseries(key.userId, key.resource, { from: RANGE.start, to: RANGE.end });
    const stored = new Set(samples.map(({ source, sample }) => `${source.provider}|${source.type}|${sample.timestamp}|${sample.type}`));
    const lost = lostPages(expected, stored);
    const rejected = byStatus.get(429) ?? 0;
    const medianGapMs = median(requestTimes.slice(1).map((at, index) => at - requestTimes[index]!));
    const published = publishedOf(harness.changes.events(), harness.changes.bus.calls.length);
    return [
      {
        figure: `backfill request rate, fake API allowing R = ${ALLOWED_REQUESTS_PER_SECOND}/s`,
        measured: { value: rate, unit: 'req/s' },
        baseline: { value: ALLOWED_REQUESTS_PER_SECOND, unit: 'req/s', label: 'R' },
        target: { on: 'ratio', bound: 'atLeast', limit: 0.8 },
        limitedBy:
          `${requestTimes.length} requests (${dataResponses} pages served, ${rejected} answered 429) in ${formatNumber(spanSeconds)} s; ` +
          `one job fetches each page while the one before it is stored (read-merge-write of its buckets, on DynamoDB Local) and checkpointed, ` +
          `so a request waits for the page two before it to be stored and checkpointed: median gap between requests ${formatNumber(medianGapMs)} ms against the ${1000 / ALLOWED_REQUESTS_PER_SECOND} ms R allows`,
      },
      {
        figure: 'backfill pages lost',
        measured: { value: lost, unit: 'pages' },
        baseline: { value: Math.ceil(expected.size / PAGE_SIZE), unit: 'pages', label: 'pages the API holds' },
        target: { on: 'value', bound: 'atMost', limit: 0 },
        limitedBy: `${stored.size} of ${expected.size} samples the API holds for the range are stored`,
      },
      {
        figure: 'change events billed per backfill page (PutEvents entries of 64 KB)',
        measured: { value: published.billed / dataResponses, unit: 'entries' },
        baseline: { value: 2 + 1 / dataResponses, unit: 'entries', label: 'records and progress per page, one finish per run' },
        target: { on: 'ratio', bound: 'atMost', limit: 1 },
        limitedBy:
          `${published.entries} entries (${describePublished(published)}) in ${published.calls} PutEvents calls for ${dataResponses} pages; ` +
          `the largest ${formatNumber(published.largest)} bytes (docs/cost.md)`,
      },
    ];
  } finally {
    await harness.stop();
  }
}
