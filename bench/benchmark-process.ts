import { pathToFileURL } from 'node:url';
import type { Row } from './report';

/**
 * Runs one benchmark module in a process of its own (see `isolation.ts`): imports the module named
 * on the command line, calls its `run()`, and sends the rows back over IPC.
 */
const modulePath = process.argv[2];
if (!modulePath || !process.send) throw new Error('usage: forked by bench/isolation.ts with a benchmark module path');
const benchmark = (await import(pathToFileURL(modulePath).href)) as { run(): Promise<Row[]> };
const rows = await benchmark.run();
process.send(rows, () => process.exit(0));
