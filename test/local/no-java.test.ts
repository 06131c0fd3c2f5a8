import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbRecordStore } from '../../functions/adapters/record-store';
import { exampleEvent } from '../../functions/domain/example-events';
import { startLocalPipeline, type RunningPipeline } from '../../local/pipeline';
import { LOCAL_AWS } from '../../local/stand-ins';
import { newSigningSecret, svixHeaders } from '../support/signing';

/**
 * `npm start` on a machine with Node and no Java: DynamoDB Local cannot start, so the pipeline runs
 * on dynalite in process, says so, and stores what it is sent. (The tests otherwise use DynamoDB
 * Local, AWS's own emulator.)
 */

describe('npm start without Java', () => {
  let dataDir: string;
  let pipeline: RunningPipeline;
  const lines: string[] = [];
  const secret = newSigningSecret();
  const pathBefore = process.env.PATH;

  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'no-java-'));
    // A PATH with node's folder only: no java on it, as on a machine without a Java runtime.
    process.env.PATH = path.dirname(process.execPath);
    try {
      pipeline = await startLocalPipeline(
        { dataDir, port: 0, timeScale: 1, webhookSecret: secret },
        { line: (line: { text: string }) => lines.push(line.text), plain: (text: string) => lines.push(text) } as never,
      );
    } finally {
      process.env.PATH = pathBefore;
    }
  });

  after(async () => {
    await pipeline?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('says it runs dynalite, and why', () => {
    assert.ok(lines.some((line) => line.startsWith('DynamoDB: dynalite, in this process (no Java found')), lines.join('\n'));
  });

  it('stores a signed event sent to its endpoint, and keeps the data in the data folder', async () => {
    const event = exampleEvent('daily.data.sleep.created', { userId: 'user-no-java' });
    const body = JSON.stringify(event);
    const response = await fetch(pipeline.webhookUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...svixHeaders(secret, body) }, body });
    assert.equal(response.status, 202);
    const client = new DynamoDBClient({ endpoint: pipeline.state.endpoints.dynamodb, ...LOCAL_AWS });
    try {
      const records = new DynamoDbRecordStore(DynamoDBDocumentClient.from(client), {
        summariesTable: pipeline.state.tables.summaries,
        timeseriesTable: pipeline.state.tables.timeseries,
      });
      const deadline = Date.now() + 30_000;
      let stored;
      while (!(stored = await records.getSummary('user-no-java', 'sleep', event.data.id as string)) && Date.now() < deadline) await sleep(100);
      assert.deepEqual(stored?.object, event.data);
    } finally {
      client.destroy();
    }
    assert.ok((await readdir(path.join(dataDir, 'dynamodb', 'dynalite'))).length > 0, 'dynalite keeps its files in the data folder');
  });
});
