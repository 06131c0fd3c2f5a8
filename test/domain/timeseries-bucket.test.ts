import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instantKey, sampleKey, summaryRecordIdentity } from '../../functions/domain/record-identity';
import {
  bucketSortKey,
  bucketStartOf,
  decodeBucket,
  encodeBucket,
  groupSamplesByBucket,
  mergeSamples,
  parseBucketSortKey,
} from '../../functions/domain/timeseries-bucket';

describe('record identity', () => {
  it('normalises instants across offsets, Z, fractions, dates and floating local times', () => {
    assert.equal(instantKey('2023-02-13T14:30:52+00:00'), '2023-02-13T14:30:52.000000Z');
    assert.equal(instantKey('2023-02-13T16:30:52+02:00'), '2023-02-13T14:30:52.000000Z');
    assert.equal(instantKey('2026-08-19T09:24:50.138229+00:00'), '2026-08-19T09:24:50.138229Z');
    assert.equal(instantKey('2023-02-27'), '2023-02-27T00:00:00.000000Z');
    assert.equal(instantKey('2023-02-27T12:31:24'), '2023-02-27T12:31:24.000000Z');
    assert.equal(instantKey('soon'), undefined);
  });

  it('keys samples by instant and type, with null and empty type alike', () => {
    const at = '2023-02-13T14:30:52+00:00';
    assert.notEqual(sampleKey({ timestamp: at, type: 'cholesterol/ldl' }), sampleKey({ timestamp: at, type: 'cholesterol/hdl' }));
    assert.equal(sampleKey({ timestamp: at, type: null }), sampleKey({ timestamp: at, type: '' }));
    assert.equal(sampleKey({ start: at }), sampleKey({ timestamp: '2023-02-13T14:30:52Z' }));
  });

  it('versions summaries by updated_at, streams and undated objects by message order (below any date)', () => {
    const dated = summaryRecordIdentity('sleep', { id: 'a', updated_at: '2023-02-28T01:22:38+00:00', bedtime_start: '2023-02-27T12:31:24+00:00' }, '1700000000.k');
    assert.deepEqual(dated, { id: 'a', version: '2023-02-28T01:22:38.000000Z', time: '2023-02-27T12:31:24.000000Z' });
    const stream = summaryRecordIdentity('workout_stream', { workout_id: 'w' }, '1700000000.k');
    assert.deepEqual(stream, { id: 'w', version: '1700000000.k' });
    assert.ok(stream.version < dated.version);
  });
});

describe('timeseries buckets', () => {
  const sample = (second: number, value: number, type?: string) => ({
    timestamp: `2024-05-14T08:${String(Math.floor(second / 60)).padStart(2, '0')}:${String(second % 60).padStart(2, '0')}+00:00`,
    value,
    unit: 'bpm',
    ...(type ? { type } : {}),
  });

  it('places samples in fixed windows and keys buckets time first', () => {
    assert.equal(bucketStartOf(instantKey('2024-05-14T08:07:59+00:00')!, 5 * 60_000), '2024-05-14T08:05Z');
    const groups = groupSamplesByBucket('heartrate', [sample(0, 1), sample(299, 2), sample(300, 3)]);
    assert.deepEqual([...groups.keys()], ['2024-05-14T08:00Z', '2024-05-14T08:05Z']);
    const sortKey = bucketSortKey('2024-05-14T08:00Z', { provider: 'oura', type: 'ring' });
    assert.equal(sortKey, '2024-05-14T08:00Z#oura#ring');
    assert.deepEqual(parseBucketSortKey(sortKey), { bucketStart: '2024-05-14T08:00Z', source: { provider: 'oura', type: 'ring' } });
  });

  it('lets the newer message win per sample, in either arrival order, and ignores exact redeliveries', () => {
    const older = [sample(0, 60), sample(1, 61)];
    const newer = [sample(1, 71), sample(2, 72)];
    const first = mergeSamples(undefined, newer, '0000000002.b');
    const second = mergeSamples(first.contents, older, '0000000001.a');
    assert.deepEqual([second.written, second.stale], [1, 1]);
    const values = (contents: typeof second.contents) => [...contents.values()].map((entry) => entry.sample.value).sort();
    assert.deepEqual(values(second.contents), [60, 71, 72]);
    const inOrder = mergeSamples(mergeSamples(undefined, older, '0000000001.a').contents, newer, '0000000002.b');
    assert.deepEqual(values(inOrder.contents), [60, 71, 72]);
    const again = mergeSamples(inOrder.contents, newer, '0000000002.b');
    assert.equal(again.changed, false);
  });

  it('keeps typed samples at one instant apart', () => {
    const merged = mergeSamples(undefined, [sample(0, 1, 'cholesterol/ldl'), sample(0, 2, 'cholesterol/hdl')], '1.a');
    assert.equal(merged.contents.size, 2);
  });

  it('round-trips through its gzip encoding, deterministically', () => {
    const contents = mergeSamples(mergeSamples(undefined, [sample(5, 1), sample(3, 2)], '1.a').contents, [sample(4, 9)], '2.b').contents;
    const encoded = encodeBucket(contents);
    assert.deepEqual(decodeBucket(encoded), contents);
    assert.deepEqual(encodeBucket(decodeBucket(encoded)), encoded);
  });
});
