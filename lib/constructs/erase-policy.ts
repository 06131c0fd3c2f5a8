import { Stack } from 'aws-cdk-lib';
import { ManagedPolicy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { BUCKET } from '../../functions/shared/resources';
import { acceptObjectPrefixGrant } from '../compliance';
import type { PipelineTables } from './pipeline-tables';

/**
 * What `vital-pipeline erase --stack` needs, and nothing else, as a customer managed policy the
 * operator attaches to the role they erase with (output `ErasePolicyArn`; docs/erasure.md). The
 * command runs with the operator's own credentials, so the grant is theirs, not a function's:
 *
 * - the data tables: Query a user's partitions, BatchWriteItem their deletion (no Scan, no GetItem,
 *   no PutItem: it reads no record and writes none);
 * - the erasures table: Query the user's newest erasure, PutItem a new one (the tombstone), UpdateItem
 *   its receipt;
 * - the raw-body bucket: its versioning and listings (a user's objects are found by prefix, or on the
 *   shared prefixes by each object's owner label), and deleting object versions, on the prefixes
 *   that hold user data only; reading objects (the owner label, or the body when it has none) only
 *   on the shared prefixes (`raw-bodies/`, `quarantine/`, `unrecognised/`);
 * - the stack's key, through DynamoDB and S3 only; and DescribeStacks of this stack, for its outputs.
 */
export class ErasePolicy extends Construct {
  readonly policy: ManagedPolicy;

  constructor(scope: Construct, id: string, props: { tables: PipelineTables['tables']; bucket: IBucket; encryptionKey: IKey }) {
    super(scope, id);
    const { tables, bucket, encryptionKey } = props;
    const stack = Stack.of(this);
    const objectsUnder = (prefixes: readonly string[]) => prefixes.map((prefix) => bucket.arnForObjects(`${prefix}*`));
    const sharedPrefixes = [BUCKET.prefixes.claimChecks, BUCKET.prefixes.quarantine, BUCKET.prefixes.unrecognised];
    const userPrefixes = [BUCKET.prefixes.workoutStreams, BUCKET.prefixes.heldBack];
    this.policy = new ManagedPolicy(this, 'Policy', {
      description: `Lets its holder run vital-pipeline erase --stack ${stack.stackName}: remove one user's data and record the erasure`,
      statements: [
        new PolicyStatement({
          sid: 'FindAndDeleteUserItems',
          actions: ['dynamodb:Query', 'dynamodb:BatchWriteItem'],
          resources: [tables.summaries, tables.timeseries, tables.connections, tables.backfills].map((table) => table.tableArn),
        }),
        new PolicyStatement({
          sid: 'RecordErasures',
          actions: ['dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
          resources: [tables.erasures.tableArn],
        }),
        new PolicyStatement({
          sid: 'ListRawBodies',
          // ListBucket serves a bucket whose versioning is off (the local stand-in); the stack's is versioned.
          actions: ['s3:GetBucketVersioning', 's3:ListBucketVersions', 's3:ListBucket'],
          resources: [bucket.bucketArn],
        }),
        new PolicyStatement({
          sid: 'ReadOwnersOfSharedBodies',
          actions: ['s3:GetObject', 's3:GetObjectVersion'],
          resources: objectsUnder(sharedPrefixes),
        }),
        new PolicyStatement({
          sid: 'DeleteUserObjects',
          actions: ['s3:DeleteObject', 's3:DeleteObjectVersion'],
          resources: objectsUnder([...sharedPrefixes, ...userPrefixes]),
        }),
        new PolicyStatement({
          sid: 'UseTheStackKeyThroughItsStores',
          // As for every command that reads and writes the stack's stores (docs/deploy.md).
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [encryptionKey.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': [`dynamodb.${stack.region}.amazonaws.com`, `s3.${stack.region}.amazonaws.com`] } },
        }),
        new PolicyStatement({
          sid: 'ReadTheStackOutputs',
          actions: ['cloudformation:DescribeStacks'],
          // The stack's own id (its ARN, ending in the id CloudFormation gave it): no wildcard.
          resources: [stack.stackId],
        }),
      ],
    });
    for (const prefix of [...sharedPrefixes, ...userPrefixes]) acceptObjectPrefixGrant(this.policy, bucket, prefix);
  }
}
