import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { changeEventPublisherFromEnvironment } from '../../functions/adapters/change-event-publisher';
import { exampleEvent } from '../../functions/domain/example-events';
import { CHANGE_EVENTS_FILE, InvalidLocalSettingError, localPipelineConfig, PORT_SETTINGS } from '../../local/config';
import type { Output, OutputLine } from '../../local/console-output';
import type { DeliveredEvent } from '../../local/eventbridge-stand-in';
import { PortInUseError, startLocalPipeline, type RunningPipeline } from '../../local/pipeline';
import { freePipelinePort } from '../support/pipeline-port';
import { newSigningSecret, svixHeaders } from '../support/signing';

/**
 * The local tables are reachable with the AWS CLI or an SDK at endpoints that stay the same over a
 * restart (`PORT`+1 for DynamoDB, `PORT`+2 for SQS and S3, `PORT`+3 for the EventBridge bus of the
 * change events): the pipeline prints them at start with
 * the region, the dummy credentials and a command that works as pasted; a taken one is refused
 * before anything starts, naming the port and the setting that moves it.
 */

const commandWorks = (command: string, args: string[]): boolean => {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const hasAwsCli = commandWorks('aws', ['--version']);
const hasBoto3 = commandWorks('python3', ['-c', 'import boto3']);

/**
 * An environment without the pipeline's own AWS settings (which it sets in this process) and without
 * the user's AWS configuration: what is printed must be enough.
 */
const bareEnvironment = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  AWS_CONFIG_FILE: '/dev/null',
  AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
});

/** The printed CLI command and what it names. */
function printedCommand(lines: readonly string[]) {
  const line = lines.find((text) => text.startsWith('  Try: AWS_ACCESS_KEY_ID='));
  const parts = /^ {2}Try: (AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+) aws dynamodb scan --table-name (\S+) --endpoint-url (\S+) --region (\S+))$/.exec(line ?? '');
  assert.ok(parts, lines.join('\n'));
  const [, command, accessKeyId, secretAccessKey, table, endpoint, region] = parts as unknown as string[];
  return { command: command!, credentials: { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey! }, table: table!, endpoint: endpoint!, region: region! };
}

const recordingOutput = (lines: string[], outputLines: OutputLine[] = []): Output => ({ line: (line) => outputLines.push(line), plain: (text) => lines.push(text) });

describe('the AWS endpoints of the local pipeline', () => {
  const folders: string[] = [];
  let port: number;
  let pipeline: RunningPipeline | undefined;
  const firstStart: string[] = [];
  const secondStart: string[] = [];
  const consoleLines: OutputLine[] = [];
  const secret = newSigningSecret();
  const userId = 'user-stable-endpoints';
  const sleepSummary = exampleEvent('daily.data.sleep.created', { userId });

  before(async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'stable-endpoints-'));
    folders.push(dataDir);
    port = await freePipelinePort();
    const config = localPipelineConfig({ PORT: String(port), LOCAL_DATA_DIR: dataDir, VITAL_WEBHOOK_SECRET: secret }, []);
    pipeline = await startLocalPipeline(config, recordingOutput(firstStart));
    await pipeline.stop();
    pipeline = await startLocalPipeline(config, recordingOutput(secondStart, consoleLines));

    const body = JSON.stringify(sleepSummary);
    const response = await fetch(pipeline.webhookUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...svixHeaders(secret, body) }, body });
    assert.equal(response.status, 202);
  });

  after(async () => {
    await pipeline?.stop();
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  });

  /** The items the printed command's table holds, read with a real SDK client from what was printed. */
  async function scanAsPrinted(): Promise<Record<string, { S?: string }>[]> {
    const printed = printedCommand(secondStart);
    const client = new DynamoDBClient({ endpoint: printed.endpoint, region: printed.region, credentials: printed.credentials });
    try {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const { Items = [] } = await client.send(new ScanCommand({ TableName: printed.table }));
        if (Items.length > 0 || Date.now() > deadline) return Items as Record<string, { S?: string }>[];
        await sleep(100);
      }
    } finally {
      client.destroy();
    }
  }

  it('keeps the DynamoDB, the SQS and S3, and the EventBridge endpoints over a restart, right above PORT', () => {
    assert.deepEqual(pipeline!.state.endpoints, {
      dynamodb: `http://127.0.0.1:${port + PORT_SETTINGS.dynamodb.offset}`,
      sqs: `http://127.0.0.1:${port + PORT_SETTINGS.sqsAndS3.offset}`,
      s3: `http://127.0.0.1:${port + PORT_SETTINGS.sqsAndS3.offset}`,
    });
    assert.equal(pipeline!.state.changeEvents.endpoint, `http://127.0.0.1:${port + PORT_SETTINGS.eventBridge.offset}`);
    const eventBridgeLine = (lines: string[]) => lines.find((line) => line.startsWith('EventBridge: '));
    assert.ok(eventBridgeLine(firstStart)?.includes(` at ${pipeline!.state.changeEvents.endpoint}, `), firstStart.join('\n'));
    assert.equal(eventBridgeLine(secondStart), eventBridgeLine(firstStart));
    const printed = (lines: string[]) => lines.filter((line) => line.startsWith('AWS CLI and SDKs: ') || line.startsWith('  Try: AWS_'));
    assert.equal(printed(firstStart).length, 2, firstStart.join('\n'));
    assert.deepEqual(printed(secondStart), printed(firstStart));
    const { dynamodb, sqs } = pipeline!.state.endpoints;
    assert.ok(
      secondStart.includes(`AWS CLI and SDKs: DynamoDB at ${dynamodb}, SQS and S3 at ${sqs}, region us-east-1, dummy credentials local / local`),
      secondStart.join('\n'),
    );
  });

  it('takes change events from the handlers\' wiring onto its bus: a console line each, kept in the file its state names', async () => {
    // The pipeline gave this process the handlers' environment: the publisher they build finds its bus.
    const detail = { reason: 'unrecognised_event_type', count: 1, event_type: 'daily.data.brand_new.created', svix_id: 'msg_wiring_check' } as const;
    await changeEventPublisherFromEnvironment().publish([{ detailType: 'Events Held Back', detail }]);
    const { file, bus } = pipeline!.state.changeEvents;
    assert.equal(file, path.join(folders[0]!, CHANGE_EVENTS_FILE));
    const kept = (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as DeliveredEvent);
    assert.deepEqual(kept.filter((event) => event.detail.svix_id === detail.svix_id).map((event) => [event['detail-type'], event.detail]), [['Events Held Back', detail]]);
    assert.ok(secondStart.some((line) => line.startsWith(`EventBridge: change events on bus ${bus} at `)), secondStart.join('\n'));
    assert.deepEqual(
      consoleLines.filter((line) => line.source === 'events' && line.id === detail.svix_id).map((line) => [line.eventType, line.text]),
      [['Events Held Back', 'user -  daily.data.brand_new.created  -  1 held back: unrecognised_event_type']],
    );
  });

  it('prints an endpoint, region, credentials and table that reach the summaries with the SDK', async () => {
    assert.equal(printedCommand(secondStart).table, pipeline!.state.tables.summaries);
    const items = await scanAsPrinted();
    assert.deepEqual(items.map((item) => [item.pk?.S, item.sk?.S]), [[`${userId}#sleep`, sleepSummary.data.id]]);
  });

  it('prints an AWS CLI command that works as pasted', { skip: hasAwsCli ? false : 'the aws command is not installed' }, async () => {
    await scanAsPrinted();
    const { stdout } = await promisify(execFile)('sh', ['-c', printedCommand(secondStart).command], { env: bareEnvironment() });
    const { Items } = JSON.parse(stdout) as { Items: Record<string, { S?: string }>[] };
    assert.deepEqual(Items.map((item) => item.pk?.S), [`${userId}#sleep`]);
  });

  it('prints a boto3 resource that works as pasted', { skip: hasBoto3 ? false : 'python3 with boto3 is not installed' }, async () => {
    await scanAsPrinted();
    const resource = /^ {2}boto3: (boto3\.resource\(.*\))$/m.exec(secondStart.join('\n'))?.[1];
    assert.ok(resource, secondStart.join('\n'));
    const script = `import boto3\nprint(${resource}.Table("${pipeline!.state.tables.summaries}").scan()["Items"][0]["pk"])`;
    const { stdout } = await promisify(execFile)('python3', ['-c', script], { env: bareEnvironment() });
    assert.equal(stdout.trim(), `${userId}#sleep`);
  });
});

describe('a taken stand-in port', () => {
  const folders: string[] = [];
  after(async () => {
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  });

  for (const setting of [PORT_SETTINGS.dynamodb, PORT_SETTINGS.sqsAndS3, PORT_SETTINGS.eventBridge]) {
    it(`is refused before anything starts, naming it and ${setting.name}`, async () => {
      const dataDir = await mkdtemp(path.join(tmpdir(), 'taken-port-'));
      folders.push(dataDir);
      const port = await freePipelinePort();
      const taken = port + setting.offset;
      const squatter = createServer();
      await new Promise<void>((resolve) => squatter.listen(taken, '127.0.0.1', resolve));
      const lines: string[] = [];
      try {
        await assert.rejects(startLocalPipeline(localPipelineConfig({ PORT: String(port), LOCAL_DATA_DIR: dataDir }, []), recordingOutput(lines)), (error: Error) => {
          assert.ok(error instanceof PortInUseError);
          assert.equal(error.message, `Port ${taken} (${setting.serves}) is in use: stop what runs there or set ${setting.name}`);
          return true;
        });
        assert.ok(!lines.some((line) => line.startsWith('Starting DynamoDB')), lines.join('\n'));
      } finally {
        await new Promise((resolve) => squatter.close(resolve));
      }
    });
  }
});

describe('the stand-in port settings', () => {
  const standInPorts = (env: NodeJS.ProcessEnv) => localPipelineConfig(env, []).standInPorts;

  it('sit right above PORT, each movable on its own, and are free ports with PORT=0', () => {
    assert.deepEqual(standInPorts({}), { dynamodb: 3001, sqsAndS3: 3002, eventBridge: 3003 });
    assert.deepEqual(standInPorts({ PORT: '8000', LOCAL_SQS_S3_PORT: '9000', LOCAL_EVENTBRIDGE_PORT: '9001' }), { dynamodb: 8001, sqsAndS3: 9000, eventBridge: 9001 });
    assert.deepEqual(standInPorts({ PORT: '0' }), { dynamodb: 0, sqsAndS3: 0, eventBridge: 0 });
  });

  it('are refused when two ports are the same, or PORT leaves no room above it', () => {
    assert.throws(() => standInPorts({ LOCAL_DYNAMODB_PORT: '3000' }), InvalidLocalSettingError);
    assert.throws(
      () => standInPorts({ LOCAL_EVENTBRIDGE_PORT: '3002' }),
      /: PORT, LOCAL_DYNAMODB_PORT, LOCAL_SQS_S3_PORT and LOCAL_EVENTBRIDGE_PORT must differ, not 3000, 3001, 3002 and 3002$/,
    );
    assert.throws(() => standInPorts({ PORT: '65534' }), /PORT 65534 leaves no port for LOCAL_SQS_S3_PORT \(PORT\+2\): set a lower PORT, or set LOCAL_SQS_S3_PORT/);
    assert.throws(() => standInPorts({ PORT: '65533' }), /PORT 65533 leaves no port for LOCAL_EVENTBRIDGE_PORT \(PORT\+3\)/);
  });
});
