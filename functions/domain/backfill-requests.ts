import type { OrderKey } from './message-order';

/**
 * The contract between the worker, which receives notifications, and the backfill function, which
 * fetches what they announce from the Data Access API.
 */

/** A `historical.data.{resource}.created` notification, normalised. */
export interface HistoricalNotice {
  readonly userId: string;
  readonly provider: string;
  readonly resource: string;
  /** As sent by Vital; the backfill planner normalises reversed ranges. */
  readonly startDate: string;
  readonly endDate: string;
  readonly svixId: string;
  /** The notice's place in message order: of two notices for one key, the newer one's run wins. */
  readonly order: OrderKey;
}

/** A `daily.data.workout_stream.*` notification: the stream of one workout is to be fetched. */
export interface WorkoutStreamNotice {
  readonly userId: string;
  readonly provider: string;
  readonly workoutId: string;
  readonly order: OrderKey;
}

export interface BackfillRequests {
  requestHistorical(notice: HistoricalNotice): Promise<void>;
  requestWorkoutStream(notice: WorkoutStreamNotice): Promise<void>;
}
