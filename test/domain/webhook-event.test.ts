import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { catalogueEventTypes, classifyEventType, RESOURCES } from '../../functions/domain/catalogue';
import { exampleEvent, UnknownExampleTypeError } from '../../functions/domain/example-events';
import { interpretEvent, MalformedEnvelopeError } from '../../functions/domain/webhook-event';
import { caught } from '../support/signing';

const officialExamples = join(import.meta.dirname, '../../../shared/vital-examples/events');

describe('interpreting webhook bodies', () => {
  it('classifies all 60 catalogue resources into the right action', () => {
    assert.equal(RESOURCES.size, 60);
    for (const resource of RESOURCES.values()) {
      for (const change of ['created', 'updated']) {
        const action = interpretEvent(JSON.stringify(exampleEvent(`daily.data.${resource.name}.${change}`)));
        const expected = resource.kind === 'stream' ? 'workout_stream' : resource.kind;
        assert.equal(action.kind, expected, `${resource.name}.${change}`);
      }
      assert.equal(interpretEvent(JSON.stringify(exampleEvent(`historical.data.${resource.name}.created`))).kind, 'historical');
    }
  });

  it('accepts every example the generator makes, deterministically', () => {
    for (const eventType of catalogueEventTypes()) {
      assert.deepEqual(exampleEvent(eventType, { seed: 4 }), exampleEvent(eventType, { seed: 4 }), eventType);
      interpretEvent(JSON.stringify(exampleEvent(eventType, { seed: 4 })));
    }
    assert.ok(caught(() => exampleEvent('labtest.order.created')) instanceof UnknownExampleTypeError);
  });

  it('gives created and updated of one resource the same identities and different values', () => {
    const created = exampleEvent('daily.data.sleep.created');
    const updated = exampleEvent('daily.data.sleep.updated');
    assert.equal(created.data.id, updated.data.id);
    assert.ok((updated.data.updated_at as string) > (created.data.updated_at as string));
    const hr = (type: string) => exampleEvent(type).data.data as { timestamp: string; value: number }[];
    assert.deepEqual(hr('daily.data.heartrate.created').map((s) => s.timestamp), hr('daily.data.heartrate.updated').map((s) => s.timestamp));
    assert.notDeepEqual(hr('daily.data.heartrate.created').map((s) => s.value), hr('daily.data.heartrate.updated').map((s) => s.value));
  });

  it('accepts legacy shapes: source with only slug, samples with only start, connection with only source', () => {
    const batch = interpretEvent(JSON.stringify({
      event_type: 'daily.data.steps.created', user_id: 'u', team_id: 't', client_user_id: null,
      data: { source: { slug: 'apple_health_kit', name: 'Apple HealthKit' }, data: [{ start: '2023-05-16T10:00:00+00:00', end: '2023-05-16T11:00:00+00:00', value: 3, type: null }] },
    }));
    assert.deepEqual(batch.kind === 'timeseries' && batch.source, { provider: 'apple_health_kit', type: 'unknown' });
    const connection = interpretEvent(JSON.stringify({
      event_type: 'provider.connection.created', user_id: 'u', team_id: 't', client_user_id: 'c', data: { source: { slug: 'freestyle_libre_ble' } },
    }));
    assert.equal(connection.kind === 'connection' && connection.provider, 'freestyle_libre_ble');
  });

  it('treats unknown, out-of-scope and device types as normal outcomes, even without a full envelope', () => {
    assert.equal(interpretEvent('{"event_type":"something.new"}').kind, 'unknown');
    assert.equal(interpretEvent('{"event_type":"daily.data.not_a_resource.created"}').kind, 'unknown');
    assert.equal(interpretEvent('{"event_type":"lab_report.parsed"}').kind, 'out_of_scope');
    assert.equal(interpretEvent('{"event_type":"daily.timeseries.hypnogram.created"}').kind, 'out_of_scope');
    assert.equal(interpretEvent(JSON.stringify(exampleEvent('provider.device.updated'))).kind, 'device');
    assert.equal(classifyEventType('provider.device.created').family, 'device');
  });

  it('marks another team\'s events for quarantine when a team is expected', () => {
    const event = exampleEvent('daily.data.sleep.created', { teamId: 'other' });
    const body = JSON.stringify(event);
    // With the user it names, so that an erasure finds the quarantined body and the worker checks the erasure.
    assert.deepEqual(interpretEvent(body, { expectedTeamId: 'ours' }), { kind: 'foreign_team', teamId: 'other', userId: event.user_id });
    assert.equal(interpretEvent(body).kind, 'summary');
  });

  it('rejects malformed bodies with paths and codes, never values', () => {
    const noId = exampleEvent('daily.data.sleep.created') as { data: Record<string, unknown> };
    delete noId.data.id;
    const error = caught(() => interpretEvent(JSON.stringify(noId)));
    assert.ok(error instanceof MalformedEnvelopeError);
    assert.deepEqual(error.issues, ['data.id: invalid_type']);
    const badTime = exampleEvent('daily.data.heartrate.created');
    (badTime.data.data as Record<string, unknown>[])[0]!.timestamp = 'yesterday';
    assert.ok(caught(() => interpretEvent(JSON.stringify(badTime))) instanceof MalformedEnvelopeError);
    assert.ok(caught(() => interpretEvent('not json')) instanceof MalformedEnvelopeError);
    assert.ok(caught(() => interpretEvent('{"data":{}}')) instanceof MalformedEnvelopeError);
    const noUser = { ...exampleEvent('daily.data.sleep.created'), user_id: undefined };
    assert.ok(caught(() => interpretEvent(JSON.stringify(noUser))) instanceof MalformedEnvelopeError);
  });

  it('accepts every official Vital example, variants included', (context) => {
    if (!existsSync(officialExamples)) {
      context.skip(`official examples not found at ${officialExamples} (they live outside the repository)`);
      return;
    }
    const files = [
      ...readdirSync(officialExamples).filter((name) => name.endsWith('.json') && name !== 'manifest.json'),
      ...readdirSync(join(officialExamples, 'variants')).filter((name) => name !== 'manifest.json').map((name) => join('variants', name)),
    ];
    assert.ok(files.length >= 180, `${files.length} example files`);
    for (const file of files) {
      const action = interpretEvent(readFileSync(join(officialExamples, file), 'utf8'));
      assert.ok(!['unknown', 'out_of_scope', 'foreign_team'].includes(action.kind), `${file} is acted on (${action.kind})`);
    }
  });
});
