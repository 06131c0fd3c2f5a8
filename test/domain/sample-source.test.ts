import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exampleEvent } from '../../functions/domain/example-events';
import { MissingProviderError, sampleSourceOf } from '../../functions/domain/record-identity';
import { interpretEvent } from '../../functions/domain/webhook-event';

/**
 * A sample's source is part of its identity, and it arrives two ways: in a webhook event's
 * `$.data.source`, and as a group's `source` in a backfilled Data Access API response. Both paths
 * use `sampleSourceOf`, so one sample has one key whichever way it came (once, the backfill kept an
 * empty type as '' where the webhook path said 'unknown', and never fell back to `slug`).
 */

/** The source the webhook path stores a heart-rate batch under, for a given `source` object. */
function viaWebhook(source: Record<string, unknown>) {
  const event = exampleEvent('daily.data.heartrate.created', { userId: 'user-source' });
  const body = { ...event, data: { ...(event.data as Record<string, unknown>), source } };
  const action = interpretEvent(JSON.stringify(body));
  assert.equal(action.kind, 'timeseries');
  return (action as { source: unknown }).source;
}

/** The source the backfill stores an API group under, when it asked the API for `provider`. */
const viaBackfill = (source: Record<string, unknown>, provider = 'oura') => sampleSourceOf(source, provider);

describe('sample source: one rule for webhooks and backfills', () => {
  const shapes: [string, Record<string, unknown>, { provider: string; type: string }][] = [
    ['provider and type', { provider: 'oura', type: 'ring' }, { provider: 'oura', type: 'ring' }],
    ['an empty type', { provider: 'oura', type: '' }, { provider: 'oura', type: 'unknown' }],
    ['a null type', { provider: 'oura', type: null }, { provider: 'oura', type: 'unknown' }],
    ['no type', { provider: 'oura' }, { provider: 'oura', type: 'unknown' }],
    ['only the deprecated slug', { slug: 'oura', type: 'ring' }, { provider: 'oura', type: 'ring' }],
  ];
  for (const [name, source, expected] of shapes) {
    it(`gives the same source both ways for ${name}`, () => {
      assert.deepEqual(viaWebhook(source), expected);
      assert.deepEqual(viaBackfill(source), expected);
    });
  }

  it('lets a backfilled group without any provider take the provider the run asked for; a webhook without one is refused', () => {
    assert.deepEqual(viaBackfill({ type: 'watch' }, 'garmin'), { provider: 'garmin', type: 'watch' });
    assert.throws(() => sampleSourceOf({ type: 'watch' }), MissingProviderError);
    // The webhook schema refuses it (the message waits in the DLQ for a replay after a fix).
    assert.throws(() => viaWebhook({ type: 'watch' }), /does not match its schema: data\.source/);
  });
});
