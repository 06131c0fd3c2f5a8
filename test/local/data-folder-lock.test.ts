import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { acquireDataFolderLock, DataFolderInUseError, LOCK_FILE_NAME } from '../../local/data-folder-lock';
import { startLocalPipeline } from '../../local/pipeline';
import { STATE_FILE_NAME } from '../../local/pipeline-state';

/**
 * One local pipeline per data folder: a second start is refused with the holder's PID and what to
 * do; a lock left by a pipeline that was killed is taken over, and the DynamoDB Local JVM it left
 * running is stopped, but never a process that merely reuses the PID.
 */

const children: ChildProcess[] = [];
/** A process that idles until killed; `label` shows in its command line, as `DynamoDBLocal.jar` in the JVM's. */
function idleProcess(label: string): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', label], { stdio: 'ignore' });
  children.push(child);
  return child;
}
const isAlive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid!;
}

const folders: string[] = [];
async function dataFolder(): Promise<string> {
  const folder = await mkdtemp(path.join(tmpdir(), 'pipeline-lock-'));
  folders.push(folder);
  return folder;
}

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

describe('the data folder lock', () => {
  it('refuses a second pipeline while the first runs, naming its PID and what to do', async () => {
    const folder = await dataFolder();
    const holder = idleProcess('first-pipeline');
    await writeFile(path.join(folder, LOCK_FILE_NAME), JSON.stringify({ pid: holder.pid, startedAt: '2026-12-01T10:00:00.000Z' }));
    await assert.rejects(acquireDataFolderLock(folder), (error: Error) => {
      assert.ok(error instanceof DataFolderInUseError);
      assert.match(error.message, new RegExp(`in use by the local pipeline with PID ${holder.pid} \\(started 2026-12-01T10:00:00.000Z\\)`));
      assert.match(error.message, /LOCAL_DATA_DIR=<folder> npm start/);
      return true;
    });
    assert.ok(isAlive(holder), 'the holder is left alone');
  });

  it('refuses npm start on a held folder before starting any stand-in or touching pipeline.json', async () => {
    const folder = await dataFolder();
    const holder = idleProcess('first-pipeline');
    await writeFile(path.join(folder, LOCK_FILE_NAME), JSON.stringify({ pid: holder.pid, startedAt: new Date().toISOString() }));
    await writeFile(path.join(folder, STATE_FILE_NAME), '{"pid": "the first pipeline\'s"}');
    const lines: string[] = [];
    const output = { line: () => undefined, plain: (text: string) => lines.push(text) };
    await assert.rejects(startLocalPipeline({ dataDir: folder, port: 0, timeScale: 1 }, output as never), DataFolderInUseError);
    assert.ok(!lines.some((line) => line.startsWith('Starting DynamoDB')), lines.join('\n'));
    assert.equal(await readFile(path.join(folder, STATE_FILE_NAME), 'utf8'), '{"pid": "the first pipeline\'s"}', 'the first pipeline\'s state file is kept');
    assert.equal(JSON.parse(await readFile(path.join(folder, LOCK_FILE_NAME), 'utf8')).pid, holder.pid, 'and its lock');
  });

  it('takes over from a pipeline that was killed, stopping the DynamoDB Local it left running', async () => {
    const folder = await dataFolder();
    const orphan = idleProcess('DynamoDBLocal.jar');
    const killed = await deadPid();
    await writeFile(path.join(folder, LOCK_FILE_NAME), JSON.stringify({ pid: killed, startedAt: '2026-12-01T10:00:00.000Z', dynamoDbLocalPid: orphan.pid }));
    const orphanExited = once(orphan, 'exit');
    const notes: string[] = [];
    const lock = await acquireDataFolderLock(folder, { onStaleLock: (message) => notes.push(message) });
    await orphanExited;
    assert.deepEqual(notes, [`Stopped DynamoDB Local (PID ${orphan.pid}), left running by a pipeline that was killed (PID ${killed})`]);
    assert.equal(JSON.parse(await readFile(path.join(folder, LOCK_FILE_NAME), 'utf8')).pid, process.pid);
    await lock.release();
    await assert.rejects(readFile(path.join(folder, LOCK_FILE_NAME)), { code: 'ENOENT' }, 'released: the file is gone');
  });

  it('never kills a process that reuses the recorded JVM PID', async () => {
    const folder = await dataFolder();
    const unrelated = idleProcess('someone-elses-program');
    await writeFile(path.join(folder, LOCK_FILE_NAME), JSON.stringify({ pid: await deadPid(), startedAt: '2026-12-01T10:00:00.000Z', dynamoDbLocalPid: unrelated.pid }));
    const notes: string[] = [];
    const lock = await acquireDataFolderLock(folder, { onStaleLock: (message) => notes.push(message) });
    assert.ok(isAlive(unrelated));
    assert.match(notes.join('\n'), /^Took over the data folder from a pipeline that was killed/);
    await lock.release();
  });

  it('takes an unreadable lock (a pipeline killed while writing it)', async () => {
    const folder = await dataFolder();
    await writeFile(path.join(folder, LOCK_FILE_NAME), '{"pid": 12');
    const lock = await acquireDataFolderLock(folder);
    await lock.release();
  });
});
