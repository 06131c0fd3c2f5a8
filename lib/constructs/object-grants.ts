import { Stack } from 'aws-cdk-lib';
import { PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IConstruct } from 'constructs';
import { acceptNamedSecretDecrypt, acceptObjectPrefixGrant } from '../compliance';

/** The construct that holds a grantee's policy: its role. */
function roleOf(grantee: IGrantable): IConstruct {
  const principal = grantee.grantPrincipal;
  if (!Construct.isConstruct(principal)) throw new Error('The pipeline grants only to roles of the stack');
  return principal;
}

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
  acceptObjectPrefixGrant(roleOf(grantee), bucket, prefix);
  const keyActions = actions.includes('s3:PutObject') ? ['kms:Decrypt', 'kms:GenerateDataKey'] : ['kms:Decrypt'];
  encryptionKey.grant(grantee, ...keyActions);
}

/**
 * Grants reading a secret. A secret the stack created is encrypted with the stack key, which CDK's
 * `grantRead` covers. A secret given by name may be encrypted with a key of the user's own, unknown
 * at synth time: Decrypt is granted on any key, but only through Secrets Manager and only for this
 * secret (its ARN in the encryption context), so the role can decrypt nothing else.
 */
export function grantSecretRead(secret: ISecret, grantee: IGrantable): void {
  secret.grantRead(grantee);
  if (secret.encryptionKey) return;
  const stack = Stack.of(secret);
  grantee.grantPrincipal.addToPrincipalPolicy(
    new PolicyStatement({
      actions: ['kms:Decrypt'],
      resources: ['*'],
      conditions: {
        StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` },
        StringLike: { 'kms:EncryptionContext:SecretARN': `${secret.secretArn}-??????` },
      },
    }),
  );
  acceptNamedSecretDecrypt(roleOf(grantee));
}
