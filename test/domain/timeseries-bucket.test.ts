import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compareVersions, instantKey, sampleKey, summaryRecordIdentity } from '../../functions/domain/record-identity';
import { newMessageId, orderKeyOfDelivery, orderKeyOfFetch } from '../../functions/domain/message-order';
import {
  bucketSampleKey,
  bucketSortKey,
  bucketStartOf,
  decodeBucket,
  encodeBucket,
  groupSamplesByBucket,
  mergeSamples,
  parseBucketSortKey,
  type BucketContents,
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
    assert.deepEqual(dated, { id: 'a', version: '2023-02-28T01:22:38.', time: '2023-02-27T12:31:24.000000Z' });
    const stream = summaryRecordIdentity('workout_stream', { workout_id: 'w' }, '1700000000.k');
    assert.deepEqual(stream, { id: 'w', version: '#1700000000.k' });
    assert.ok(compareVersions(stream.version, dated.version) < 0);
  });

  it('keeps a dated version above an undated one past 2034, when message order keys reach 2024000000', () => {
    const in2034 = orderKeyOfFetch(Date.parse('2034-03-01T00:00:00Z'));
    assert.ok(in2034.startsWith('2024'), in2034);
    const undated = summaryRecordIdentity('workout_stream', { workout_id: 'w' }, in2034).version;
    const dated = summaryRecordIdentity('sleep', { id: 'a', updated_at: '2024-05-14T10:00:00+00:00' }, in2034).version;
    assert.ok(compareVersions(undated, dated) < 0, `${undated} sorts below ${dated}`);
  });

  it('tells versions apart below a microsecond, and equal instants written differently alike', () => {
    const version = (updatedAt: string) => summaryRecordIdentity('sleep', { id: 'a', updated_at: updatedAt }, '1700000000.k').version;
    assert.ok(compareVersions(version('2024-05-14T10:00:00.1234567Z'), version('2024-05-14T10:00:00.123456Z')) > 0);
    assert.ok(compareVersions(version('2024-05-14T10:00:00.2Z'), version('2024-05-14T10:00:00.123456789Z')) > 0);
    assert.ok(compareVersions(version('2024-05-14T10:00:00.12Z'), version('2024-05-14T10:00:00.123Z')) < 0);
    assert.equal(compareVersions(version('2024-05-14T12:00:00.500+02:00'), version('2024-05-14T10:00:00.5Z')), 0);
    assert.equal(compareVersions(version('2024-05-14T10:00:00Z'), version('2024-05-14T10:00:00.000+00:00')), 0);
  });
});

describe('timeseries buckets', () => {
  const sample = (second: number, value: number, type?: string) => ({
    timestamp: `2024-05-14T08:${String(Math.floor(second / 60)).padStart(2, '0')}:${String(second % 60).padStart(2, '0')}+00:00`,
    value,
    unit: 'bpm',
    ...(type ? { type } : {}),
  });
  const DAY = '2024-05-14';
  const values = (contents: BucketContents) => [...contents.entries.values()].map((entry) => entry.sample.value).sort();

  it('places samples in fixed windows and keys buckets time first', () => {
    assert.equal(bucketStartOf(instantKey('2024-05-14T08:07:59+00:00')!, 5 * 60_000), '2024-05-14T08:05:00Z');
    assert.equal(bucketStartOf(instantKey('2024-05-14T08:07:59.9+00:00')!, 10_000), '2024-05-14T08:07:50Z');
    const groups = groupSamplesByBucket('heartrate', [sample(0, 1), sample(299, 2), sample(300, 3)]);
    assert.deepEqual([...groups.keys()], ['2024-05-14T08:00:00Z', '2024-05-14T08:05:00Z']);
    const sortKey = bucketSortKey('2024-05-14T08:00:00Z', { provider: 'oura', type: 'ring' });
    assert.equal(sortKey, '2024-05-14T08:00:00Z#oura#ring');
    assert.deepEqual(parseBucketSortKey(sortKey), { bucketStart: '2024-05-14T08:00:00Z', source: { provider: 'oura', type: 'ring' } });
  });

  it('keys samples in a bucket by UTC time of day and type, whatever the spelling of the instant', () => {
    assert.equal(bucketSampleKey({ timestamp: '2024-05-14T10:00:05+02:00' }), '08:00:05');
    assert.equal(bucketSampleKey({ timestamp: '2024-05-14T08:00:05.500Z', type: 'cholesterol/ldl' }), '08:00:05.5|cholesterol/ldl');
    assert.equal(bucketSampleKey({ start: '2024-05-14T08:00:05+00:00', type: null }), '08:00:05');
  });

  it('lets the newer message win per sample, in either arrival order, and finds exact redeliveries unchanged', () => {
    const older = [sample(0, 60), sample(1, 61)];
    const newer = [sample(1, 71), sample(2, 72)];
    const first = mergeSamples(undefined, newer, '0000000002.b');
    const second = mergeSamples(first.contents, older, '0000000001.a');
    assert.deepEqual([second.written, second.stale, second.unchanged], [1, 1, 0]);
    assert.deepEqual(values(second.contents), [60, 71, 72]);
    const inOrder = mergeSamples(mergeSamples(undefined, older, '0000000001.a').contents, newer, '0000000002.b');
    assert.deepEqual(values(inOrder.contents), [60, 71, 72]);
    const again = mergeSamples(inOrder.contents, newer, '0000000002.b');
    assert.deepEqual([again.written, again.stale, again.unchanged], [0, 0, 2]);
    // The same message read again with a corrected value repairs it.
    const repaired = mergeSamples(inOrder.contents, [sample(2, 73)], '0000000002.b');
    assert.deepEqual([repaired.written, repaired.unchanged], [1, 0]);
  });

  it('keeps typed samples at one instant apart', () => {
    const merged = mergeSamples(undefined, [sample(0, 1, 'cholesterol/ldl'), sample(0, 2, 'cholesterol/hdl')], '1.a');
    assert.equal(merged.contents.entries.size, 2);
  });

  it('stores values as plain attributes keyed by time of day, shared fields once, and names each sample\'s message', () => {
    const origin = { svixId: newMessageId(new Date('2024-05-14T08:06:00Z')), receivedAt: '2024-05-14T08:06:01.000Z' };
    const second = { svixId: newMessageId(new Date('2024-05-14T08:07:00Z')), receivedAt: '2024-05-14T08:07:01.000Z' };
    const orderOf = (delivery: typeof origin) => orderKeyOfDelivery(delivery.svixId, Date.parse(delivery.receivedAt));
    const first = mergeSamples(undefined, [sample(0, 60), sample(1, 61), sample(2, 62)], orderOf(origin), origin);
    const merged = mergeSamples(first.contents, [sample(1, 71)], orderOf(second), second);
    // Data fetched from the API names its fetch by order key.
    const fetched = mergeSamples(merged.contents, [sample(3, 63)], orderKeyOfFetch(Date.parse('2024-05-14T09:00:00Z')));
    const stored = encodeBucket(fetched.contents, DAY);
    assert.deepEqual(stored, {
      count: 4,
      shared: { unit: 'bpm' },
      timed: ['timestamp'],
      samples: { '08:00:00': 60, '08:00:01': 71, '08:00:02': 62, '08:00:03': 63 },
      messages: [
        { svix_id: origin.svixId, received_at: origin.receivedAt, sample_ranges: [['08:00:00', '08:00:00'], ['08:00:02', '08:00:02']] },
        { svix_id: second.svixId, received_at: second.receivedAt, sample_ranges: [['08:00:01', '08:00:01']] },
        { order: orderKeyOfFetch(Date.parse('2024-05-14T09:00:00Z')), sample_ranges: [['08:00:03', '08:00:03']] },
      ],
    });
    assert.deepEqual(decodeBucket(stored, DAY), fetched.contents);
    assert.deepEqual(encodeBucket(decodeBucket(stored, DAY), DAY), stored, 'deterministic');
  });

  it('gives back every field of every sample shape exactly as received', () => {
    const shapes = [
      // Interval samples without timestamp, with an end, and an extra field.
      { start: '2024-05-14T08:00:00+00:00', end: '2024-05-14T08:01:00+00:00', value: 12, unit: 'count', timezone_offset: 3600, type: null, tags: ['a'] },
      // Blood pressure: no value; another unit on this sample only; a Z timestamp; a deprecated id.
      { timestamp: '2024-05-14T08:00:01Z', systolic: 120, diastolic: 80, unit: 'mmHg', timezone_offset: 3600, type: null, id: 123456789 },
      // A note: a string value, a null timezone offset.
      { timestamp: '2024-05-14T08:00:02+00:00', value: 'Felt rested', unit: 'count', timezone_offset: null, type: null },
      // Typed samples at one instant, a floating local time, a value that is a map.
      { timestamp: '2024-05-14T08:00:03', value: 1.25, unit: 'count', timezone_offset: 3600, type: 'ldl' },
      { timestamp: '2024-05-14T08:00:03+00:00', value: { nested: [1, 2] }, unit: 'count', timezone_offset: 3600, type: 'hdl' },
    ];
    const merged = mergeSamples(undefined, shapes, '1.a');
    const stored = encodeBucket(merged.contents, DAY);
    assert.deepEqual(stored.shared, {}, 'no field is the same on every sample here: each keeps its own');
    assert.deepEqual(stored.timed, []);
    const decoded = [...decodeBucket(stored, DAY).entries.values()].map((entry) => entry.sample);
    assert.deepEqual(decoded.sort(byJson), [...shapes].sort(byJson));
  });
});

const byJson = (a: unknown, b: unknown): number => JSON.stringify(a).localeCompare(JSON.stringify(b));
