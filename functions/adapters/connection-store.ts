import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ConnectionStore } from '../domain/event-processing';
import type { OrderKey } from '../domain/message-order';
import type { ConnectionChange } from '../domain/webhook-event';

/** A connection as stored: the latest state by message order, with what its events announced. */
export interface StoredConnection {
  readonly userId: string;
  readonly provider: string;
  readonly status: 'connected' | 'error';
  /** Order key of the event that set this state. */
  readonly order: OrderKey;
  /** `resource_availability` of the latest `created` event, as JSON text exactly as received. */
  readonly resourceAvailability?: string;
  readonly externalUserId?: string;
  readonly lastErrorType?: string;
  readonly lastErrorMessage?: string;
  readonly lastErrorDetails?: string;
}

/**
 * Connections per (user, provider) on DynamoDB. Each change is one conditional update on the event's
 * order key (`order <= :order`), so an older event never overwrites a newer state and a redelivered
 * one re-applies harmlessly. A newer error keeps the availability a connection announced; a newer
 * `created` (a reconnection) keeps the last error for reference, with the status saying which is current.
 */
export class DynamoDbConnectionStore implements ConnectionStore {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async applyChange(input: { userId: string; provider: string; order: OrderKey; change: ConnectionChange }): Promise<'applied' | 'stale'> {
    const { change } = input;
    const values: Record<string, unknown> = { ':order': input.order };
    const assignments = ['#order = :order', '#status = :status'];
    if (change.change === 'created') {
      values[':status'] = 'connected';
      if (change.resourceAvailability) {
        assignments.push('resourceAvailability = :availability');
        values[':availability'] = JSON.stringify(change.resourceAvailability);
      }
      if (change.externalUserId) {
        assignments.push('externalUserId = :externalUserId');
        values[':externalUserId'] = change.externalUserId;
      }
    } else {
      values[':status'] = 'error';
      assignments.push('lastErrorType = :errorType', 'lastErrorMessage = :errorMessage', 'lastErrorDetails = :errorDetails');
      values[':errorType'] = change.errorType;
      values[':errorMessage'] = change.message ?? null;
      values[':errorDetails'] = change.errorDetails ?? null;
    }
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { userId: input.userId, provider: input.provider },
          UpdateExpression: `SET ${assignments.join(', ')}`,
          ConditionExpression: 'attribute_not_exists(#order) OR #order <= :order',
          ExpressionAttributeNames: { '#order': 'order', '#status': 'status' },
          ExpressionAttributeValues: values,
        }),
      );
      return 'applied';
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return 'stale';
      throw error;
    }
  }

  /** The stored state of one connection, or `undefined`. */
  async get(userId: string, provider: string): Promise<StoredConnection | undefined> {
    const { Item } = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: { userId, provider } }));
    return Item as StoredConnection | undefined;
  }
}
