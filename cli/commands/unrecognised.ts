import { S3ClaimCheckStore } from '../../functions/adapters/claim-check-store';
import { SqsEventQueue } from '../../functions/adapters/event-queue';
import { S3KeptBodyStore, type KeptBody } from '../../functions/adapters/kept-body-store';
import { classifyEventType } from '../../functions/domain/catalogue';
import { BUCKET } from '../../functions/shared/resources';
import type { PipelineTarget } from '../target';

/**
 * `inspect unrecognised` and `replay --unrecognised`: the bodies the worker kept because their event
 * type was unknown to the catalogue it ran with (`unrecognised/` in the raw-body bucket). A replay
 * queues each body whose type the catalogue of this CLI knows, with its original svix-id, svix
 * timestamp, event type and receive time (the verifier's attributes, through the verifier's own
 * queue adapter), and removes the kept object only once the message is sent: a failure midway
 * duplicates, never loses, and a duplicate changes nothing (every write is idempotent by version).
 */

/** A kept body, described without its payload. */
export interface UnrecognisedEvent {
  readonly svix_id: string;
  readonly event_type: string;
  readonly received_at: string;
  readonly bytes: number;
}

/** What a replay did with each kept body it was asked about. */
export interface UnrecognisedReplay {
  readonly replayed: UnrecognisedEvent[];
  /** Kept bodies whose type the catalogue still does not know; they stay kept. */
  readonly skipped: UnrecognisedEvent[];
  /** `--svix-id`s with no kept body. */
  readonly not_found: string[];
}

/** Whether the catalogue knows an event type: anything it classifies, as data, notice or deliberately ignored. */
export const catalogueKnows = (eventType: string): boolean => classifyEventType(eventType).family !== 'unknown';

const storeOf = (target: PipelineTarget) => new S3KeptBodyStore(target.s3, target.bucket, BUCKET.prefixes.unrecognised);

const describe = (kept: KeptBody): UnrecognisedEvent => ({
  svix_id: kept.svixId,
  event_type: kept.eventType,
  received_at: kept.receivedAt,
  bytes: kept.bytes,
});

/** Lists the kept bodies of unrecognised event types, oldest receipt first. */
export async function inspectUnrecognised(target: PipelineTarget): Promise<UnrecognisedEvent[]> {
  return (await storeOf(target).list()).map(describe);
}

/** Replays the kept bodies (all, or those of `svixIds`) whose type `knows` (the catalogue, by default) now knows. */
export async function replayUnrecognised(
  target: PipelineTarget,
  options: { svixIds?: readonly string[]; knows?: (eventType: string) => boolean; onProgress?: (text: string) => void } = {},
): Promise<UnrecognisedReplay> {
  const knows = options.knows ?? catalogueKnows;
  const wanted = options.svixIds && options.svixIds.length > 0 ? new Set(options.svixIds) : undefined;
  const store = storeOf(target);
  const chosen = (await store.list()).filter((kept) => !wanted || wanted.has(kept.svixId));
  const queue = new SqsEventQueue({
    sqs: target.sqs,
    queueUrl: target.queues.events.url,
    claimChecks: new S3ClaimCheckStore(target.s3, target.bucket),
    claimCheckPrefix: BUCKET.prefixes.claimChecks,
  });
  const result: UnrecognisedReplay = {
    replayed: [],
    skipped: [],
    not_found: [...(wanted ?? [])].filter((svixId) => !chosen.some((kept) => kept.svixId === svixId)),
  };
  for (const kept of chosen) {
    if (!knows(kept.eventType)) {
      result.skipped.push(describe(kept));
      continue;
    }
    const { svixId, svixTimestamp, eventType, receivedAt } = kept;
    await queue.enqueue({ svixId, svixTimestamp, eventType, receivedAt, body: await store.body(kept.key) });
    await store.remove(kept.key);
    result.replayed.push(describe(kept));
    options.onProgress?.(`Replaying unrecognised events: ${result.replayed.length}`);
  }
  return result;
}
