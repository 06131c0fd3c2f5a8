import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { readFile } from 'node:fs/promises';
import { parseSigningSecrets, type SigningSecrets } from '../functions/domain/signing-secrets';
import { QUEUES, TABLES } from '../functions/shared/resources';
import type { QueueName, TableName } from '../local/local-resources';
import { readPipelineState, type PipelineState } from '../local/pipeline-state';
import { LOCAL_AWS } from '../local/stand-ins';

/**
 * What a command works on: the local pipeline (default; found through the state file `npm start`
 * writes), or a deployed stack (`--stack`), whose names come from its CloudFormation outputs.
 */

export interface PipelineTarget {
  /** For messages: `the local pipeline` or `stack <name>`. */
  readonly description: string;
  /** Where the names come from: the stack's outputs, or the state file of the local pipeline. */
  readonly origin: TargetOrigin;
  readonly webhookUrl: string;
  readonly tables: Readonly<Record<TableName, string>>;
  /**
   * Each queue, its dead-letter queue, and its consumer's timeout as the target runs it: the stack's,
   * or the local pipeline's (scaled by `--fast-retries`).
   */
  readonly queues: Readonly<Record<QueueName, { readonly url: string; readonly deadLetterUrl: string; readonly functionTimeoutSeconds: number }>>;
  /** The raw-body bucket (claim checks, quarantined and unrecognised events, held-back records). */
  readonly bucket: string;
  /**
   * A stack's tap queue of change events (output `ChangeEventsQueueUrl`), which `events --stack`
   * reads; absent for the local pipeline (its events are in a file) and for a stack deployed before it.
   */
  readonly changeEventsQueueUrl?: string;
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly s3: S3Client;
  /** The signing secrets in force: the current one, and the previous ones during a rotation. */
  signingSecrets(): Promise<SigningSecrets>;
  /** The signing secret in force (the current one during a rotation). */
  signingSecret(): Promise<string>;
  /**
   * The Vital team API key the backfill fetches with: the stack's secret, or for the local pipeline
   * `VITAL_API_KEY` of this process (the pipeline's own environment cannot be read from here).
   */
  vitalApiKey(): Promise<string>;
  close(): void;
}

export type TargetOrigin =
  | { readonly kind: 'stack'; readonly stack: StackLocation; readonly outputs: Readonly<Record<string, string>> }
  | { readonly kind: 'local'; readonly dataDir: string; readonly state: PipelineState };

/**
 * A deployed stack (`--stack`), and its AWS region when `--region` names one; without it, the region
 * the SDK finds (AWS_REGION, the profile's).
 */
export interface StackLocation {
  readonly name: string;
  readonly region?: string;
}

/**
 * An AWS client for a stack. Every client the CLI makes for a stack (CloudFormation, DynamoDB, SQS,
 * S3, Secrets Manager, SNS) is built here, so that `--region` reaches each of them: one built
 * elsewhere would quietly work on the environment's region.
 */
export function stackClient<Client>(ClientClass: new (config: { region?: string }) => Client, stack: StackLocation): Client {
  return new ClientClass(stack.region ? { region: stack.region } : {});
}

/** The options naming a stack on a command line (`--stack S`, with `--region R` when given), for messages that say what to run. */
export const stackOptions = (stack: StackLocation): string => `--stack ${stack.name}${stack.region ? ` --region ${stack.region}` : ''}`;

/** The stack output naming the tap queue of change events. */
export const CHANGE_EVENTS_QUEUE_OUTPUT = 'ChangeEventsQueueUrl';

/** `--stack` was given, but the stack cannot be read or lacks the pipeline's outputs. */
export class StackLookupError extends Error {}

/**
 * Why a secret of the target is not usable: it cannot be read (permissions, network, no such
 * secret), it holds nothing, or it holds something of the wrong shape (the stack's generated
 * placeholder). Messages name the secret, never its value.
 */
export type SecretProblem = 'unreadable' | 'unset' | 'malformed';

/** The signing secret cannot be found for the target, or is not usable. */
export class SigningSecretUnavailableError extends Error {
  constructor(
    message: string,
    readonly problem: SecretProblem,
  ) {
    super(message);
  }
}

/** The Vital API key cannot be found for the target. */
export class VitalApiKeyUnavailableError extends Error {
  constructor(
    message: string,
    readonly problem: SecretProblem,
  ) {
    super(message);
  }
}

/** The command that stores a stack's secrets (`secrets set`), for messages that say what to run. */
export const secretsSetCommand = (stack: StackLocation, which: 'signing-secret' | 'api-key'): string =>
  `npx vital-pipeline secrets set ${stackOptions(stack)} --${which}-only`;

/** The local pipeline running on `dataDir`. */
export async function localTarget(dataDir: string): Promise<PipelineTarget> {
  const state = await readPipelineState(dataDir);
  const dynamodb = new DynamoDBClient({ endpoint: state.endpoints.dynamodb, ...LOCAL_AWS });
  const sqs = new SQSClient({ endpoint: state.endpoints.sqs, ...LOCAL_AWS });
  const s3 = new S3Client({ endpoint: state.endpoints.s3, forcePathStyle: true, ...LOCAL_AWS });
  const target: PipelineTarget = {
    description: 'the local pipeline',
    origin: { kind: 'local', dataDir, state },
    webhookUrl: state.webhookUrl,
    tables: state.tables,
    // A state file of an older version names no timeouts: the stack's, which are the longest, are assumed.
    queues: Object.fromEntries(
      Object.entries(state.queues).map(([name, queue]) => [name, { functionTimeoutSeconds: QUEUES[name as QueueName].consumerTimeoutSeconds, ...queue }]),
    ) as PipelineTarget['queues'],
    bucket: state.bucket,
    dynamodb,
    sqs,
    s3,
    async signingSecrets() {
      let value: string;
      if (state.secret.source === 'file') {
        try {
          value = await readFile(state.secret.path, 'utf8');
        } catch (error) {
          throw new SigningSecretUnavailableError(`Could not read the local signing secret ${state.secret.path}: ${(error as Error).message}`, 'unreadable');
        }
      } else {
        const fromEnvironment = process.env.VITAL_WEBHOOK_SECRET;
        if (!fromEnvironment) {
          throw new SigningSecretUnavailableError(
            'The local pipeline runs with VITAL_WEBHOOK_SECRET from its environment: set it here too, or pass --secret',
            'unset',
          );
        }
        value = fromEnvironment;
      }
      try {
        return parseSigningSecrets(value);
      } catch (error) {
        throw new SigningSecretUnavailableError(`The local signing secret is not usable: ${(error as Error).message}`, 'malformed');
      }
    },
    async signingSecret() {
      return (await target.signingSecrets()).current;
    },
    async vitalApiKey() {
      const key = process.env.VITAL_API_KEY?.trim();
      if (!key) {
        throw new VitalApiKeyUnavailableError(
          'VITAL_API_KEY is not set here; the local pipeline takes its team API key from VITAL_API_KEY when npm start runs',
          'unset',
        );
      }
      return key;
    },
    close() {
      dynamodb.destroy();
      sqs.destroy();
      s3.destroy();
    },
  };
  return target;
}

/** The current value of a Secrets Manager secret. The client is loaded only when a secret is read. */
async function readSecretString(stack: StackLocation, secretArn: string): Promise<string | undefined> {
  const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const client = stackClient(SecretsManagerClient, stack);
  try {
    return (await client.send(new GetSecretValueCommand({ SecretId: secretArn }))).SecretString;
  } finally {
    client.destroy();
  }
}

/** The outputs of a stack, by key. The CloudFormation client is loaded only for `--stack`. */
export async function stackOutputs(stack: StackLocation): Promise<Readonly<Record<string, string>>> {
  const cloudFormation = await import('@aws-sdk/client-cloudformation');
  const client = stackClient(cloudFormation.CloudFormationClient, stack);
  try {
    const result = await client.send(new cloudFormation.DescribeStacksCommand({ StackName: stack.name }));
    const outputs = result.Stacks?.[0]?.Outputs ?? [];
    return Object.fromEntries(outputs.filter((o) => o.OutputKey && o.OutputValue).map((o) => [o.OutputKey!, o.OutputValue!]));
  } catch (error) {
    throw new StackLookupError(`Could not describe stack ${stack.name}${stack.region ? ` in ${stack.region}` : ''}: ${(error as Error).message}`);
  } finally {
    client.destroy();
  }
}

/** One output of a stack; `StackLookupError` when the stack lacks it. */
export function stackOutput(stackName: string, outputs: Readonly<Record<string, string>>, key: string): string {
  const value = outputs[key];
  if (!value) throw new StackLookupError(`Stack ${stackName} has no output ${key}: is it this pipeline's stack?`);
  return value;
}

/** A deployed stack, through the usual AWS credentials, in its region. */
export async function stackTarget(stack: StackLocation): Promise<PipelineTarget> {
  const stackName = stack.name;
  const outputs = await stackOutputs(stack);
  const output = (key: string): string => stackOutput(stackName, outputs, key);
  // The stack names each queue's outputs after its definition: EventsQueueUrl, EventsDlqUrl, ...
  const queues = Object.fromEntries(
    Object.entries(QUEUES).map(([name, definition]) => {
      // A stack deployed before it said its consumers' timeouts runs them as QUEUES says.
      const stated = Number(outputs[`${definition.id}FunctionTimeoutSeconds`]);
      return [
        name,
        { url: output(`${definition.id}QueueUrl`), deadLetterUrl: output(`${definition.id}DlqUrl`), functionTimeoutSeconds: stated > 0 ? stated : definition.consumerTimeoutSeconds },
      ];
    }),
  ) as PipelineTarget['queues'];
  const tables = Object.fromEntries(
    Object.entries(TABLES).map(([name, definition]) => [name, output(`${definition.id}TableName`)]),
  ) as Record<TableName, string>;
  const signingSecretArn = output('SigningSecretArn');
  const vitalApiKeyArn = output('VitalApiKeySecretArn');
  const dynamodb = stackClient(DynamoDBClient, stack);
  const sqs = stackClient(SQSClient, stack);
  const s3 = stackClient(S3Client, stack);
  const target: PipelineTarget = {
    description: `stack ${stackName}`,
    origin: { kind: 'stack', stack, outputs },
    webhookUrl: output('WebhookUrl'),
    tables,
    queues,
    bucket: output('RawBodyBucketName'),
    ...(outputs[CHANGE_EVENTS_QUEUE_OUTPUT] ? { changeEventsQueueUrl: outputs[CHANGE_EVENTS_QUEUE_OUTPUT] } : {}),
    dynamodb,
    sqs,
    s3,
    async signingSecrets() {
      let value: string | undefined;
      try {
        value = await readSecretString(stack, signingSecretArn);
      } catch (error) {
        throw new SigningSecretUnavailableError(`Could not read the signing secret of ${stackName}: ${(error as Error).message}`, 'unreadable');
      }
      if (!value) {
        throw new SigningSecretUnavailableError(
          `The signing secret of ${stackName} (${signingSecretArn}) has no value yet: store it with ${secretsSetCommand(stack, 'signing-secret')}`,
          'unset',
        );
      }
      try {
        return parseSigningSecrets(value);
      } catch (error) {
        // A stack deployed without signingSecretName holds a generated placeholder until the endpoint's secret is stored.
        throw new SigningSecretUnavailableError(
          `The signing secret of ${stackName} (${signingSecretArn}) holds no usable value, store the endpoint's secret there ` +
            `with ${secretsSetCommand(stack, 'signing-secret')}: ${(error as Error).message}`,
          'malformed',
        );
      }
    },
    async signingSecret() {
      return (await target.signingSecrets()).current;
    },
    async vitalApiKey() {
      let value: string | undefined;
      try {
        value = await readSecretString(stack, vitalApiKeyArn);
      } catch (error) {
        throw new VitalApiKeyUnavailableError(`Could not read the Vital API key of ${stackName}: ${(error as Error).message}`, 'unreadable');
      }
      if (!value?.trim()) {
        throw new VitalApiKeyUnavailableError(`The Vital API key secret of ${stackName} (${vitalApiKeyArn}) has no value yet`, 'unset');
      }
      return value.trim();
    },
    close() {
      dynamodb.destroy();
      sqs.destroy();
      s3.destroy();
    },
  };
  return target;
}

/** The target a command's options name. */
export function resolveTarget(options: { stack?: StackLocation; dataDir: string }): Promise<PipelineTarget> {
  return options.stack ? stackTarget(options.stack) : localTarget(options.dataDir);
}
