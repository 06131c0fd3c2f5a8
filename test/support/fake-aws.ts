import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake of the AWS control-plane calls the CLI makes, on one loopback port, speaking the wire
 * protocols the installed SDK clients speak: CloudFormation `DescribeStacks`, SNS
 * `ListSubscriptionsByTopic` and STS `GetCallerIdentity` (AWS query protocol: a form-encoded POST
 * answered in XML; the caller is named after the access key, `callerArnOf`), Secrets Manager
 * `GetSecretValue` and `PutSecretValue` (AWS JSON 1.1). Each request is routed by the service of its
 * SigV4 credential scope, so a client signing for the wrong service is refused, as AWS would. The
 * state (stacks, secrets, subscriptions) is plain data the test sets; `calls` records what was asked,
 * never a secret value. Data-plane services (DynamoDB, SQS, S3) are the real stand-ins.
 */

export const FAKE_ACCOUNT = '000000000000';

/** A subscription as SNS lists it: `subscriptionArn` is `PendingConfirmation` until it is confirmed. */
export interface FakeSubscription {
  readonly protocol: string;
  readonly endpoint: string;
  readonly subscriptionArn: string;
}

/** One request the fake answered: which service and action, on what (stack, secret or topic). */
export interface FakeAwsCall {
  readonly service: 'cloudformation' | 'secretsmanager' | 'sns' | string;
  readonly action: string;
  readonly name: string;
  /** `us-east-1/cloudformation/aws4_request`: the region and service the client signed for. */
  readonly credentialScope: string;
}

export interface FakeAws {
  readonly url: string;
  /** Stack name → its outputs (OutputKey → OutputValue). A stack not here does not exist. */
  readonly stacks: Map<string, Record<string, string>>;
  /** Secret ARN → its current SecretString. A secret not here does not exist. */
  readonly secrets: Map<string, string>;
  /** Topic ARN → its subscriptions. A topic not here does not exist. */
  readonly topics: Map<string, FakeSubscription[]>;
  readonly calls: FakeAwsCall[];
  /** The environment through which an SDK client (or the CLI in a child process) reaches this fake. */
  readonly endpointEnvironment: Record<string, string>;
  stop(): Promise<void>;
}

const xmlEscape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

const CFN_NAMESPACE = 'http://cloudformation.amazonaws.com/doc/2010-05-15/';
const STS_NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';

/** The identity STS names for a caller signing with `accessKeyId`: an assumed role named after the key. */
export const callerArnOf = (accessKeyId: string): string => `arn:aws:sts::${FAKE_ACCOUNT}:assumed-role/${accessKeyId}/vital-pipeline`;
const SNS_NAMESPACE = 'http://sns.amazonaws.com/doc/2010-03-31/';
/** SNS pages ListSubscriptionsByTopic by 100. */
const SNS_PAGE_SIZE = 100;

async function readText(request: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of request) text += chunk;
  return text;
}

/** `us-east-1/cloudformation/aws4_request` of a SigV4 Authorization header. */
const credentialScopeOf = (request: IncomingMessage): string =>
  /Credential=[^/]+\/\d{8}\/([^,]+)/.exec(String(request.headers.authorization ?? ''))?.[1] ?? '(unsigned)';

const queryError = (namespace: string, code: string, message: string): string =>
  `<ErrorResponse xmlns="${namespace}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>` +
  `<RequestId>${randomUUID()}</RequestId></ErrorResponse>`;

export async function startFakeAws(options: { region: string }): Promise<FakeAws> {
  const { region } = options;
  const stacks = new Map<string, Record<string, string>>();
  const secrets = new Map<string, string>();
  const topics = new Map<string, FakeSubscription[]>();
  const calls: FakeAwsCall[] = [];

  function describeStacksXml(stackName: string, outputs: Record<string, string>): string {
    const members = Object.entries(outputs)
      .map(([key, value]) => `<member><OutputKey>${xmlEscape(key)}</OutputKey><OutputValue>${xmlEscape(value)}</OutputValue></member>`)
      .join('');
    return (
      `<DescribeStacksResponse xmlns="${CFN_NAMESPACE}"><DescribeStacksResult><Stacks><member>` +
      `<StackId>arn:aws:cloudformation:${region}:${FAKE_ACCOUNT}:stack/${xmlEscape(stackName)}/${randomUUID()}</StackId>` +
      `<StackName>${xmlEscape(stackName)}</StackName>` +
      '<CreationTime>2024-05-14T08:00:00.000Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus>' +
      `<Outputs>${members}</Outputs>` +
      `</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></DescribeStacksResponse>`
    );
  }

  function listSubscriptionsXml(topicArn: string, subscriptions: readonly FakeSubscription[], start: number): string {
    const page = subscriptions.slice(start, start + SNS_PAGE_SIZE);
    const members = page
      .map(
        (subscription) =>
          `<member><TopicArn>${xmlEscape(topicArn)}</TopicArn><Protocol>${xmlEscape(subscription.protocol)}</Protocol>` +
          `<SubscriptionArn>${xmlEscape(subscription.subscriptionArn)}</SubscriptionArn><Owner>${FAKE_ACCOUNT}</Owner>` +
          `<Endpoint>${xmlEscape(subscription.endpoint)}</Endpoint></member>`,
      )
      .join('');
    const next = start + SNS_PAGE_SIZE < subscriptions.length ? `<NextToken>${start + SNS_PAGE_SIZE}</NextToken>` : '';
    return (
      `<ListSubscriptionsByTopicResponse xmlns="${SNS_NAMESPACE}"><ListSubscriptionsByTopicResult>` +
      `<Subscriptions>${members}</Subscriptions>${next}</ListSubscriptionsByTopicResult>` +
      `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></ListSubscriptionsByTopicResponse>`
    );
  }

  /** Secrets Manager: AWS JSON 1.1, the operation in `x-amz-target`. */
  function answerSecretsManager(target: string, body: string, scope: string, response: ServerResponse): void {
    const json = (status: number, value: unknown) => {
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
      response.end(JSON.stringify(value));
    };
    const input = JSON.parse(body || '{}') as { SecretId?: string; SecretString?: string };
    const secretId = input.SecretId ?? '';
    calls.push({ service: 'secretsmanager', action: target, name: secretId, credentialScope: scope });
    const notFound = () => json(400, { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." });
    const name = secretId.split(':').at(-1)!.replace(/-\w{6}$/, '');
    switch (target) {
      case 'secretsmanager.GetSecretValue': {
        const value = secrets.get(secretId);
        if (value === undefined) return notFound();
        return json(200, {
          ARN: secretId,
          Name: name,
          VersionId: randomUUID(),
          SecretString: value,
          VersionStages: ['AWSCURRENT'],
          CreatedDate: 1715673600,
        });
      }
      case 'secretsmanager.PutSecretValue': {
        if (!secrets.has(secretId)) return notFound();
        if (typeof input.SecretString !== 'string' || input.SecretString === '') {
          return json(400, { __type: 'InvalidParameterException', message: 'You must provide either SecretString or SecretBinary.' });
        }
        secrets.set(secretId, input.SecretString);
        return json(200, { ARN: secretId, Name: name, VersionId: randomUUID(), VersionStages: ['AWSCURRENT'] });
      }
      default:
        return json(400, { __type: 'UnknownOperationException' });
    }
  }

  /** CloudFormation and SNS: the AWS query protocol, told apart by the service the request was signed for. */
  function answerQuery(service: string, body: string, scope: string, request: IncomingMessage, response: ServerResponse): void {
    const xml = (status: number, text: string) => {
      response.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
      response.end(text);
    };
    const form = new URLSearchParams(body);
    const action = form.get('Action') ?? '';
    const formEncoded = String(request.headers['content-type']).startsWith('application/x-www-form-urlencoded');
    if (service === 'sns') {
      const topicArn = form.get('TopicArn') ?? '';
      calls.push({ service, action, name: topicArn, credentialScope: scope });
      if (!formEncoded || action !== 'ListSubscriptionsByTopic') {
        return xml(400, queryError(SNS_NAMESPACE, 'InvalidAction', `Unknown action ${action || '(none)'}`));
      }
      const subscriptions = topics.get(topicArn);
      if (!subscriptions) return xml(404, queryError(SNS_NAMESPACE, 'NotFound', 'Topic does not exist'));
      return xml(200, listSubscriptionsXml(topicArn, subscriptions, Number(form.get('NextToken') ?? 0)));
    }
    if (service === 'sts') {
      calls.push({ service, action, name: '', credentialScope: scope });
      if (!formEncoded || action !== 'GetCallerIdentity') return xml(400, queryError(STS_NAMESPACE, 'InvalidAction', `Unknown action ${action || '(none)'}`));
      const accessKeyId = /Credential=([^/,\s]+)\//.exec(String(request.headers.authorization ?? ''))?.[1] ?? '(unsigned)';
      return xml(
        200,
        `<GetCallerIdentityResponse xmlns="${STS_NAMESPACE}"><GetCallerIdentityResult><Arn>${xmlEscape(callerArnOf(accessKeyId))}</Arn>` +
          `<UserId>AROAFAKE:vital-pipeline</UserId><Account>${FAKE_ACCOUNT}</Account></GetCallerIdentityResult>` +
          `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
      );
    }
    const stackName = form.get('StackName') ?? '';
    calls.push({ service, action, name: stackName, credentialScope: scope });
    if (service !== 'cloudformation' || !formEncoded || action !== 'DescribeStacks') {
      return xml(400, queryError(CFN_NAMESPACE, 'InvalidAction', `Could not find operation ${action || '(none)'} for version ${form.get('Version')}`));
    }
    const outputs = stacks.get(stackName);
    if (!outputs) return xml(400, queryError(CFN_NAMESPACE, 'ValidationError', `Stack with id ${stackName} does not exist`));
    return xml(200, describeStacksXml(stackName, outputs));
  }

  async function answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readText(request);
    const scope = credentialScopeOf(request);
    const service = scope.split('/')[1] ?? '';
    const target = request.headers['x-amz-target'];
    if (typeof target === 'string') return answerSecretsManager(target, body, scope, response);
    return answerQuery(service, body, scope, request, response);
  }

  const server: Server = createServer((request, response) => {
    answer(request, response).catch((error: Error) => {
      response.writeHead(500);
      response.end(error.message);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    stacks,
    secrets,
    topics,
    calls,
    endpointEnvironment: {
      AWS_ENDPOINT_URL_CLOUDFORMATION: url,
      // The SDK derives the variable from the service id "Secrets Manager": AWS_ENDPOINT_URL_SECRETS_MANAGER.
      AWS_ENDPOINT_URL_SECRETS_MANAGER: url,
      AWS_ENDPOINT_URL_SNS: url,
      AWS_ENDPOINT_URL_STS: url,
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A stand-in reached through `startScopeRecorder`, and the credential scope of every request it passed on. */
export interface ScopeRecorder {
  readonly url: string;
  /** `eu-west-1/dynamodb/aws4_request`, one per request, in order. */
  readonly scopes: string[];
  stop(): Promise<void>;
}

/** A pass-through on loopback in front of a stand-in, that lets a test look at each request it forwards. */
export interface Forwarder {
  readonly url: string;
  stop(): Promise<void>;
}

/** Forwards every request to `upstream` unchanged, after `observe` has seen it and its body. */
export async function startForwarder(upstream: string, observe: (request: IncomingMessage, body: Buffer) => void): Promise<Forwarder> {
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    observe(request, body);
    const forwarded = httpRequest(new URL(request.url ?? '/', upstream), { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    forwarded.once('error', () => response.destroy());
    forwarded.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A pass-through in front of a data-plane stand-in (DynamoDB Local, fauxqs), which accept any
 * region: it records the region and service each request was signed for, and forwards it unchanged.
 */
export async function startScopeRecorder(upstream: string): Promise<ScopeRecorder> {
  const scopes: string[] = [];
  const forwarder = await startForwarder(upstream, (request) => scopes.push(credentialScopeOf(request)));
  return { ...forwarder, scopes };
}
