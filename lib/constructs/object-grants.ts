import { PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { IBucket } from 'aws-cdk-lib/aws-s3';

/**
 * Grants exactly `actions` on the objects under one prefix of a KMS-encrypted bucket, and the key
 * operations they need. CDK's `grantRead`/`grantPut` add wildcard actions (`s3:GetObject*`,
 * `s3:List*`, `s3:Abort*`, ...) that these functions never use.
 */
export function grantObjectAccess(
  bucket: IBucket,
  encryptionKey: IKey,
  grantee: IGrantable,
  prefix: string,
  actions: readonly ('s3:GetObject' | 's3:PutObject')[],
): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new PolicyStatement({ actions: [...actions], resources: [bucket.arnForObjects(`${prefix}*`)] }),
  );
  const keyActions = actions.includes('s3:PutObject') ? ['kms:Decrypt', 'kms:GenerateDataKey'] : ['kms:Decrypt'];
  encryptionKey.grant(grantee, ...keyActions);
}
