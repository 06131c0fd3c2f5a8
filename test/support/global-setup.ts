import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tsImport } from 'tsx/esm/api';

/**
 * Global setup of `npm test` (`--test-global-setup`): synthesizes the stack once for the run, for
 * every test process that holds the functions to its IAM policies (`enforceStackAccess`), instead
 * of once in each. Test processes inherit the variable naming the file. (Node loads this module
 * before tsx's hooks apply to it, so the project's modules are loaded through tsx's API.)
 */

let folder: string | undefined;

export async function globalSetup(): Promise<void> {
  const stackAccess = (await tsImport('../../local/stack-access.ts', import.meta.url)) as typeof import('../../local/stack-access');
  folder = await mkdtemp(path.join(tmpdir(), 'pipeline-stack-'));
  const file = path.join(folder, 'synthesized-stack.json');
  await writeFile(file, JSON.stringify(stackAccess.synthesizedStack()));
  process.env[stackAccess.SYNTHESIZED_STACK_FILE_VARIABLE] = file;
}

export async function globalTeardown(): Promise<void> {
  if (folder) await rm(folder, { recursive: true, force: true });
}
