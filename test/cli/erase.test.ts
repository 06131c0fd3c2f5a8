import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { receiptJson } from '../../cli/commands/erase';
import { readRecords } from '../../cli/record-queries';
import { localTarget, type PipelineTarget } from '../../cli/target';
import { exampleEvent } from '../../functions/domain/example-events';
import { newMessageId } from '../../functions/domain/message-order';
import { ATTRIBUTE } from '../../functions/domain/queued-event';
import type { Output } from '../../local/console-output';
import { startLocalPipeline, type RunningPipeline } from '../../local/pipeline';
import { runCli } from '../support/cli-process';
import { newSigningSecret, svixHeaders } from '../support/signing';

/**
 * `vital-pipeline erase` against the local pipeline, as a user runs it (a child process): without a
 * terminal it asks for `--yes` and erases nothing; with it, it removes one user's records and
 * prints the receipt, the other user's stay; afterwards a Svix redelivery of the erased user's old
 * message stores nothing, and a message created after the erasure is stored. The pipeline runs at
 * a time scale of 1/30 (`--fast-retries`), so the erasure waits 4 s for the backfill's timeout.
 */

const quiet: Output = { line: () => undefined, plain: () => undefined };
const secret = newSigningSecret();

let dataDir: string;
let pipeline: RunningPipeline;
let target: PipelineTarget;
/** How often the worker has processed each svix-id. */
const processed = new Map<string, number>();

const cli = (args: string[]) => runCli(args, { PATH: process.env.PATH ?? '', HOME: dataDir, LOCAL_DATA_DIR: dataDir });

/** Delivers an event as Svix does (signed now, with the message's own id); resolves once the worker has processed it. */
async function deliver(event: unknown, svixId: string): Promise<void> {
  const body = JSON.stringify(event);
  const times = processed.get(svixId) ?? 0;
  const response = await fetch(pipeline.webhookUrl, { method: 'POST', headers: { ...svixHeaders(secret, body, new Date(), svixId), 'content-type': 'application/json' }, body });
  assert.equal(response.status, 202);
  for (const deadline = Date.now() + 15_000; (processed.get(svixId) ?? 0) === times; await sleep(50)) {
    assert.ok(Date.now() < deadline, `${svixId} processed in time`);
  }
}

const stored = async (userId: string, resource: string) => (await readRecords(target.dynamodb, target.tables, { userId, resource })).map((row) => row.key).sort();

describe('vital-pipeline erase on the local pipeline', () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'erase-'));
    pipeline = await startLocalPipeline({ port: 0, dataDir, timeScale: 1 / 30, webhookSecret: secret, vitalApi: 'simulated' }, quiet, {
      onMessageOutcome: (queue, outcome) => {
        const svixId = outcome.record.messageAttributes[ATTRIBUTE.svixId]?.stringValue;
        if (queue === 'events' && outcome.result === 'processed' && svixId) processed.set(svixId, (processed.get(svixId) ?? 0) + 1);
      },
    });
    target = await localTarget(dataDir);
  });

  after(async () => {
    target?.close();
    await pipeline?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('asks for --yes without a terminal, then erases one of two users, prints the receipt, and keeps the erasure through a redelivery', async () => {
    const [erased, kept] = [`erased-${randomUUID()}`, `kept-${randomUUID()}`];
    const oldSleep = newMessageId(new Date(Date.now() - 60_000));
    const sleepOf = (userId: string, seed = 1) => exampleEvent('daily.data.sleep.created', { userId, seed });
    await Promise.all([
      deliver(sleepOf(erased), oldSleep),
      ...([[erased, 'daily.data.heartrate.created'], [kept, 'daily.data.sleep.created'], [kept, 'daily.data.heartrate.created']] as const).map(([userId, type]) =>
        deliver(exampleEvent(type, { userId }), newMessageId(new Date(Date.now() - 60_000)))),
    ]);
    const keptBefore = { sleep: await stored(kept, 'sleep'), heartrate: await stored(kept, 'heartrate') };
    const heartrate = (await stored(erased, 'heartrate')).length;
    assert.ok((await stored(erased, 'sleep')).length === 1 && heartrate > 0, 'the user to erase has records');

    const refused = await cli(['erase', '--user', erased]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, new RegExp(`^vital-pipeline: erase removes every copy of user ${erased}'s data for good: confirm at a terminal, or pass --yes`));
    assert.equal((await stored(erased, 'sleep')).length, 1, 'nothing erased');

    const run = await cli(['erase', '--user', erased, '--yes', '--json']);
    assert.equal(run.code, 0, run.stderr);
    // The timeouts the running pipeline uses (1/30 of the stack's), from its state file.
    assert.match(run.stderr, /^Sweeping now, and again once every worker and backfill invocation that may have missed the erasure has ended \(the longest function timeout, 4 s, after it was recorded\)$/m);
    assert.match(run.stderr, /^Waiting \d s for them, then sweeping again for what they stored$/m);
    const receipt = JSON.parse(run.stdout) as ReturnType<typeof receiptJson>;
    assert.deepEqual(
      { user: receipt.user_id, state: receipt.state, summaries: receipt.removed.summaries, timeseries: receipt.removed.timeseries, connections: receipt.removed.connections },
      { user: erased, state: 'erased', summaries: 1, timeseries: receipt.removed.timeseries, connections: 0 },
    );
    assert.ok(receipt.removed.timeseries > 0);
    assert.match(receipt.erased_by, /^local user /);
    assert.equal(receipt.receipt_item.table, target.tables.erasures);
    assert.deepEqual({ sleep: await stored(erased, 'sleep'), heartrate: await stored(erased, 'heartrate') }, { sleep: [], heartrate: [] });
    assert.deepEqual({ sleep: await stored(kept, 'sleep'), heartrate: await stored(kept, 'heartrate') }, keptBefore);

    // Svix delivers the old message again (a retry, a recovery): nothing comes back. New data is stored.
    const newer = sleepOf(erased, 2);
    await Promise.all([deliver(sleepOf(erased), oldSleep), deliver(newer, newMessageId())]);
    assert.deepEqual(await stored(erased, 'sleep'), [String(newer.data.id)]);
  });
});
