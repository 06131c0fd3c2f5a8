import { execFile } from 'node:child_process';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { isAlive } from './pipeline-state';

/**
 * One local pipeline per data folder. DynamoDB Local and fauxqs keep their data in files there; a
 * second pipeline on the same folder would run a second database on the same files and overwrite
 * (then, on its Ctrl-C, delete) the first one's `pipeline.json`. `npm start` takes this lock first and
 * refuses to start while a live pipeline holds it. A lock left by a pipeline that was killed (`kill -9`
 * skips every clean-up) is taken over, and the DynamoDB Local JVM that pipeline left running is stopped.
 */

export const LOCK_FILE_NAME = 'pipeline.lock';

interface LockContents {
  readonly pid: number;
  readonly startedAt: string;
  /** The DynamoDB Local JVM the holder started, once it runs. */
  readonly dynamoDbLocalPid?: number;
}

/** Another live pipeline holds the data folder. */
export class DataFolderInUseError extends Error {}

const lockFile = (dataDir: string) => path.join(dataDir, LOCK_FILE_NAME);

/** The command line of a live process (`ps` exists on Linux and macOS), or undefined. */
async function commandOf(pid: number): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)('ps', ['-o', 'command=', '-p', String(pid)]);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

export interface DataFolderLock {
  /** Records the DynamoDB Local JVM, so that a later start can stop it if this process is killed. */
  recordDynamoDbLocal(pid: number): Promise<void>;
  release(): Promise<void>;
}

export interface AcquireOptions {
  /** Told what was cleaned up after a pipeline that was killed. */
  readonly onStaleLock?: (message: string) => void;
}

/** Takes the data folder for this process, or throws `DataFolderInUseError` naming the holder and what to do. */
export async function acquireDataFolderLock(dataDir: string, options: AcquireOptions = {}): Promise<DataFolderLock> {
  const file = lockFile(dataDir);
  const mine: LockContents = { pid: process.pid, startedAt: new Date().toISOString() };
  for (let attempt = 0; ; attempt += 1) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(`${JSON.stringify(mine)}\n`);
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
    }
    let holder: LockContents | undefined;
    try {
      holder = JSON.parse(await readFile(file, 'utf8')) as LockContents;
    } catch {
      // Unreadable: written by a pipeline killed while writing it, so held by no one.
    }
    if (holder && holder.pid !== process.pid && isAlive(holder.pid)) {
      throw new DataFolderInUseError(
        `The data folder ${dataDir} is in use by the local pipeline with PID ${holder.pid} (started ${holder.startedAt}). ` +
          `Stop it (Ctrl-C in its terminal, or kill ${holder.pid}), or start this one on another folder: LOCAL_DATA_DIR=<folder> npm start`,
      );
    }
    const jvm = holder?.dynamoDbLocalPid;
    if (jvm !== undefined && isAlive(jvm) && (await commandOf(jvm))?.includes('DynamoDBLocal')) {
      process.kill(jvm, 'SIGKILL');
      options.onStaleLock?.(`Stopped DynamoDB Local (PID ${jvm}), left running by a pipeline that was killed (PID ${holder!.pid})`);
    } else if (holder) {
      options.onStaleLock?.(`Took over the data folder from a pipeline that was killed (PID ${holder.pid})`);
    }
    await rm(file, { force: true });
  }
  let contents = mine;
  return {
    async recordDynamoDbLocal(pid) {
      contents = { ...contents, dynamoDbLocalPid: pid };
      await writeFile(file, `${JSON.stringify(contents)}\n`, { mode: 0o600 });
    },
    async release() {
      await rm(file, { force: true });
    },
  };
}
