import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CHANGE_DETAIL_TYPES, detailJsonSchema, detailSchemaFile } from '../../functions/domain/change-event-schemas';
import { CHANGE_EVENT_SOURCE } from '../../functions/domain/change-events';
import type { DeliveredEvent } from '../../local/eventbridge-stand-in';
import { assertDocumentedChangeEvents } from '../support/change-events';

const DOCS = path.join(import.meta.dirname, '..', '..', 'docs', 'events');

const event = (detailType: string, detail: Record<string, unknown>): DeliveredEvent => ({
  version: '0', id: 'id', 'detail-type': detailType, source: CHANGE_EVENT_SOURCE, account: '000000000000', time: '2026-01-01T00:00:00Z', region: 'us-east-1', resources: [], detail,
});

describe('change event schemas (docs/events/)', () => {
  it('are the schemas the pipeline publishes by, one file per detail-type and no other (npm run docs:events writes them)', async () => {
    for (const detailType of CHANGE_DETAIL_TYPES) {
      const written = JSON.parse(await readFile(path.join(DOCS, detailSchemaFile(detailType)), 'utf8'));
      assert.deepEqual(written, detailJsonSchema(detailType), `docs/events/${detailSchemaFile(detailType)} is out of date: run npm run docs:events`);
    }
    const files = (await readdir(DOCS)).filter((file) => file.endsWith('.schema.json')).sort();
    assert.deepEqual(files, CHANGE_DETAIL_TYPES.map(detailSchemaFile).sort());
  });

  it('admit no field beyond the documented ones, so no value can ride along, and no unknown detail-type', () => {
    const changed = {
      user_id: 'u', resource: 'heartrate', kind: 'timeseries', records: { created: 1, updated: 0, unchanged: 0 }, svix_id: 'msg_1',
    };
    assertDocumentedChangeEvents([event('Records Changed', changed)]);
    assert.throws(() => assertDocumentedChangeEvents([event('Records Changed', { ...changed, value: 63 })]), /additionalProperties/);
    assert.throws(() => assertDocumentedChangeEvents([event('Records Changed', { ...changed, records: { created: 1, updated: 0, unchanged: 0, value: 63 } })]), /additionalProperties/);
    assert.throws(() => assertDocumentedChangeEvents([event('Records Changed', { ...changed, time_range: { from: '2024-05-14', to: '2024-05-14' } })]), /pattern/);
    assert.throws(() => assertDocumentedChangeEvents([event('Samples Changed', changed)]), /no documented schema/);
  });
});
