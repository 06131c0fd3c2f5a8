import type { BackfillStatus } from './backfill-job';
import { orderKeyAfterSecondOf, orderKeyOfFetch, type OrderKey } from './message-order';

/**
 * Erasure of one user's data (`vital-pipeline erase`, docs/erasure.md). The invariant: once a user's
 * erasure is recorded at time T (its tombstone), nothing created before T is stored for that user
 * again. The worker drops every delivery of the user whose message Svix created before T (a
 * redelivery, a Svix recovery, a DLQ replay, a late historical notice); the backfill stops every
 * run queued before T at its next page, and every workout-stream job of a notice created before T.
 * A message Vital creates after T is stored as usual. What was stored before the tombstone, and
 * what an invocation that read the register just before it was written stores after it, is removed
 * by the erasure's two sweeps, the second once every such invocation has ended (`settledAt`).
 */

/** A recorded erasure: whose, and the instant before which nothing of theirs is stored again. */
export interface Erasure {
  readonly userId: string;
  /** T, ISO 8601. */
  readonly erasedAt: string;
}

/** Where erasures are recorded (the erasures table in AWS). */
export interface ErasureRegister {
  /** The user's newest erasure, the one in force (a later erasure has a later T); undefined for none. */
  latest(userId: string): Promise<Erasure | undefined>;
}

/** Whether `order` (a message's, a fetch's or a run's) comes before the erasure: nothing of it may be stored. */
export function erasedBy(erasure: Erasure | undefined, order: OrderKey): boolean {
  return erasure !== undefined && order < orderKeyAfterSecondOf(Date.parse(erasure.erasedAt));
}

/**
 * A backfill run's place in message order: its notice's (a resync's is the time it was asked for);
 * for a run recorded before runs kept one, the time it was queued.
 */
export const orderOfRun = (run: Pick<BackfillStatus, 'runOrder' | 'queuedAt'>): OrderKey =>
  run.runOrder ?? orderKeyOfFetch(Date.parse(run.queuedAt));

/**
 * A register that reads each user's erasure once for its own life: the worker makes one per
 * invocation, so a batch holding several deliveries of one user costs one read. This is as safe as
 * a read per delivery: an answer read before a tombstone was written is used only within the
 * invocation that read it, which ends within its function's timeout, and the erasure's second sweep
 * waits for that.
 */
export function readOncePerUser(register: ErasureRegister): ErasureRegister {
  const read = new Map<string, Promise<Erasure | undefined>>();
  return {
    latest: (userId) => {
      let erasure = read.get(userId);
      if (!erasure) {
        erasure = register.latest(userId);
        read.set(userId, erasure);
      }
      return erasure;
    },
  };
}

/** Where a user's data is kept, in the order an erasure sweeps them; the receipt counts what each held. */
export const ERASED_STORES = [
  'summaries',
  'timeseries',
  'connections',
  'backfills',
  'workout_streams',
  'held_back',
  'claim_checks',
  'quarantine',
  'unrecognised',
] as const;

export type ErasedStore = (typeof ERASED_STORES)[number];

/** An erasure as recorded: its tombstone and its receipt. Who, when, by whom and how much: no health data. */
export interface ErasureRecord extends Erasure {
  /** `erasing` until both sweeps are done: a run that finds it so resumes it, with the same T. */
  readonly state: 'erasing' | 'erased';
  /** Who ran it: the AWS caller identity's ARN, or the local user. */
  readonly erasedBy: string;
  /** What each store held of the user and was removed, over every run of this erasure: items, or objects (every version and delete marker of a versioned bucket). */
  readonly removed: Readonly<Record<ErasedStore, number>>;
  readonly finishedAt?: string;
}

/** Nothing removed yet. */
export const NOTHING_REMOVED: Readonly<Record<ErasedStore, number>> = Object.fromEntries(ERASED_STORES.map((store) => [store, 0])) as Record<ErasedStore, number>;

/**
 * When the second sweep may begin (epoch ms): once every invocation that may have read the
 * register before the tombstone was written has ended. Such an invocation began before the write,
 * hence before `writtenByMs` (an instant by which the tombstone is known to be written: when its
 * write returned, or when a later run read it), and Lambda stops it at its function's timeout: so
 * `writtenByMs` plus the longest consumer timeout (`consumerTimeoutsSeconds`, one per queue).
 */
export function settledAt(writtenByMs: number, consumerTimeoutsSeconds: readonly number[]): number {
  return writtenByMs + Math.max(...consumerTimeoutsSeconds) * 1000;
}
