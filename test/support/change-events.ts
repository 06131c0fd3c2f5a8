import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EventBridgeChangePublisher } from '../../functions/adapters/change-event-publisher';
import { EVENTBRIDGE_CLIENT_SETTINGS } from '../../functions/adapters/eventbridge-client';
import { CHANGE_DETAIL_TYPES, detailSchemaFile } from '../../functions/domain/change-event-schemas';
import { CHANGE_EVENT_SOURCE, type ChangeDetailType } from '../../functions/domain/change-events';
import { startEventBridge, type DeliveredEvent, type RunningEventBridge } from '../../local/eventbridge-stand-in';
import { LOCAL_AWS } from '../../local/stand-ins';

const DOCS = path.join(import.meta.dirname, '..', '..', 'docs', 'events');

/** The JSON Schemas users read (docs/events/), compiled once: every event a test sees is checked against them. */
const validators: Map<string, ValidateFunction> = (() => {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  return new Map(
    CHANGE_DETAIL_TYPES.map((detailType) => [detailType, ajv.compile(JSON.parse(readFileSync(path.join(DOCS, detailSchemaFile(detailType)), 'utf8')))]),
  );
})();

/** Fails unless each event is one of ours and its detail matches the documented schema of its detail-type. */
export function assertDocumentedChangeEvents(events: readonly DeliveredEvent[]): void {
  for (const event of events) {
    assert.equal(event.source, CHANGE_EVENT_SOURCE);
    const validate = validators.get(event['detail-type']);
    assert.ok(validate, `no documented schema for detail-type ${event['detail-type']}`);
    assert.ok(validate(event.detail), `${event['detail-type']} breaks docs/events/${detailSchemaFile(event['detail-type'] as ChangeDetailType)}: ${JSON.stringify(validate.errors)}`);
  }
}

/** Change events published through the real adapter onto an EventBridge stand-in, kept for the test to read. */
export interface ChangeEventCapture {
  /** The pipeline's own publisher, sending to the stand-in. */
  readonly publisher: EventBridgeChangePublisher;
  readonly bus: RunningEventBridge;
  /** Every event accepted so far (each checked against its documented schema), optionally of one detail-type. */
  events(detailType?: ChangeDetailType): DeliveredEvent[];
  /** Forgets the events accepted so far. */
  clear(): void;
  close(): Promise<void>;
}

export async function startChangeEventCapture(): Promise<ChangeEventCapture> {
  const folder = await mkdtemp(path.join(os.tmpdir(), 'change-events-'));
  let accepted: DeliveredEvent[] = [];
  const bus = await startEventBridge({
    busName: 'test-changes',
    eventsFile: path.join(folder, 'change-events.jsonl'),
    onEvent: (event) => accepted.push(event),
  });
  const client = new EventBridgeClient({ ...EVENTBRIDGE_CLIENT_SETTINGS, endpoint: bus.endpoint, region: LOCAL_AWS.region, credentials: LOCAL_AWS.credentials });
  return {
    publisher: new EventBridgeChangePublisher({ eventBusName: bus.busName, client: async () => client }),
    bus,
    events(detailType) {
      assertDocumentedChangeEvents(accepted);
      return detailType ? accepted.filter((event) => event['detail-type'] === detailType) : [...accepted];
    },
    clear() {
      accepted = [];
    },
    async close() {
      client.destroy();
      await bus.stop();
      await rm(folder, { recursive: true, force: true });
    },
  };
}
