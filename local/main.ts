import { localPipelineConfig } from './config';
import { processOutput } from './console-output';
import { startLocalPipeline } from './pipeline';

/**
 * `npm start`: runs the local pipeline until Ctrl-C or SIGTERM, then stops everything it started
 * (the DynamoDB Local JVM included).
 */

const output = processOutput();

function fail(error: unknown): never {
  process.stderr.write(`vital-pipeline: ${(error as Error).message ?? String(error)}\n`);
  process.exit(1);
}

try {
  const config = localPipelineConfig();
  const started = Date.now();
  const pipeline = await startLocalPipeline(config, output);
  output.plain(`Data folder: ${config.dataDir}`);
  output.plain(`Ready in ${((Date.now() - started) / 1000).toFixed(1)} s. Send a test event: npx vital-pipeline send --type daily.data.workouts.created`);
  output.plain(`Webhook endpoint: ${pipeline.webhookUrl}`);

  // npm and the terminal may both deliver one Ctrl-C (npm forwards what the process group got), so a
  // repeat within a second is the same request; a later one forces the exit (the JVM is still killed).
  let stopRequestedAt: number | undefined;
  const stop = (signal: NodeJS.Signals) => {
    if (stopRequestedAt !== undefined) {
      if (Date.now() - stopRequestedAt < 1_000) return;
      process.stderr.write(`vital-pipeline: ${signal} again, exiting without waiting for a clean stop\n`);
      process.exit(130);
    }
    stopRequestedAt = Date.now();
    output.plain(`${signal}: stopping...`);
    pipeline.stop().then(
      () => {
        output.plain('Stopped.');
        process.exit(0);
      },
      fail,
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stop);
} catch (error) {
  fail(error);
}
