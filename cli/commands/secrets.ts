import { parseSigningSecrets } from '../../functions/domain/signing-secrets';
import { stackClient, stackOutput, stackOutputs, type StackLocation } from '../target';
import { UsageError } from '../terminal';

/**
 * `secrets set`: stores a deployed stack's two secrets, the webhook signing secret (`whsec_...`) and
 * the Vital team API key, in the Secrets Manager secrets its outputs name (`SigningSecretArn`,
 * `VitalApiKeySecretArn`). Values are typed with echo off at a terminal, or read from stdin one per
 * line; they are never taken from the command line (shell history, `ps`), and never printed or
 * logged, error messages included. Every value is checked before anything is stored, so a bad one
 * stores nothing.
 */

/** The two secrets of a stack, in the order they are asked for and read from stdin. */
export const STACK_SECRETS = [
  {
    id: 'signing-secret',
    output: 'SigningSecretArn',
    label: 'webhook signing secret',
    prompt: 'Webhook signing secret (whsec_..., from the Junction endpoint; input hidden): ',
  },
  {
    id: 'api-key',
    output: 'VitalApiKeySecretArn',
    label: 'Vital API key',
    prompt: 'Vital team API key (input hidden): ',
  },
] as const;

export type StackSecretId = (typeof STACK_SECRETS)[number]['id'];

/** A value has the wrong format; the message describes the format, never the value. */
export class InvalidSecretValueError extends Error {}

/** Input ended or was cancelled before every value was given. */
export class SecretInputError extends Error {}

/** Secrets Manager refused a write (the ones before it were stored; the message says which). */
export class SecretWriteError extends Error {}

/**
 * The format of a Vital team API key. Nothing in the facts this project works from documents what a
 * key looks like, so the check is the least that holds for any key sent in a header: not empty, no
 * whitespace, and not a webhook signing secret (the two are easily swapped).
 */
export function checkVitalApiKey(value: string): string {
  const key = value.trim();
  if (key === '') throw new InvalidSecretValueError('The Vital API key is empty');
  if (/\s/.test(key)) throw new InvalidSecretValueError('The Vital API key must not contain whitespace');
  if (key.startsWith('whsec_')) {
    throw new InvalidSecretValueError('That is a webhook signing secret (whsec_...), not a Vital API key: the API key comes from the Junction dashboard\'s API keys page');
  }
  return key;
}

/** The checked value to store for a secret; throws `InvalidSecretValueError` naming the secret, never the value. */
function checkedValue(id: StackSecretId, value: string): string {
  if (id === 'api-key') return checkVitalApiKey(value);
  try {
    // The verifier's own parser: one rule for what a signing secret is.
    parseSigningSecrets(value);
  } catch (error) {
    throw new InvalidSecretValueError(`Not stored: ${(error as Error).message}`);
  }
  return value.trim();
}

/**
 * Reads one line at a terminal without echoing it: raw mode, so the terminal shows nothing of what
 * is typed or pasted. Backspace and Ctrl-U edit, Ctrl-C or Ctrl-D (on an empty line) cancel, escape
 * sequences (arrow keys) are ignored. The prompt goes to stderr, keeping stdout for results.
 */
export function readHiddenLine(prompt: string, input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stderr): Promise<string> {
  return new Promise((resolve, reject) => {
    let value = '';
    let escape: 'none' | 'start' | 'sequence' = 'none';
    const finish = () => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
    };
    const onData = (chunk: string) => {
      for (const character of chunk) {
        if (escape === 'start') {
          escape = character === '[' || character === 'O' ? 'sequence' : 'none';
          continue;
        }
        if (escape === 'sequence') {
          if (character >= '@' && character <= '~') escape = 'none';
          continue;
        }
        if (character === '\r' || character === '\n') {
          finish();
          resolve(value);
          return;
        }
        if (character === '\u0003' || (character === '\u0004' && value === '')) {
          finish();
          reject(new SecretInputError('Cancelled: nothing stored'));
          return;
        }
        if (character === '\u007f' || character === '\b') value = value.slice(0, -1);
        else if (character === '\u0015') value = '';
        else if (character === '\u001b') escape = 'start';
        else if (character >= ' ') value += character;
      }
    };
    input.setRawMode(true);
    input.setEncoding('utf8');
    output.write(prompt);
    input.on('data', onData);
    input.resume();
  });
}

/** All of stdin, when it is not a terminal. */
async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of input) text += chunk;
  return text;
}

/** The values from stdin: one per line, in `STACK_SECRETS` order, exactly as many as are set. */
function valuesFromLines(text: string, wanted: readonly (typeof STACK_SECRETS)[number][]): string[] {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines.at(-1)!.trim() === '') lines.pop();
  const expected = wanted.map((secret) => secret.label).join(', then the ');
  if (lines.length !== wanted.length) {
    throw new SecretInputError(
      `Expected ${wanted.length} line(s) on stdin (the ${expected}), got ${lines.length}: nothing stored`,
    );
  }
  return lines;
}

export interface SetSecretsOptions {
  readonly stack: StackLocation;
  /** Which secrets to set; both by default. */
  readonly only?: StackSecretId;
  readonly input?: NodeJS.ReadStream;
}

/** One secret stored. */
export interface StoredSecret {
  readonly secret: StackSecretId;
  readonly arn: string;
  readonly version_id: string | null;
}

/**
 * Reads, checks and stores the secrets. The stack is read first, so that nobody types a secret for a
 * stack that cannot be found; every value is checked before the first write.
 */
export async function setStackSecrets(options: SetSecretsOptions): Promise<StoredSecret[]> {
  const input = options.input ?? process.stdin;
  const wanted = STACK_SECRETS.filter((secret) => !options.only || secret.id === options.only);
  const outputs = await stackOutputs(options.stack);
  const arns = wanted.map((secret) => stackOutput(options.stack.name, outputs, secret.output));

  let values: string[];
  if (input.isTTY) {
    values = [];
    for (const secret of wanted) values.push(await readHiddenLine(secret.prompt, input));
  } else {
    values = valuesFromLines(await readAll(input), wanted);
  }
  const checked = wanted.map((secret, index) => checkedValue(secret.id, values[index]!));

  const { SecretsManagerClient, PutSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const client = stackClient(SecretsManagerClient, options.stack);
  const stored: StoredSecret[] = [];
  try {
    for (const [index, secret] of wanted.entries()) {
      const arn = arns[index]!;
      try {
        const result = await client.send(new PutSecretValueCommand({ SecretId: arn, SecretString: checked[index]! }));
        stored.push({ secret: secret.id, arn: result.ARN ?? arn, version_id: result.VersionId ?? null });
      } catch (error) {
        const done = stored.length > 0 ? ` (the ${wanted[0]!.label} was stored)` : '';
        throw new SecretWriteError(`Could not store the ${secret.label} in ${arn}: ${(error as Error).name}: ${(error as Error).message}${done}`);
      }
    }
  } finally {
    client.destroy();
  }
  return stored;
}

/** `--signing-secret-only` / `--api-key-only` as one choice. */
export function onlyOption(signingSecretOnly: boolean | undefined, apiKeyOnly: boolean | undefined): StackSecretId | undefined {
  if (signingSecretOnly && apiKeyOnly) throw new UsageError('Give at most one of --signing-secret-only and --api-key-only');
  return signingSecretOnly ? 'signing-secret' : apiKeyOnly ? 'api-key' : undefined;
}

/** The label of a secret, for output. */
export const secretLabel = (id: StackSecretId): string => STACK_SECRETS.find((secret) => secret.id === id)!.label;
