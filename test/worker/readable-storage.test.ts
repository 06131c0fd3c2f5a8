import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ExecuteStatementCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { createWorkerHandler } from '../../functions/worker';
import { exampleEvent } from '../../functions/domain/example-events';
import { TABLES } from '../../functions/shared/resources';
import { LOCAL_AWS } from '../../local/stand-ins';
import { delivery, lambdaContext, sqsRecord, startWorkerHarness, type WorkerHarness } from './harness';

/**
 * The tables are readable without this project's code: what the worker stores is plain attributes,
 * and the PartiQL statements and the boto3 snippet of docs/storage.md, taken from the document
 * itself, answer "what was the heart rate at 10:00", "which sleep records average above 60" and
 * "what did the connection announce" on what the real worker stored.
 */

const storageDoc = readFileSync(path.join(import.meta.dirname, '../../docs/storage.md'), 'utf8');
const codeBlock = (language: string): string => new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(storageDoc)![1]!;

const hasBoto3 = (() => {
  try {
    execFileSync('python3', ['-c', 'import boto3'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('storage readable without the project (docs/storage.md examples)', () => {
  let harness: WorkerHarness;
  const userId = 'user-readable';
  const heartRate = exampleEvent('daily.data.heartrate.created', { userId, at: '2024-05-14T09:58:00Z', sampleCount: 300, sampleIntervalSeconds: 1 });
  const sleep = exampleEvent('daily.data.sleep.created', { userId });
  const connection = exampleEvent('provider.connection.created', { userId, provider: 'oura' });
  const sleepDelivery = delivery('2024-05-14T12:00:00Z');
  const names = () => ({
    '<TimeseriesTableName>': harness.env[TABLES.timeseries.envVar]!,
    '<SummariesTableName>': harness.env[TABLES.summaries.envVar]!,
    '<ConnectionsTableName>': harness.env[TABLES.connections.envVar]!,
    '<user_id>': userId,
  });
  const filled = (text: string) => Object.entries(names()).reduce((result, [placeholder, name]) => result.replaceAll(placeholder, name), text);

  before(async () => {
    harness = await startWorkerHarness();
    const response = await createWorkerHandler(harness.dependencies())(
      {
        Records: [
          sqsRecord(heartRate, delivery('2024-05-14T10:04:00Z')),
          sqsRecord(sleep, sleepDelivery),
          sqsRecord(connection, delivery('2024-05-14T12:01:00Z')),
        ],
      },
      lambdaContext(),
    );
    assert.deepEqual(response.batchItemFailures, []);
  });
  after(() => harness.stop());

  it('stores plain attributes: no binary, no JSON text, the layout version on every item', async () => {
    const atTen = (heartRate.data.data as Record<string, unknown>[]).find((sample) => sample.timestamp === '2024-05-14T10:00:00+00:00')!;
    const { Item: bucket } = await harness.documents.send(
      new GetCommand({ TableName: harness.env[TABLES.timeseries.envVar], Key: { pk: `${userId}#heartrate`, sk: '2024-05-14T10:00:00Z#oura#ring' } }),
    );
    assert.equal(bucket?.samples['10:00:00'], atTen.value, 'the value at 10:00 is a plain number under its time of day');
    assert.deepEqual(bucket?.shared, { unit: 'bpm', timezone_offset: 3600, type: null });
    assert.equal(bucket?.layout, 2);
    const { Item: summary } = await harness.documents.send(
      new GetCommand({ TableName: harness.env[TABLES.summaries.envVar], Key: { pk: `${userId}#sleep`, sk: sleep.data.id } }),
    );
    assert.deepEqual(summary?.data, sleep.data, 'the object as a native map');
    assert.equal(summary?.svix_id, sleepDelivery.svixId);
    assert.equal(summary?.layout, 2);
  });

  it('answers the PartiQL statements of docs/storage.md', async () => {
    const statements = codeBlock('sql')
      .split(/\n\s*\n/)
      .map((statement) => statement.split('\n').filter((line) => !line.trim().startsWith('--')).join('\n').trim());
    assert.equal(statements.length, 3);
    const run = async (statement: string) =>
      (await harness.client.send(new ExecuteStatementCommand({ Statement: filled(statement) }))).Items ?? [];
    const atTen = await run(statements[0]!);
    const sample = (heartRate.data.data as Record<string, unknown>[]).find((entry) => entry.timestamp === '2024-05-14T10:00:00+00:00')!;
    assert.deepEqual(atTen, [{ sk: { S: '2024-05-14T10:00:00Z#oura#ring' }, '10:00:00': { N: String(sample.value) }, unit: { S: 'bpm' } }]);
    const sleepy = await run(statements[1]!);
    assert.ok((sleep.data.hr_average as number) > 60 ? sleepy.length === 1 : sleepy.length === 0, 'filtered on a field of the stored object');
    const relaxed = await run(statements[1]!.replace('> 60', '> 0'));
    assert.deepEqual(relaxed.map((item) => [item.sk?.S, item.hr_average?.N, item.svix_id?.S]), [[sleep.data.id, String(sleep.data.hr_average), sleepDelivery.svixId]]);
    const announced = await run(statements[2]!);
    assert.equal(announced.length, 1);
    assert.ok(announced[0]!.resourceAvailability?.M, 'resource_availability is a native map');
  });

  it('answers the boto3 snippet of docs/storage.md', { skip: hasBoto3 ? false : 'python3 with boto3 is not installed' }, async () => {
    const { protocol, hostname, port } = await harness.client.config.endpoint!();
    const { stdout } = await promisify(execFile)('python3', ['-c', filled(codeBlock('python'))], {
      env: {
        PATH: process.env.PATH,
        AWS_ENDPOINT_URL: `${protocol}//${hostname}:${port}`,
        AWS_DEFAULT_REGION: LOCAL_AWS.region,
        AWS_ACCESS_KEY_ID: LOCAL_AWS.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_AWS.credentials.secretAccessKey,
      },
    });
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 300, 'every sample of the day');
    assert.match(lines[0]!, /^oura ring \{.*'timestamp': '2024-05-14T09:58:00\+00:00'.*\} msg_/);
  });
});
