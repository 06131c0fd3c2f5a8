import type { Context } from 'aws-lambda';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IdempotencyAlreadyInProgressError, IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { DeliveryOutcome } from '../domain/event-processing';

/** Default time a delivery record is kept: Svix retries for ~27.5 h and offers manual recovery later. */
export const DEFAULT_DELIVERY_DEDUPE_DAYS = 7;

/** The outcome of a delivery, and whether it was a duplicate answered from the dedupe record. */
export type DedupedOutcome = DeliveryOutcome & { readonly duplicate: boolean };

/**
 * Another invocation is processing a copy of this delivery right now. That copy's own message stays
 * in the queue until it succeeds (SQS redelivers it if it fails or dies), so this copy adds nothing
 * and can be acknowledged.
 */
export class DeliveryInProgressError extends Error {}

/** Runs the processing of each `svix-id` to completion once; a later delivery gets the stored outcome. */
export interface DeliveryDedupe {
  once(svixId: string, process: () => Promise<DeliveryOutcome>, context?: Context): Promise<DedupedOutcome>;
}

export interface PowertoolsDeliveryDedupeOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly expiresAfterDays?: number;
  /** Milliseconds a processing may take when no Lambda context says it (the function timeout). */
  readonly defaultRemainingMs: number;
}

/**
 * Delivery-level dedupe on `svix-id` with Powertools Idempotency on the deliveries table. Its
 * protocol is conditional writes only, never a read before a write: a conditional put of an
 * `INPROGRESS` record (fails if a live record exists, returning it), the processing, then an update to
 * `COMPLETED` with the outcome. When the processing throws, the in-progress record is deleted, so a
 * failure never looks done and the retry processes again. When the process dies without the delete
 * (timeout, crash), the record's `in_progress_expiration` (now + the remaining invocation time)
 * lets the retry in once that time has passed. A concurrent duplicate while one is in progress gets
 * `DeliveryInProgressError`.
 */
export class PowertoolsDeliveryDedupe implements DeliveryDedupe {
  private readonly config: IdempotencyConfig;
  private readonly run: (key: { svixId: string }, process: () => Promise<DeliveryOutcome>) => Promise<DedupedOutcome>;

  constructor(private readonly options: PowertoolsDeliveryDedupeOptions) {
    this.config = new IdempotencyConfig({
      eventKeyJmesPath: 'svixId',
      expiresAfterSeconds: Math.round((options.expiresAfterDays ?? DEFAULT_DELIVERY_DEDUPE_DAYS) * 86_400),
      throwOnNoIdempotencyKey: true,
      // Called only when the outcome comes from a stored record, i.e. for a duplicate delivery.
      responseHook: (response) => ({ ...(response as object), duplicate: true }),
    });
    const persistenceStore = new DynamoDBPersistenceLayer({ tableName: options.tableName, awsSdkV3Client: options.client });
    this.run = makeIdempotent(
      async (_key: { svixId: string }, process: () => Promise<DeliveryOutcome>): Promise<DedupedOutcome> => ({
        ...(await process()),
        duplicate: false,
      }),
      // A fixed prefix instead of the function name: a redeployed function keeps its dedupe records.
      { persistenceStore, config: this.config, keyPrefix: 'delivery', dataIndexArgument: 0 },
    );
  }

  async once(svixId: string, process: () => Promise<DeliveryOutcome>, context?: Context): Promise<DedupedOutcome> {
    const deadline = Date.now() + this.options.defaultRemainingMs;
    this.config.registerLambdaContext(
      context ?? ({ getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 1) } as unknown as Context),
    );
    try {
      return await this.run({ svixId }, process);
    } catch (error) {
      if (error instanceof IdempotencyAlreadyInProgressError) throw new DeliveryInProgressError(`delivery ${svixId} is being processed by another invocation`);
      throw error;
    }
  }
}
