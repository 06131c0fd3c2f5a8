import { PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NOTHING_REMOVED, type Erasure, type ErasedStore, type ErasureRecord, type ErasureRegister } from '../domain/erasure';
import { STORAGE_LAYOUT_VERSION } from '../domain/record-store';

/**
 * Erasures in the erasures table: partition key `userId`, sort key `erasedAt` (T, ISO 8601, which
 * sorts as time), one item per erasure holding its receipt. A user's newest item is the tombstone
 * in force: the worker and the backfill read it with one strongly consistent Query of one item
 * (the cost of a GetItem), so a tombstone is seen by every read that begins after it was written.
 * The handlers only read; `vital-pipeline erase` writes.
 */
export class DynamoDbErasureRegister implements ErasureRegister {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async latest(userId: string): Promise<ErasureRecord | undefined> {
    const { Items = [] } = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'userId = :userId',
        ExpressionAttributeValues: { ':userId': userId },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    return Items[0] as ErasureRecord | undefined;
  }

  /** Records a new erasure (`erasing`, nothing removed yet): from now on it is the user's tombstone. */
  async begin(erasure: Erasure & { readonly erasedBy: string }): Promise<ErasureRecord> {
    const record: ErasureRecord = { ...erasure, state: 'erasing', removed: NOTHING_REMOVED };
    await this.documents.send(
      new PutCommand({ TableName: this.tableName, Item: { ...record, layout: STORAGE_LAYOUT_VERSION }, ConditionExpression: 'attribute_not_exists(userId)' }),
    );
    return record;
  }

  /** Adds what one sweep of a store removed to the receipt. */
  async count(erasure: Erasure, store: ErasedStore, removed: number): Promise<void> {
    if (removed === 0) return;
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { userId: erasure.userId, erasedAt: erasure.erasedAt },
        UpdateExpression: 'SET removed.#store = removed.#store + :removed',
        ExpressionAttributeNames: { '#store': store },
        ExpressionAttributeValues: { ':removed': removed },
      }),
    );
  }

  /** Marks the erasure done; resolves its receipt as stored. */
  async finish(erasure: Erasure, at: Date): Promise<ErasureRecord> {
    const { Attributes } = await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { userId: erasure.userId, erasedAt: erasure.erasedAt },
        UpdateExpression: 'SET #state = :erased, finishedAt = :at',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':erased': 'erased', ':at': at.toISOString() },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return Attributes as ErasureRecord;
  }
}
