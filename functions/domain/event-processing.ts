import type { BackfillRequests } from './backfill-requests';
import { orderKeyOfDelivery, type OrderKey } from './message-order';
import type { RecordStore } from './record-store';
import { interpretEvent, type ConnectionChange, type EventAction, type InterpretOptions } from './webhook-event';

/**
 * What the worker does with one verified delivery, independent of AWS: interpret the body, then
 * store, notify, quarantine or merely count. Every step is idempotent, so a redelivery (after a
 * failure half way, or a Svix retry the delivery dedupe did not catch) is harmless.
 */

/** Keeps the current state of each (user, provider) connection. */
export interface ConnectionStore {
  /** Applies a change unless a newer one (by `order`) is already stored; says which happened. */
  applyChange(input: {
    readonly userId: string;
    readonly provider: string;
    readonly order: OrderKey;
    readonly change: ConnectionChange;
  }): Promise<'applied' | 'stale'>;
}

/** Keeps bodies that must not be processed (another team's events) for inspection. */
export interface QuarantineStore {
  quarantine(delivery: Delivery, reason: string): Promise<void>;
}

/** Everything outside the domain that processing writes to. */
export interface ProcessingPorts {
  readonly records: RecordStore;
  readonly connections: ConnectionStore;
  readonly backfillRequests: BackfillRequests;
  readonly quarantine: QuarantineStore;
}

/** A verified delivery with its body in hand (claim checks already resolved). */
export interface Delivery {
  readonly svixId: string;
  /** ISO 8601 time at which the verifier accepted it. */
  readonly receivedAt: string;
  readonly body: string;
}

/** What processing a delivery did; small and JSON-safe, as the delivery dedupe stores it. */
export interface DeliveryOutcome {
  readonly action: EventAction['kind'];
  readonly resource?: string;
  readonly userId?: string;
  /** Records (summaries, samples, connection states) made current. */
  readonly written: number;
  /** Records kept out because a newer version is stored. */
  readonly stale: number;
}

/**
 * Processes one delivery. Throws `MalformedEnvelopeError` for a body that breaks its schema and
 * whatever a port throws; both mean "not done", so the message is retried (and ends in the DLQ).
 */
export async function processDelivery(
  delivery: Delivery,
  ports: ProcessingPorts,
  options: InterpretOptions = {},
): Promise<DeliveryOutcome> {
  const action = interpretEvent(delivery.body, options);
  const order = orderKeyOfDelivery(delivery.svixId, Date.parse(delivery.receivedAt));
  switch (action.kind) {
    case 'summary': {
      const outcome = await ports.records.storeSummary({ ...action, order });
      return { action: action.kind, resource: action.resource, userId: action.userId, ...outcome };
    }
    case 'timeseries': {
      const outcome = await ports.records.storeTimeseries({ ...action, order });
      return { action: action.kind, resource: action.resource, userId: action.userId, ...outcome };
    }
    case 'workout_stream': {
      const { userId, provider, workoutId, object } = action;
      const outcome = await ports.records.storeSummary({ userId, resource: 'workout_stream', object, order });
      // A stale notice was superseded by a newer one, which asked already. An equal one is asked
      // again: the first attempt may have stored the notice and then failed to ask.
      if (outcome.stale === 0) await ports.backfillRequests.requestWorkoutStream({ userId, provider, workoutId, order });
      return { action: action.kind, resource: 'workout_stream', userId, ...outcome };
    }
    case 'historical': {
      const { userId, provider, resource, startDate, endDate } = action;
      await ports.backfillRequests.requestHistorical({ userId, provider, resource, startDate, endDate, svixId: delivery.svixId, order });
      return { action: action.kind, resource, userId, written: 0, stale: 0 };
    }
    case 'connection': {
      const { kind, userId, provider, ...change } = action;
      const result = await ports.connections.applyChange({ userId, provider, order, change });
      return { action: kind, userId, written: result === 'applied' ? 1 : 0, stale: result === 'stale' ? 1 : 0 };
    }
    case 'foreign_team':
      await ports.quarantine.quarantine(delivery, 'foreign_team');
      return { action: action.kind, written: 0, stale: 0 };
    case 'device':
    case 'unknown':
    case 'out_of_scope':
      return { action: action.kind, written: 0, stale: 0 };
  }
}
