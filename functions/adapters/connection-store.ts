import { isConditionFailure } from './condition-failure';
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ConnectionStore } from '../domain/event-processing';
import type { OrderKey } from '../domain/message-order';
import { STORAGE_LAYOUT_VERSION, type DeliveryOrigin } from '../domain/record-store';
import type { ConnectionChange } from '../domain/webhook-event';

/** A connection as stored: the latest state by message order, with what its events announced. */
export interface StoredConnection {
  readonly userId: string;
  readonly provider: string;
  readonly status: 'connected' | 'error';
  /** Order key of the event that set this state. */
  readonly order: OrderKey;
  /** The delivery of the event that set this state. */
  readonly svixId?: string;
  readonly receivedAt?: string;
  /** `resource_availability` of the latest `created` event, as a native map exactly as received. */
  readonly resourceAvailability?: Record<string, unknown>;
  readonly externalUserId?: string;
  readonly lastErrorType?: string;
  readonly lastErrorMessage?: string;
  readonly lastErrorDetails?: string;
}

/**
 * Connections per (user, provider) on DynamoDB, in plain attributes (`resourceAvailability` a
 * native map, filterable with PartiQL). Each change is one conditional update on the event's order
 * key (`order < :order`), so an older event never overwrites a newer state, and a redelivered one
 * writes nothing and is reported `unchanged`. A newer error keeps the availability a connection
 * announced; a newer `created` (a reconnection) keeps the last error for reference, with the status
 * saying which is current.
 */
export class DynamoDbConnectionStore implements ConnectionStore {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async applyChange(input: {
    userId: string;
    provider: string;
    order: OrderKey;
    change: ConnectionChange;
    origin?: DeliveryOrigin;
  }): Promise<'applied' | 'stale' | 'unchanged'> {
    const { change, origin } = input;
    const values: Record<string, unknown> = { ':order': input.order, ':layout': STORAGE_LAYOUT_VERSION };
    const assignments = ['#order = :order', '#status = :status', 'layout = :layout'];
    if (origin) {
      assignments.push('svixId = :svixId', 'receivedAt = :receivedAt');
      values[':svixId'] = origin.svixId;
      values[':receivedAt'] = origin.receivedAt;
    }
    if (change.change === 'created') {
      values[':status'] = 'connected';
      if (change.resourceAvailability) {
        assignments.push('resourceAvailability = :availability');
        values[':availability'] = change.resourceAvailability;
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
          ConditionExpression: 'attribute_not_exists(#order) OR #order < :order',
          ExpressionAttributeNames: { '#order': 'order', '#status': 'status' },
          ExpressionAttributeValues: values,
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return 'applied';
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // This very change is stored already (a redelivery): nothing to do.
      return error.Item?.order?.S === input.order ? 'unchanged' : 'stale';
    }
  }

  /** The stored state of one connection, or `undefined`. */
  async get(userId: string, provider: string): Promise<StoredConnection | undefined> {
    const { Item } = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: { userId, provider } }));
    return Item as StoredConnection | undefined;
  }
}
