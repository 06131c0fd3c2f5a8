import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { readFile } from 'node:fs/promises';
import { parseSigningSecrets } from '../functions/domain/signing-secrets';
import { QUEUES, TABLES } from '../functions/shared/resources';
import type { QueueName, TableName } from '../local/local-resources';
import { readPipelineState } from '../local/pipeline-state';
import { LOCAL_AWS } from '../local/stand-ins';

/**
 * What a command works on: the local pipeline (default; found through the state file `npm start`
 * writes), or a deployed stack (`--stack`), whose names come from its CloudFormation outputs.
 */

export interface PipelineTarget {
  /** For messages: `the local pipeline` or `stack <name>`. */
  readonly description: string;
  readonly webhookUrl: string;
  readonly tables: Readonly<Record<TableName, string>>;
  readonly queues: Readonly<Record<QueueName, { readonly url: string; readonly deadLetterUrl: string }>>;
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  /** The signing secret in force (the current one during a rotation). */
  signingSecret(): Promise<string>;
  close(): void;
}

/** `--stack` was given, but the stack cannot be read or lacks the pipeline's outputs. */
export class StackLookupError extends Error {}

/** The signing secret cannot be found for the target. */
export class SigningSecretUnavailableError extends Error {}

const currentSecret = (value: string): string => parseSigningSecrets(value).current;

/** The local pipeline running on `dataDir`. */
export async function localTarget(dataDir: string): Promise<PipelineTarget> {
  const state = await readPipelineState(dataDir);
  const dynamodb = new DynamoDBClient({ endpoint: state.endpoints.dynamodb, ...LOCAL_AWS });
  const sqs = new SQSClient({ endpoint: state.endpoints.sqs, ...LOCAL_AWS });
  return {
    description: 'the local pipeline',
    webhookUrl: state.webhookUrl,
    tables: state.tables,
    queues: state.queues,
    dynamodb,
    sqs,
    async signingSecret() {
      if (state.secret.source === 'file') return currentSecret(await readFile(state.secret.path, 'utf8'));
      const fromEnvironment = process.env.VITAL_WEBHOOK_SECRET;
      if (!fromEnvironment) {
        throw new SigningSecretUnavailableError(
          'The local pipeline runs with VITAL_WEBHOOK_SECRET from its environment: set it here too, or pass --secret',
        );
      }
      return currentSecret(fromEnvironment);
    },
    close() {
      dynamodb.destroy();
      sqs.destroy();
    },
  };
}

/** The outputs of a stack, by key. The CloudFormation client is loaded only for `--stack`. */
async function stackOutputs(stackName: string): Promise<Record<string, string>> {
  const cloudFormation = await import('@aws-sdk/client-cloudformation');
  const client = new cloudFormation.CloudFormationClient({});
  try {
    const result = await client.send(new cloudFormation.DescribeStacksCommand({ StackName: stackName }));
    const outputs = result.Stacks?.[0]?.Outputs ?? [];
    return Object.fromEntries(outputs.filter((o) => o.OutputKey && o.OutputValue).map((o) => [o.OutputKey!, o.OutputValue!]));
  } catch (error) {
    throw new StackLookupError(`Could not describe stack ${stackName}: ${(error as Error).message}`);
  } finally {
    client.destroy();
  }
}

/** A deployed stack, through the usual AWS credentials and region. */
export async function stackTarget(stackName: string): Promise<PipelineTarget> {
  const outputs = await stackOutputs(stackName);
  const output = (key: string): string => {
    const value = outputs[key];
    if (!value) throw new StackLookupError(`Stack ${stackName} has no output ${key}: is it this pipeline's stack?`);
    return value;
  };
  // The stack names each queue's outputs after its definition: EventsQueueUrl, EventsDlqUrl, ...
  const queues = Object.fromEntries(
    Object.entries(QUEUES).map(([name, definition]) => [
      name,
      { url: output(`${definition.id}QueueUrl`), deadLetterUrl: output(`${definition.id}DlqUrl`) },
    ]),
  ) as Record<QueueName, { url: string; deadLetterUrl: string }>;
  const tables = Object.fromEntries(
    Object.entries(TABLES).map(([name, definition]) => [name, output(`${definition.id}TableName`)]),
  ) as Record<TableName, string>;
  const signingSecretArn = output('SigningSecretArn');
  const dynamodb = new DynamoDBClient({});
  const sqs = new SQSClient({});
  return {
    description: `stack ${stackName}`,
    webhookUrl: output('WebhookUrl'),
    tables,
    queues,
    dynamodb,
    sqs,
    async signingSecret() {
      const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
      const client = new SecretsManagerClient({});
      let value: string | undefined;
      try {
        ({ SecretString: value } = await client.send(new GetSecretValueCommand({ SecretId: signingSecretArn })));
      } catch (error) {
        throw new SigningSecretUnavailableError(`Could not read the signing secret of ${stackName}: ${(error as Error).message}`);
      } finally {
        client.destroy();
      }
      if (!value) throw new SigningSecretUnavailableError(`The signing secret of ${stackName} has no value yet`);
      try {
        return currentSecret(value);
      } catch (error) {
        // A stack deployed without signingSecretName holds a generated placeholder until the endpoint's secret is stored.
        throw new SigningSecretUnavailableError(
          `The signing secret of ${stackName} (${signingSecretArn}) holds no usable value, store the endpoint's secret there: ${(error as Error).message}`,
        );
      }
    },
    close() {
      dynamodb.destroy();
      sqs.destroy();
    },
  };
}

/** The target a command's options name. */
export function resolveTarget(options: { stack?: string; dataDir: string }): Promise<PipelineTarget> {
  return options.stack ? stackTarget(options.stack) : localTarget(options.dataDir);
}
