import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { PipelineFunctionName } from '../functions/shared/resources';
import { LOCAL_ACCOUNT, localArn, queueNameOfUrl, type FunctionAccess, type LocalAccessModel, type OperatorPolicyName, type ResourcePolicy } from './synthesized-access';

/**
 * IAM on the stand-ins. A request signed with a function's credentials (`functionCredentials`) is
 * turned into the IAM actions and resources AWS would authorize it as, and each is evaluated
 * against that function's role policies and the target's resource policy, as synthesized
 * (`synthesized-access.ts`), with AWS's own evaluation logic (`@cloud-copilot/iam-simulate`).
 * Anything not allowed is refused as AWS refuses it. Requests signed with the stand-ins' own
 * credentials (provisioning, the tests' checks, the CLI) are not evaluated: they play the account's
 * administrator.
 */

/**
 * Credentials a function's SDK clients sign with on the stand-ins, naming its role (letters only:
 * DynamoDB Local refuses any other access key); or an operator's, whose role holds one operator
 * policy of the stack (`erase`: what `vital-pipeline erase --stack` runs with).
 */
export function functionCredentials(name: PipelineFunctionName | OperatorPolicyName): { accessKeyId: string; secretAccessKey: string } {
  return { accessKeyId: `ROLE${name}`, secretAccessKey: 'local' };
}

/** One IAM authorization a request needs: an action on a resource. */
export interface AccessRequest {
  readonly action: string;
  readonly resource: string;
}

/** What the front knows of a request when it authorizes it. */
export interface SignedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

/** The access key and service of a SigV4-signed request (`Credential=KEY/date/region/service/aws4_request`). */
export function signerOf(headers: SignedRequest['headers']): { accessKeyId: string; service: string } | undefined {
  const match = /Credential=([^/,\s]+)\/[^/]+\/[^/]+\/([^/]+)\//.exec(String(headers.authorization ?? ''));
  return match ? { accessKeyId: match[1]!, service: match[2]! } : undefined;
}

/** A request the front cannot name the IAM actions of: refused, so that a gap shows instead of passing. */
export class UnrecognisedRequestError extends Error {}

const { partition, region, accountId } = LOCAL_ACCOUNT;
const tableArn = (table: string) => localArn('AWS::DynamoDB::Table', table)!;
const queueArnOfName = (name: string) => `arn:${partition}:sqs:${region}:${accountId}:${name}`;

function jsonBody(request: SignedRequest): Record<string, any> {
  try {
    return JSON.parse(request.body.toString('utf8') || '{}') as Record<string, any>;
  } catch {
    throw new UnrecognisedRequestError('The request body is not JSON');
  }
}

/** DynamoDB: every table (or index) an operation reads or writes, with the action per item where AWS checks per item. */
function dynamoDbRequests(operation: string, body: Record<string, any>): AccessRequest[] {
  const onTable = (table: string, index?: string) => (index ? `${tableArn(table)}/index/${index}` : tableArn(table));
  switch (operation) {
    case 'GetItem':
    case 'PutItem':
    case 'UpdateItem':
    case 'DeleteItem':
    case 'DescribeTable':
    case 'DescribeTimeToLive':
      return [{ action: `dynamodb:${operation}`, resource: onTable(body.TableName) }];
    case 'Query':
    case 'Scan':
      return [{ action: `dynamodb:${operation}`, resource: onTable(body.TableName, body.IndexName) }];
    case 'BatchWriteItem':
    case 'BatchGetItem':
      return Object.keys(body.RequestItems ?? {}).map((table) => ({ action: `dynamodb:${operation}`, resource: onTable(table) }));
    case 'TransactWriteItems':
    case 'TransactGetItems': {
      const actions: Record<string, string> = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem', Get: 'GetItem' };
      return (body.TransactItems ?? []).flatMap((item: Record<string, { TableName: string }>) =>
        Object.entries(item).map(([kind, target]) => ({ action: `dynamodb:${actions[kind] ?? kind}`, resource: onTable(target.TableName) })),
      );
    }
    case 'ListTables':
      return [{ action: 'dynamodb:ListTables', resource: '*' }];
    default:
      throw new UnrecognisedRequestError(`DynamoDB ${operation} is not known to the stand-ins' IAM`);
  }
}

/** SQS (JSON protocol, as the SDK speaks it): batch operations are authorized as their single forms. */
function sqsRequests(operation: string, body: Record<string, any>): AccessRequest[] {
  const actions: Record<string, string> = {
    SendMessageBatch: 'SendMessage',
    DeleteMessageBatch: 'DeleteMessage',
    ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
  };
  const action = `sqs:${actions[operation] ?? operation}`;
  if (operation === 'ListQueues') return [{ action, resource: '*' }];
  if (operation === 'GetQueueUrl' || operation === 'CreateQueue') return [{ action, resource: queueArnOfName(body.QueueName) }];
  if (typeof body.QueueUrl !== 'string') throw new UnrecognisedRequestError(`SQS ${operation} names no queue`);
  return [{ action, resource: queueArnOfName(queueNameOfUrl(body.QueueUrl)) }];
}

/** Parameters of a bucket listing (objects or object versions), which name no subresource. */
const LISTING_PARAMETERS = ['list-type', 'prefix', 'delimiter', 'continuation-token', 'max-keys', 'start-after', 'encoding-type', 'fetch-owner', 'key-marker', 'version-id-marker', 'x-id'];

const unescapeXml = (text: string): string =>
  text.replace(/&(lt|gt|quot|apos|amp);/g, (_, name: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[name]!);

/** The objects (and versions) a DeleteObjects request names: AWS authorizes each as its own DeleteObject(Version). */
function objectsToDelete(body: Buffer): { key: string; versionId?: string }[] {
  return [...body.toString('utf8').matchAll(/<Object>([\s\S]*?)<\/Object>/g)].map(([, object]) => {
    const key = /<Key>([\s\S]*?)<\/Key>/.exec(object!)?.[1];
    if (key === undefined) throw new UnrecognisedRequestError('S3 DeleteObjects names an object without a key');
    const versionId = /<VersionId>([\s\S]*?)<\/VersionId>/.exec(object!)?.[1];
    return { key: unescapeXml(key), ...(versionId !== undefined ? { versionId: unescapeXml(versionId) } : {}) };
  });
}

/** S3, path-style (`/bucket/key`), the way the local clients address it. */
function s3Requests(request: SignedRequest): AccessRequest[] {
  const url = new URL(request.url, 'http://stand-in');
  const [, bucket = '', ...keyParts] = url.pathname.split('/');
  const key = decodeURIComponent(keyParts.join('/'));
  const query = url.searchParams;
  const method = request.method.toUpperCase();
  const bucketArn = `arn:${partition}:s3:::${bucket}`;
  if (!bucket) return [{ action: 's3:ListAllMyBuckets', resource: '*' }];
  if (!key) {
    const subresources = [...query.keys()].filter((name) => !LISTING_PARAMETERS.includes(name));
    if (subresources.length === 0 && (method === 'GET' || method === 'HEAD')) return [{ action: 's3:ListBucket', resource: bucketArn }];
    const only = subresources.length === 1 ? subresources[0] : undefined;
    if (only === 'versions' && method === 'GET') return [{ action: 's3:ListBucketVersions', resource: bucketArn }];
    if (only === 'versioning' && method === 'GET') return [{ action: 's3:GetBucketVersioning', resource: bucketArn }];
    if (only === 'delete' && method === 'POST') {
      return objectsToDelete(request.body).map(({ key: objectKey, versionId }) => ({
        action: versionId === undefined ? 's3:DeleteObject' : 's3:DeleteObjectVersion',
        resource: `${bucketArn}/${objectKey}`,
      }));
    }
    if (subresources.length === 0 && method === 'PUT') return [{ action: 's3:CreateBucket', resource: bucketArn }];
    if (subresources.length === 0 && method === 'DELETE') return [{ action: 's3:DeleteBucket', resource: bucketArn }];
    throw new UnrecognisedRequestError(`S3 ${method} on a bucket with ?${subresources.join('&')} is not known to the stand-ins' IAM`);
  }
  const objectArn = `${bucketArn}/${key}`;
  const versioned = query.has('versionId') ? 'Version' : '';
  const multipart = query.has('uploads') || query.has('uploadId');
  const other = [...query.keys()].filter((name) => !['versionId', 'uploads', 'uploadId', 'partNumber', 'x-id'].includes(name));
  if (other.length > 0) throw new UnrecognisedRequestError(`S3 ${method} on an object with ?${other.join('&')} is not known to the stand-ins' IAM`);
  switch (method) {
    case 'GET':
    case 'HEAD':
      return [{ action: `s3:GetObject${versioned}`, resource: objectArn }];
    case 'PUT':
    case 'POST': {
      const copySource = request.headers['x-amz-copy-source'];
      const source = typeof copySource === 'string' ? [{ action: 's3:GetObject', resource: `arn:${partition}:s3:::${decodeURIComponent(copySource.replace(/^\//, '').split('?')[0]!)}` }] : [];
      return [{ action: 's3:PutObject', resource: objectArn }, ...source];
    }
    case 'DELETE':
      return [{ action: multipart ? 's3:AbortMultipartUpload' : `s3:DeleteObject${versioned}`, resource: objectArn }];
    default:
      throw new UnrecognisedRequestError(`S3 ${method} on an object is not known to the stand-ins' IAM`);
  }
}

/** The IAM authorizations a signed request needs, as AWS would check them. */
export function accessRequestsOf(request: SignedRequest, service: string): AccessRequest[] {
  const target = String(request.headers['x-amz-target'] ?? '');
  const operation = target.slice(target.indexOf('.') + 1);
  switch (service) {
    case 'dynamodb':
      return dynamoDbRequests(operation, jsonBody(request));
    case 'sqs':
      if (!target.startsWith('AmazonSQS.')) throw new UnrecognisedRequestError('SQS requests other than the JSON protocol are not known to the stand-ins\' IAM');
      return sqsRequests(operation, jsonBody(request));
    case 's3':
      return s3Requests(request);
    default:
      throw new UnrecognisedRequestError(`The service ${service} is not known to the stand-ins' IAM`);
  }
}

export type AccessDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly request: AccessRequest; readonly message: string };

/**
 * Decides requests of the functions of one access model. Decisions are cached per principal,
 * action and resource: the policies and the request context do not change while it runs.
 */
export class AccessEvaluator {
  readonly #principals: ReadonlyMap<string, FunctionAccess>;
  readonly #resourcePolicies: readonly ResourcePolicy[];
  readonly #decisions = new Map<string, Promise<AccessDecision>>();

  constructor(model: LocalAccessModel) {
    this.#principals = new Map(model.functions.map((access) => [functionCredentials(access.name).accessKeyId, access]));
    this.#resourcePolicies = model.resourcePolicies;
  }

  /** Whether requests signed with this access key are evaluated (a function's), or not (the administrator's). */
  governs(accessKeyId: string): boolean {
    return this.#principals.has(accessKeyId);
  }

  /** The decision on every authorization a request needs: allowed only if each is. */
  async decide(accessKeyId: string, requests: readonly AccessRequest[]): Promise<AccessDecision> {
    for (const request of requests) {
      const decision = await this.#decideOne(accessKeyId, request);
      if (!decision.allowed) return decision;
    }
    return { allowed: true };
  }

  #decideOne(accessKeyId: string, request: AccessRequest): Promise<AccessDecision> {
    const cacheKey = `${accessKeyId} ${request.action} ${request.resource}`;
    let decision = this.#decisions.get(cacheKey);
    if (!decision) {
      decision = this.#evaluate(accessKeyId, request);
      this.#decisions.set(cacheKey, decision);
    }
    return decision;
  }

  async #evaluate(accessKeyId: string, request: AccessRequest): Promise<AccessDecision> {
    const principal = this.#principals.get(accessKeyId);
    // Callers ask only for principals this evaluator `governs`.
    if (!principal) throw new Error(`No function of the stack signs with ${accessKeyId}`);
    const resourcePolicy = this.#resourcePolicies.find(
      (policy) => request.resource === policy.resourceArn || request.resource.startsWith(`${policy.resourceArn}/`),
    )?.policy;
    const result = await runSimulation(
      {
        request: {
          principal: principal.roleArn,
          action: request.action,
          resource: { resource: request.resource, accountId },
          // What AWS sees of a function's call: over TLS, from the function's role.
          contextVariables: { 'aws:SecureTransport': 'true', 'aws:PrincipalArn': principal.roleArn, 'aws:PrincipalAccount': accountId },
        },
        identityPolicies: principal.identityPolicies.map(({ name, policy }) => ({ name, policy })),
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        ...(resourcePolicy ? { resourcePolicy } : {}),
      },
      {},
    );
    if (result.resultType === 'error') throw new Error(`The stack's policies do not evaluate: ${result.errors.message}`);
    if (result.overallResult === 'Allowed') return { allowed: true };
    const role = principal.roleArn.split('/').at(-1)!;
    const why = result.overallResult === 'ExplicitlyDenied' ? 'with an explicit deny' : 'because no identity-based policy allows the ' + request.action + ' action';
    return {
      allowed: false,
      request,
      message: `User: arn:${partition}:sts::${accountId}:assumed-role/${role}/${principal.name} is not authorized to perform: ${request.action} on resource: ${request.resource} ${why}`,
    };
  }
}
