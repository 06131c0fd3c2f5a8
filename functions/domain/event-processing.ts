import type { BackfillRequests } from './backfill-requests';
import { recordsChanged, type ChangeEvent, type ChangeEventPublisher } from './change-events';
import { erasedBy, type ErasureRegister } from './erasure';
import { orderKeyOfDelivery, type OrderKey } from './message-order';
import type { QueuedEventAttributes } from './queued-event';
import { providerNamedBy, sampleInstant, summaryTime } from './record-identity';
import type { DeliveryOrigin, RecordStore } from './record-store';
import { interpretEvent, type ConnectionChange, type EventAction, type InterpretOptions } from './webhook-event';

/**
 * What the worker does with one verified delivery, independent of AWS: interpret the body, then
 * store, notify, keep the body aside or merely count. There is no delivery-level dedupe: every effect is
 * idempotent by construction, ordered by what it carries (summaries by `updated_at`, samples and
 * connection states by message order, backfill runs by the notice's svix-id, kept bodies by
 * their key), so a redelivery, a Svix recovery weeks later or a DLQ replay, after a failure half way
 * or not, applies nothing twice and is reported as such (`deliveryResult`). A delivery of an erased
 * user whose message was created before the erasure is dropped before anything is applied
 * (`erasedBy`, functions/domain/erasure.ts).
 */

/** Keeps the current state of each (user, provider) connection. */
export interface ConnectionStore {
  /**
   * Applies a change unless one of its order or newer is already stored; says which happened
   * (`unchanged`: this very change is stored already).
   */
  applyChange(input: {
    readonly userId: string;
    readonly provider: string;
    readonly order: OrderKey;
    readonly change: ConnectionChange;
    readonly origin?: DeliveryOrigin;
  }): Promise<'applied' | 'stale' | 'unchanged'>;
}

/**
 * Why a body is kept aside instead of processed: it is another team's event (quarantine), or its
 * event type is one the catalogue does not know (yet: Vital adds types without notice).
 */
export type KeptReason = 'foreign_team' | 'unrecognised_event_type';

/** Keeps bodies the worker does not process, verbatim and with their delivery facts, for inspection and replay. */
export interface KeptBodyStore {
  /** Idempotent: every delivery of one message is kept as the same object, labelled with the user its envelope names. */
  keep(delivery: Delivery, reason: KeptReason, userId?: string): Promise<void>;
}

/** Everything outside the domain that processing writes to. */
export interface ProcessingPorts {
  readonly records: RecordStore;
  readonly connections: ConnectionStore;
  readonly backfillRequests: BackfillRequests;
  /** Another team's events. */
  readonly quarantine: KeptBodyStore;
  /** Events of a type the catalogue does not know, kept for a replay once it does. */
  readonly unrecognised: KeptBodyStore;
  /** Where the change events of each delivery go (`change-events.ts`). */
  readonly changes: ChangeEventPublisher;
  /** The erasures in force: a delivery of an erased user created before the erasure is dropped. */
  readonly erasures: ErasureRegister;
}

/** A verified delivery with its body in hand (claim checks already resolved), and the facts it was queued with. */
export interface Delivery extends QueuedEventAttributes {
  readonly body: string;
}

/** What processing a delivery did, with no payload in it (it is logged). */
export interface DeliveryOutcome {
  readonly action: EventAction['kind'];
  readonly resource?: string;
  readonly userId?: string;
  /** Records (summaries, samples, connection states) made current. */
  readonly written: number;
  /** Of `written`, summaries and samples that were not stored before (absent for other kinds). */
  readonly created?: number;
  /** Records kept out because a newer version is stored. */
  readonly stale: number;
  /** Records found stored at this very version already. */
  readonly unchanged: number;
  /** Dropped, nothing applied: its user was erased after Svix created the message. */
  readonly erased?: true;
}

/**
 * A delivery's result in one word: it was dropped because its user was `erased`; it `wrote`
 * something; or it was entirely `stale` (newer data is stored); or it was a `duplicate` (every
 * record it carries is stored at its version already: a redelivery, recovery or replay); or it
 * carried no records (`none`: notices, unknown, device, out-of-scope and quarantined events).
 */
export function deliveryResult(outcome: DeliveryOutcome): 'erased' | 'wrote' | 'stale' | 'duplicate' | 'none' {
  if (outcome.erased) return 'erased';
  if (outcome.written > 0) return 'wrote';
  if (outcome.stale > 0) return 'stale';
  if (outcome.unchanged > 0) return 'duplicate';
  return 'none';
}

const NOTHING = { written: 0, stale: 0, unchanged: 0 } as const;

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
  // Device and out-of-scope events name no user and store nothing: no erasure to look up.
  const userId = 'userId' in action ? action.userId : undefined;
  if (userId !== undefined && erasedBy(await ports.erasures.latest(userId), order)) {
    // Acknowledged, nothing stored, nothing published: the user was erased after this message was created.
    return { action: action.kind, userId, erased: true, ...NOTHING };
  }
  const outcome = await applyAction(action, delivery, order, ports);
  // Published before the message is acknowledged: if this throws, the delivery is retried, finds
  // its records stored (`unchanged`) and publishes again.
  const changes = changeEventsOf(action, outcome, delivery);
  if (changes.length > 0) await ports.changes.publish(changes);
  return outcome;
}

async function applyAction(action: EventAction, delivery: Delivery, order: OrderKey, ports: ProcessingPorts): Promise<DeliveryOutcome> {
  const origin = { svixId: delivery.svixId, receivedAt: delivery.receivedAt };
  switch (action.kind) {
    case 'summary': {
      const outcome = await ports.records.storeSummary({ ...action, order, origin });
      return { action: action.kind, resource: action.resource, userId: action.userId, ...outcome };
    }
    case 'timeseries': {
      const outcome = await ports.records.storeTimeseries({ ...action, order, origin });
      return { action: action.kind, resource: action.resource, userId: action.userId, ...outcome };
    }
    case 'workout_stream': {
      const { userId, provider, workoutId, object } = action;
      const outcome = await ports.records.storeSummary({ userId, resource: 'workout_stream', object, order, origin });
      // A stale notice was superseded by a newer one, which asked already. An unchanged one (a
      // redelivery) asks again: the first attempt may have stored the notice and then failed to ask.
      if (outcome.stale === 0) await ports.backfillRequests.requestWorkoutStream({ userId, provider, workoutId, order });
      return { action: action.kind, resource: 'workout_stream', userId, ...outcome };
    }
    case 'historical': {
      const { userId, provider, resource, startDate, endDate } = action;
      // Idempotent by run: the run is the notice's svix-id, so a redelivered notice finds its run queued or started.
      await ports.backfillRequests.requestHistorical({ userId, provider, resource, startDate, endDate, svixId: delivery.svixId, order });
      return { action: action.kind, resource, userId, ...NOTHING };
    }
    case 'connection': {
      const { kind, userId, provider, ...change } = action;
      const result = await ports.connections.applyChange({ userId, provider, order, change, origin });
      return {
        action: kind,
        userId,
        written: result === 'applied' ? 1 : 0,
        stale: result === 'stale' ? 1 : 0,
        unchanged: result === 'unchanged' ? 1 : 0,
      };
    }
    case 'foreign_team':
      // Idempotent by key: the kept copy's key is the svix-id, so a redelivery overwrites it with the same body.
      await ports.quarantine.keep(delivery, 'foreign_team', action.userId);
      return { action: action.kind, ...NOTHING };
    case 'unknown':
      // Kept, not dropped: once the catalogue knows the type, `vital-pipeline replay --unrecognised` queues it again.
      await ports.unrecognised.keep(delivery, 'unrecognised_event_type', action.userId);
      return { action: action.kind, ...NOTHING };
    case 'device':
    case 'out_of_scope':
      return { action: action.kind, ...NOTHING };
  }
}

/**
 * The change events of one processed delivery: records of a resource written, or found written by
 * this very message (a redelivery publishes again); a connection state; a body kept aside. None for
 * a delivery that changed nothing of its own (all stale), or carried no data.
 */
export function changeEventsOf(action: EventAction, outcome: DeliveryOutcome, delivery: Delivery): ChangeEvent[] {
  const svixId = delivery.svixId;
  switch (action.kind) {
    case 'summary':
    case 'timeseries': {
      const time = action.kind === 'summary' ? summaryTime(action.resource, action.object) : undefined;
      return recordsChanged(
        {
          user_id: action.userId,
          ...(action.clientUserId ? { client_user_id: action.clientUserId } : {}),
          ...providerAndSourceType(action),
          resource: action.resource,
          kind: action.kind,
          svix_id: svixId,
        },
        { ...outcome, created: outcome.created ?? 0 },
        action.kind === 'summary' ? (time ? [time] : []) : action.samples.map(sampleInstant),
      );
    }
    case 'connection':
      if (outcome.written + outcome.unchanged === 0) return [];
      return [{
        detailType: 'Connection Changed',
        detail: {
          user_id: action.userId,
          ...(action.clientUserId ? { client_user_id: action.clientUserId } : {}),
          provider: action.provider,
          change: action.change,
          ...(action.change === 'error' ? { error_type: action.errorType } : {}),
          result: outcome.written > 0 ? 'applied' : 'unchanged',
          svix_id: svixId,
        },
      }];
    case 'unknown':
    case 'foreign_team':
      return [{
        detailType: 'Events Held Back',
        detail: {
          reason: action.kind === 'unknown' ? 'unrecognised_event_type' : 'foreign_team',
          count: 1,
          event_type: delivery.eventType,
          svix_id: svixId,
        },
      }];
    default:
      // A workout-stream notice, a historical notice: their stream and run publish when they are fetched.
      return [];
  }
}

/** The provider and source type of a batch; a summary's provider when its `source` names one. */
function providerAndSourceType(action: Extract<EventAction, { kind: 'summary' | 'timeseries' }>): { provider?: string; source_type?: string } {
  if (action.kind === 'timeseries') return { provider: action.source.provider, source_type: action.source.type };
  const { source } = action.object;
  const provider = typeof source === 'object' && source !== null && !Array.isArray(source) ? providerNamedBy(source) : undefined;
  return provider ? { provider } : {};
}
