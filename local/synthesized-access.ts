import type { PipelineFunctionName } from '../functions/shared/resources';

/**
 * Who may do what, read from the synthesized CloudFormation template and moved onto the local
 * stand-ins: each function's role policies and the resource policies of the bucket and queues, with
 * every `Ref` and `Fn::GetAtt` resolved to the local resource the same environment variable names.
 *
 * The stack hands each function its resources through environment variables (`SUMMARIES_TABLE:
 * {Ref: TablesSummaries…}`); a runner on the stand-ins sets the same variables to its local names.
 * Matching the two maps every logical id the functions use to a local table, queue, bucket, secret
 * or event bus. A reference to anything else (the KMS key, a resource no function is told about) resolves
 * to an ARN no local resource has, so it can only deny, never allow by accident.
 */

/** The account and region the stand-ins answer for (fauxqs and DynamoDB Local both use these). */
export const LOCAL_ACCOUNT = { accountId: '000000000000', region: 'us-east-1', partition: 'aws' } as const;

type Intrinsic = unknown;

interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, any>;
}

/** The part of a synthesized template this module reads. */
export interface SynthesizedTemplate {
  readonly Resources: Readonly<Record<string, TemplateResource>>;
}

export interface PolicyDocument {
  readonly Version?: string;
  readonly Statement: readonly Record<string, unknown>[];
}

/**
 * The customer managed policies the stack makes for operators' roles (`ErasePolicy`, which
 * `vital-pipeline erase --stack` needs), by the name a role holding only that policy signs as.
 */
export type OperatorPolicyName = 'erase';

/** One function's identity on the stand-ins, or an operator role's that holds one operator policy. */
export interface FunctionAccess {
  readonly name: PipelineFunctionName | OperatorPolicyName;
  /** The role's ARN as AWS would show it in a denial. */
  readonly roleArn: string;
  /** Inline and attached policies of the role, resolved onto the local resources. */
  readonly identityPolicies: readonly { readonly name: string; readonly policy: PolicyDocument }[];
}

/** A bucket's or queue's resource policy, resolved. */
export interface ResourcePolicy {
  /** The ARN of the bucket or queue the policy is attached to. */
  readonly resourceArn: string;
  readonly policy: PolicyDocument;
}

export interface LocalAccessModel {
  readonly functions: readonly FunctionAccess[];
  readonly resourcePolicies: readonly ResourcePolicy[];
}

const ref = (value: Intrinsic): string | undefined =>
  value && typeof value === 'object' && 'Ref' in value && typeof value.Ref === 'string' ? value.Ref : undefined;

/** The name of a queue, from its URL (`http://host/<account>/<name>`). */
export const queueNameOfUrl = (url: string): string => new URL(url).pathname.split('/').filter(Boolean).at(-1)!;

/** The ARN of a local resource, by its CloudFormation type and its local physical id (name, URL). */
export function localArn(type: string, physicalId: string): string | undefined {
  const { partition, region, accountId } = LOCAL_ACCOUNT;
  switch (type) {
    case 'AWS::DynamoDB::Table':
    case 'AWS::DynamoDB::GlobalTable':
      return `arn:${partition}:dynamodb:${region}:${accountId}:table/${physicalId}`;
    case 'AWS::SQS::Queue':
      return `arn:${partition}:sqs:${region}:${accountId}:${queueNameOfUrl(physicalId)}`;
    case 'AWS::S3::Bucket':
      return `arn:${partition}:s3:::${physicalId}`;
    case 'AWS::SecretsManager::Secret':
      return physicalId;
    case 'AWS::Events::EventBus':
      return `arn:${partition}:events:${region}:${accountId}:event-bus/${physicalId}`;
    default:
      return undefined;
  }
}

/**
 * Resolves CloudFormation intrinsics against local physical ids. `physicalIds` maps logical ids to
 * what `Ref` returns for them locally (table and bucket names, queue URLs, secret ARNs).
 */
function resolver(template: SynthesizedTemplate, physicalIds: ReadonlyMap<string, string>) {
  const { partition, region, accountId } = LOCAL_ACCOUNT;
  const unresolved = (logicalId: string) => `arn:${partition}:unresolved:${region}:${accountId}:${logicalId}`;
  const pseudo: Record<string, string> = {
    'AWS::Partition': partition,
    'AWS::Region': region,
    'AWS::AccountId': accountId,
    'AWS::URLSuffix': 'amazonaws.com',
  };
  const resolve = (value: Intrinsic): unknown => {
    if (Array.isArray(value)) return value.map(resolve);
    if (!value || typeof value !== 'object') return value;
    const entries = Object.entries(value);
    if (entries.length === 1) {
      const [[fn, argument]] = entries as [[string, any]];
      if (fn === 'Ref') return pseudo[argument] ?? physicalIds.get(argument) ?? unresolved(argument);
      if (fn === 'Fn::GetAtt') {
        const [logicalId, attribute] = argument as [string, string];
        const physicalId = physicalIds.get(logicalId);
        const type = template.Resources[logicalId]?.Type ?? '';
        if (physicalId !== undefined && attribute === 'Arn') return localArn(type, physicalId) ?? unresolved(logicalId);
        if (physicalId !== undefined && attribute === 'QueueUrl') return physicalId;
        return unresolved(`${logicalId}.${attribute}`);
      }
      if (fn === 'Fn::Join') {
        const [separator, parts] = argument as [string, Intrinsic[]];
        return parts.map((part) => String(resolve(part))).join(separator);
      }
      if (fn === 'Fn::Sub' && typeof argument === 'string') {
        return argument.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
          const [logicalId, attribute] = name.split('.');
          return String(resolve(attribute ? { 'Fn::GetAtt': [logicalId, attribute] } : { Ref: logicalId }));
        });
      }
    }
    return Object.fromEntries(entries.map(([key, inner]) => [key, resolve(inner)]));
  };
  return resolve;
}

/**
 * The access model of the stack on the stand-ins. `functions` names each function's logical id in
 * the template; `localEnvironment` is the environment the runner gives the handlers (variable name
 * to local table name, queue URL, bucket name or secret id); `operatorPolicies` names the logical
 * id of each operator policy, whose role is modelled as holding that policy alone.
 */
export function localAccessModel(
  template: SynthesizedTemplate,
  functions: Readonly<Record<PipelineFunctionName, string>>,
  localEnvironment: Readonly<Record<string, string>>,
  operatorPolicies: Readonly<Partial<Record<OperatorPolicyName, string>>> = {},
): LocalAccessModel {
  const physicalIds = new Map<string, string>();
  for (const logicalId of Object.values(functions)) {
    const variables: Record<string, Intrinsic> = template.Resources[logicalId]?.Properties?.Environment?.Variables ?? {};
    for (const [name, value] of Object.entries(variables)) {
      const target = ref(value);
      const local = localEnvironment[name];
      if (target && local !== undefined) physicalIds.set(target, local);
    }
  }
  const resolve = resolver(template, physicalIds);
  const resources = Object.entries(template.Resources);

  const functionAccess = (Object.entries(functions) as [PipelineFunctionName, string][]).map(([name, logicalId]): FunctionAccess => {
    const roleId = (template.Resources[logicalId]?.Properties?.Role as { 'Fn::GetAtt'?: [string, string] })?.['Fn::GetAtt']?.[0];
    if (!roleId) throw new Error(`Function ${logicalId} has no role of the stack`);
    const role = template.Resources[roleId]!.Properties ?? {};
    const inline = (role.Policies ?? []).map((policy: { PolicyName: string; PolicyDocument: Intrinsic }) => ({
      name: policy.PolicyName,
      policy: resolve(policy.PolicyDocument) as PolicyDocument,
    }));
    const attached = resources
      .filter(([, resource]) => resource.Type === 'AWS::IAM::Policy' && (resource.Properties?.Roles ?? []).some((role: Intrinsic) => ref(role) === roleId))
      .map(([policyId, resource]) => ({ name: policyId, policy: resolve(resource.Properties!.PolicyDocument) as PolicyDocument }));
    // Managed policies (AWSLambdaBasicExecutionRole) grant only CloudWatch Logs, which no stand-in serves.
    return {
      name,
      roleArn: `arn:${LOCAL_ACCOUNT.partition}:iam::${LOCAL_ACCOUNT.accountId}:role/${roleId}`,
      identityPolicies: [...inline, ...attached],
    };
  });
  const operatorAccess = (Object.entries(operatorPolicies) as [OperatorPolicyName, string][]).map(([name, policyId]): FunctionAccess => {
    const policy = template.Resources[policyId];
    if (policy?.Type !== 'AWS::IAM::ManagedPolicy') throw new Error(`${policyId} is no managed policy of the stack`);
    return {
      name,
      roleArn: `arn:${LOCAL_ACCOUNT.partition}:iam::${LOCAL_ACCOUNT.accountId}:role/${name}-operator`,
      identityPolicies: [{ name: policyId, policy: resolve(policy.Properties!.PolicyDocument) as PolicyDocument }],
    };
  });

  const resourcePolicies: ResourcePolicy[] = [];
  for (const [, resource] of resources) {
    const properties = resource.Properties ?? {};
    const targets: { type: string; logicalId: string | undefined }[] =
      resource.Type === 'AWS::S3::BucketPolicy'
        ? [{ type: 'AWS::S3::Bucket', logicalId: ref(properties.Bucket) }]
        : resource.Type === 'AWS::SQS::QueuePolicy'
          ? (properties.Queues ?? []).map((queue: Intrinsic) => ({ type: 'AWS::SQS::Queue', logicalId: ref(queue) }))
          : [];
    for (const { type, logicalId } of targets) {
      const physicalId = logicalId && physicalIds.get(logicalId);
      const resourceArn = physicalId && localArn(type, physicalId);
      if (resourceArn) resourcePolicies.push({ resourceArn, policy: resolve(properties.PolicyDocument) as PolicyDocument });
    }
  }
  return { functions: [...functionAccess, ...operatorAccess], resourcePolicies };
}
