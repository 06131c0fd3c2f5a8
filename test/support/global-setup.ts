import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tsImport } from 'tsx/esm/api';
import type { DynamoDbLocalEngine } from '../../local/stand-ins';

/**
 * Global setup of `npm test` (`--test-global-setup`), for what every test process would otherwise
 * make again: the synthesized stack, for every process that holds the functions to its IAM
 * policies (`enforceStackAccess`); and one DynamoDB Local JVM, which each test file reaches through
 * a front of its own (`startTestDynamoDb`) instead of starting a JVM of its own (about 3 s of CPU
 * each). Test processes inherit the variables naming both. (Node loads this module before tsx's
 * hooks apply to it, so the project's modules are loaded through tsx's API.)
 */

let folder: string | undefined;
let dynamoDb: DynamoDbLocalEngine | undefined;

export async function globalSetup(): Promise<void> {
  const [stackAccess, standIns, testDynamoDb] = (await Promise.all([
    tsImport('../../local/stack-access.ts', import.meta.url),
    tsImport('../../local/stand-ins.ts', import.meta.url),
    tsImport('./dynamodb-local.ts', import.meta.url),
  ])) as [typeof import('../../local/stack-access'), typeof import('../../local/stand-ins'), typeof import('./dynamodb-local')];
  folder = await mkdtemp(path.join(tmpdir(), 'pipeline-stack-'));
  const file = path.join(folder, 'synthesized-stack.json');
  [dynamoDb] = await Promise.all([standIns.launchDynamoDbLocal(), writeFile(file, JSON.stringify(stackAccess.synthesizedStack()))]);
  process.env[stackAccess.SYNTHESIZED_STACK_FILE_VARIABLE] = file;
  process.env[testDynamoDb.SHARED_DYNAMODB_LOCAL_VARIABLE] = dynamoDb.endpoint;
}

export async function globalTeardown(): Promise<void> {
  await dynamoDb?.stop();
  if (folder) await rm(folder, { recursive: true, force: true });
}
