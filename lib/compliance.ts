import { Stack, Validations } from 'aws-cdk-lib';
import type { CfnBucket, IBucket } from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';

/**
 * The cdk-nag findings (AwsSolutions and HIPAA Security packs) this stack accepts, each on the one
 * resource it concerns and with the reason it is accepted there. Everything else the packs report
 * fails `cdk synth` and the tests, so a new wildcard or a new resource is reported, not hidden by an
 * acknowledgement made for something else.
 */

const accept = (construct: IConstruct, id: string, reason: string) => Validations.of(construct).acknowledge({ id, reason });

/** Findings every pipeline function and its role carry by construction. */
export function acceptFunctionFindings(fn: IConstruct, role: IConstruct, options: { readonly tracing: boolean }): void {
  const keyGrant = 'CDK grants on the stack\'s own customer-managed key (for its queues, tables, bucket and secrets) use this action wildcard; the resource is that one key.';
  accept(role, 'AwsSolutions-IAM5[Action::kms:ReEncrypt*]', keyGrant);
  accept(role, 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]', keyGrant);
  if (options.tracing) {
    accept(role, 'AwsSolutions-IAM5[Resource::*]', 'X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level permissions.');
  }
  accept(role, 'HIPAA.Security-IAMNoInlinePolicy', 'The role and its policy belong to this function alone, generated from its grants; the tests hold the function to them on the stand-ins.');
  accept(fn, 'HIPAA.Security-LambdaConcurrency', 'Concurrency is bounded by API Gateway throttling and the SQS event source maximum concurrency; reserved concurrency fails to deploy in new accounts whose limit is 10.');
  accept(fn, 'HIPAA.Security-LambdaDLQ', 'Invoked synchronously by API Gateway or by an SQS event source mapping whose queue has its own dead-letter queue; a function DLQ serves only asynchronous invocations, which it never gets.');
  accept(fn, 'HIPAA.Security-LambdaInsideVPC', 'It reaches only AWS service endpoints and the Vital API over TLS; a VPC would add NAT cost and no protection for this traffic.');
}

/** A grant on the objects under one prefix of a bucket (`grantee`: the role): the prefix is the narrowest resource there is. */
export function acceptObjectPrefixGrant(grantee: IConstruct, bucket: IBucket, prefix: string): void {
  const logicalId = Stack.of(bucket).getLogicalId(bucket.node.defaultChild as CfnBucket);
  accept(grantee, `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>/${prefix}*]`, 'Scoped to one key prefix of the bucket: objects are named per delivery or workout, so the prefix is the narrowest resource.');
}

/** kms:Decrypt on any key (`grantee`: the role) for a secret given by name, whose key is unknown at synth time. */
export function acceptNamedSecretDecrypt(grantee: IConstruct): void {
  accept(grantee, 'AwsSolutions-IAM5[Resource::*]', 'A secret given by name may use a key unknown at synth time: kms:Decrypt names no key but holds only through Secrets Manager (kms:ViaService) for that one secret (kms:EncryptionContext:SecretARN).');
}

/** A secret the stack creates as a placeholder for a value Vital issues. */
export function acceptPlaceholderSecretFindings(secret: IConstruct): void {
  accept(secret, 'AwsSolutions-SMG4', 'The value is issued by Vital (the webhook signing secret or the team API key); it is rotated in Vital, then stored here with `vital-pipeline secrets set`.');
  accept(secret, 'HIPAA.Security-SecretsManagerRotationEnabled', 'The value is issued by Vital and rotated there; Secrets Manager cannot rotate it itself.');
}

/** A bucket of the stack: replication is the owner's decision. */
export function acceptBucketFindings(bucket: IConstruct): void {
  accept(bucket, 'HIPAA.Security-S3BucketReplicationEnabled', 'Cross-region replication is a per-organisation decision (data residency of health data); the bucket is versioned so it can be enabled.');
}

/** The bucket that receives the raw-body bucket's server access logs. */
export function acceptAccessLogBucketFindings(bucket: IConstruct): void {
  acceptBucketFindings(bucket);
  accept(bucket, 'AwsSolutions-S1', 'This is the access-log bucket; logging it into itself would loop.');
  accept(bucket, 'HIPAA.Security-S3BucketLoggingEnabled', 'This is the access-log bucket; logging it into itself would loop.');
  accept(bucket, 'HIPAA.Security-S3DefaultEncryptionKMS', 'S3 server access logging delivers only to buckets encrypted with S3-managed keys.');
}

/** The webhook route, which Vital calls without AWS credentials. */
export function acceptWebhookRouteFindings(api: IConstruct): void {
  accept(api, 'AwsSolutions-APIG4', 'Vital cannot send IAM or JWT credentials; every request is authenticated by its Svix signature in the verifier before anything is stored.');
}
