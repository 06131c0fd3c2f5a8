/**
 * Why a delivery failed, noted by the worker each time processing it throws, so that `vital-pipeline
 * inspect dlq` can say why a dead letter is there and after how many attempts, without anyone
 * searching the logs. A note names the error, never a payload value (as the worker's log does).
 */
export interface DeliveryFailure {
  /** The delivery's svix-id; absent when the queue message could not even be decoded. */
  readonly svixId?: string;
  /** The SQS message id, which a dead letter keeps. */
  readonly messageId: string;
  readonly eventType?: string;
  /** The receive that failed, 1-based: the 5th is the last before the dead-letter queue. */
  readonly attempt: number;
  /** `ErrorName: message`. */
  readonly reason: string;
  readonly failedAt: string;
}

/** Keeps the latest failure of each delivery (kept as long as a dead letter is). */
export interface DeliveryFailureLog {
  record(failure: DeliveryFailure): Promise<void>;
}

/**
 * The one name of a delivery's failure note: its svix-id when known (every attempt and every
 * replay of one delivery updates one note), else the SQS message id.
 */
export function failureNoteName(failure: Pick<DeliveryFailure, 'svixId' | 'messageId'>): string {
  return failure.svixId ? `svix-${encodeURIComponent(failure.svixId)}` : `message-${encodeURIComponent(failure.messageId)}`;
}
