import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidBackfillRangeError, normaliseRange } from '../../functions/domain/backfill-plan';
import { instantKey, requireInstantKey, UnreadableTimeError } from '../../functions/domain/record-identity';

/**
 * One strict time parser for every path: record versions and times, sample instants, and the
 * ranges of historical notices. What is not an ISO 8601 date or date-time as written is refused,
 * never rolled over or guessed at.
 */

describe('instantKey: the one time parser', () => {
  const accepted: [string, string][] = [
    ['2024-05-14T10:00:00+00:00', '2024-05-14T10:00:00.000000Z'],
    ['2024-05-14T10:00:00.123456789Z', '2024-05-14T10:00:00.123456Z'],
    ['2024-05-14T12:00:00+02:00', '2024-05-14T10:00:00.000000Z'],
    ['2024-05-14', '2024-05-14T00:00:00.000000Z'],
    ['2024-05-14T10:00:00', '2024-05-14T10:00:00.000000Z'],
    ['2024-02-29T23:59:59Z', '2024-02-29T23:59:59.000000Z'],
    ['2024-05-14T10:00:00+14:00', '2024-05-13T20:00:00.000000Z'],
  ];
  for (const [text, key] of accepted) {
    it(`reads ${text}`, () => assert.equal(instantKey(text), key));
  }

  const refused: [string, string][] = [
    ['2024-13-45', 'month 13 and day 45 (once rolled over into 2025-02-14)'],
    ['2023-02-29', 'a day February 2023 does not have'],
    ['2024-04-31T10:00:00Z', 'April 31st'],
    ['2024-05-14T24:00:00Z', 'hour 24'],
    ['2024-05-14T10:60:00Z', 'minute 60'],
    ['2024-05-14T10:00:60Z', 'second 60'],
    ['2024-05-14T10:00:00+15:00', 'an offset beyond ±14:00'],
    ['Jan 5 2024', 'a date in words (Date.parse would take it)'],
    ['1715680800', 'epoch seconds'],
    ['', 'an empty string'],
  ];
  for (const [text, what] of refused) {
    it(`refuses ${what}: ${JSON.stringify(text)}`, () => {
      assert.equal(instantKey(text), undefined);
      assert.throws(() => requireInstantKey(text, 'updated_at'), UnreadableTimeError);
    });
  }

  it('is the parser of historical ranges too: a range end it refuses is an invalid range, named without its value', () => {
    assert.deepEqual(normaliseRange('2024-05-14', '2024-05-01T00:00:00Z'), { startMs: Date.parse('2024-05-01T00:00:00Z'), endMs: Date.parse('2024-05-14T00:00:00Z') });
    for (const [text] of refused) {
      assert.throws(() => normaliseRange(text, '2024-05-14'), (error: Error) => error instanceof InvalidBackfillRangeError && error.message === 'start_date is not a date');
    }
  });
});
