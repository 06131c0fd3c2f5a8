import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, Billing, TableEncryptionV2, TableV2, type Attribute } from 'aws-cdk-lib/aws-dynamodb';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { TABLES, type KeyAttribute, type TableDefinition } from '../../functions/shared/resources';

const attribute = (key: KeyAttribute): Attribute => ({
  name: key.name,
  type: { S: AttributeType.STRING, N: AttributeType.NUMBER, B: AttributeType.BINARY }[key.type],
});

/** Builds one table from its shared definition: on-demand, point-in-time recovery, KMS. */
function tableFrom(scope: Construct, definition: TableDefinition, encryptionKey: IKey, removalPolicy: RemovalPolicy): TableV2 {
  return new TableV2(scope, definition.id, {
    partitionKey: attribute(definition.partitionKey),
    sortKey: definition.sortKey ? attribute(definition.sortKey) : undefined,
    localSecondaryIndexes: definition.localSecondaryIndexes?.map((index) => ({
      indexName: index.indexName,
      sortKey: attribute(index.sortKey),
    })),
    billing: Billing.onDemand(),
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    encryption: TableEncryptionV2.customerManagedKey(encryptionKey),
    deletionProtection: removalPolicy !== RemovalPolicy.DESTROY,
    removalPolicy,
  });
}

/** Every table of the pipeline, built from `TABLES`. */
export class PipelineTables extends Construct {
  readonly tables: { readonly [K in keyof typeof TABLES]: TableV2 };

  private readonly encryptionKey: IKey;

  constructor(scope: Construct, id: string, props: { encryptionKey: IKey; removalPolicy: RemovalPolicy }) {
    super(scope, id);
    this.encryptionKey = props.encryptionKey;
    this.tables = Object.fromEntries(
      Object.entries(TABLES).map(([name, definition]) => [
        name,
        tableFrom(this, definition, props.encryptionKey, props.removalPolicy),
      ]),
    ) as PipelineTables['tables'];
  }

  /**
   * The item operations the handlers' stores use, on the named tables, and the key that encrypts
   * them. Not DeleteItem (no handler deletes a record), Scan, BatchWriteItem or stream reads, which
   * `grantReadWriteData` would add.
   */
  grantRecordAccess(grantee: IGrantable, ...names: (keyof typeof TABLES)[]): void {
    for (const name of names) {
      this.tables[name].grants.actions(grantee, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query');
    }
    this.encryptionKey.grantEncryptDecrypt(grantee);
  }

  /**
   * Reading a user's newest erasure (`DynamoDbErasureRegister.latest`, one Query), as the worker
   * and the backfill do before they store anything: nothing else of the erasures table.
   */
  grantErasureReads(grantee: IGrantable): void {
    this.tables.erasures.grants.actions(grantee, 'dynamodb:Query');
    this.encryptionKey.grantDecrypt(grantee);
  }

  /** The environment variables through which handlers find every table. */
  environment(): Record<string, string> {
    return Object.fromEntries(
      Object.entries(TABLES).map(([name, definition]) => [definition.envVar, this.tables[name as keyof typeof TABLES].tableName]),
    );
  }
}
