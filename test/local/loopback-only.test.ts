import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startHttpApi, type RunningHttpApi } from '../../local/http-api';
import { startFakeVitalApi, type FakeVitalApi } from '../../local/fake-vital-api';
import { startEventBridge, type RunningEventBridge } from '../../local/eventbridge-stand-in';
import { startSqsAndS3, type RunningStandIn } from '../../local/stand-ins';

/**
 * Everything the local pipeline serves in its own process (fauxqs behind its front, the fronts, the
 * webhook endpoint, the fake Vital API, the EventBridge stand-in) listens on 127.0.0.1 only: a stand-in holding health data
 * must not be reachable from the network. Read from the kernel's socket table with `ss`.
 * (DynamoDB Local's JVM, a child process, has no option to bind one address; the pipeline reaches it
 * only through its front on loopback.)
 */

/** The TCP sockets this process listens on: `address:port`. */
async function listeningSockets(): Promise<string[]> {
  const { stdout } = await promisify(execFile)('ss', ['-ltnpH']);
  return stdout
    .split('\n')
    .filter((line) => line.includes(`pid=${process.pid},`))
    .map((line) => line.trim().split(/\s+/)[3]!);
}

describe('local servers listen on loopback only', () => {
  let sqsAndS3: RunningStandIn | undefined;
  let api: RunningHttpApi | undefined;
  let fake: FakeVitalApi | undefined;
  let eventBridge: RunningEventBridge | undefined;
  let folder: string | undefined;
  after(async () => {
    await Promise.all([sqsAndS3?.stop(), api?.close(), fake?.stop(), eventBridge?.stop()]);
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it('binds fauxqs, its front, the webhook endpoint, the fake Vital API and the EventBridge stand-in to 127.0.0.1', async (t) => {
    try {
      await listeningSockets();
    } catch {
      t.skip('`ss` (iproute2) is not installed here');
      return;
    }
    const before = new Set(await listeningSockets());
    sqsAndS3 = await startSqsAndS3();
    api = await startHttpApi({ port: 0, routes: [] });
    fake = await startFakeVitalApi({ apiKey: 'loopback-check' });
    folder = await mkdtemp(path.join(tmpdir(), 'loopback-'));
    eventBridge = await startEventBridge({ busName: 'loopback-check', eventsFile: path.join(folder, 'change-events.jsonl') });
    const opened = (await listeningSockets()).filter((socket) => !before.has(socket));
    assert.ok(opened.length >= 5, `fauxqs, its front, the endpoint, the fake API and EventBridge: ${opened.join(', ')}`);
    assert.ok(opened.includes(new URL(eventBridge.endpoint).host), `EventBridge's ${eventBridge.endpoint} among ${opened.join(', ')}`);
    assert.deepEqual(opened.filter((socket) => !socket.startsWith('127.0.0.1:')), [], 'sockets reachable from the network');
  });
});
