import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { build, type Metafile } from 'esbuild';
import { BUCKET, QUEUES, TABLES } from '../functions/shared/resources';
import { formatNumber, type Row } from './report';
import { medianMeasurements } from './timing';

/**
 * Bundle size and module init time of the verifier and the worker, each against a bundle holding only
 * the AWS SDK client it writes with. Bundled with esbuild as `lib/constructs/pipeline-function.ts` has
 * `NodejsFunction` do it (CJS, minified with names kept, tree-shaken, node24, linked source map, run with
 * `--enable-source-maps`), once with the AWS SDK left external as the stack does, once bundled.
 */

const repositoryRoot = path.resolve(import.meta.dirname, '..');
/** Under the repository, so that an external `@aws-sdk/*` resolves from its node_modules, as from the runtime's. */
const outputRoot = path.join(repositoryRoot, 'bench', 'results', 'bundles');

interface BundlePair {
  readonly name: string;
  readonly entry: string;
  readonly baselineEntry: string;
  readonly baselineLabel: string;
  /** A size bound in KB, where the issue sets one. */
  readonly maxKilobytes?: number;
}

const PAIRS: readonly BundlePair[] = [
  {
    name: 'verifier',
    entry: 'functions/verifier.ts',
    baselineEntry: 'bench/baselines/sqs-only.ts',
    baselineLabel: 'SQS client only',
    maxKilobytes: 150,
  },
  {
    name: 'worker',
    entry: 'functions/worker.ts',
    baselineEntry: 'bench/baselines/dynamodb-only.ts',
    baselineLabel: 'DynamoDB client only',
  },
];

interface SdkPlacement {
  readonly label: string;
  readonly external: readonly string[];
}

const PLACEMENTS: readonly SdkPlacement[] = [
  { label: 'SDK external', external: ['@aws-sdk/*'] },
  { label: 'SDK bundled', external: [] },
];

/** Init-time samples per bundle; each is a fresh `node` process. */
const INIT_SAMPLING = { warmupRuns: 1, runs: 11 } as const;

interface BuiltBundle {
  readonly file: string;
  readonly bytes: number;
  readonly metafile: Metafile;
}

async function bundle(entry: string, outfile: string, external: readonly string[]): Promise<BuiltBundle> {
  const result = await build({
    entryPoints: [path.join(repositoryRoot, entry)],
    outfile,
    bundle: true,
    minify: true,
    keepNames: true,
    treeShaking: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    sourcemap: true,
    external: [...external],
    metafile: true,
    logLevel: 'error',
  });
  return { file: outfile, bytes: (await stat(outfile)).size, metafile: result.metafile };
}

/** Bytes in the bundle per package (project code under one name). */
function bytesByPackage(metafile: Metafile): Map<string, number> {
  const output = Object.values(metafile.outputs).find((candidate) => candidate.entryPoint)!;
  const sizes = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const name = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? '(project code)';
    sizes.set(name, (sizes.get(name) ?? 0) + bytesInOutput);
  }
  return sizes;
}

/** Packages a bundle leaves to be loaded at run time. */
function externalPackages(metafile: Metafile): Set<string> {
  const output = Object.values(metafile.outputs).find((candidate) => candidate.entryPoint)!;
  return new Set(output.imports.filter((imported) => imported.external && !imported.path.startsWith('node:')).map((imported) => imported.path));
}

const describeSizes = (sizes: Iterable<[string, number]>, count: number): string =>
  [...sizes]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, bytes]) => `${name} ${formatNumber(bytes / 1024)} KB`)
    .join(', ');

/** What the subject loads at init that the baseline does not: bundled packages, then external ones. */
function beyondBaseline(subject: Metafile, baseline: Metafile): string {
  const baselinePackages = bytesByPackage(baseline);
  const bundled = [...bytesByPackage(subject)].filter(([name]) => !baselinePackages.has(name));
  const baselineExternals = externalPackages(baseline);
  const external = [...externalPackages(subject)].filter((name) => !baselineExternals.has(name));
  return [describeSizes(bundled, 4), external.length ? `external ${external.join(', ')}` : '']
    .filter(Boolean)
    .join('; ');
}

/** What a Lambda container has in its environment before the handler module loads. */
const lambdaLikeEnvironment = (nodeOptions: string): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  AWS_REGION: 'us-east-1',
  NODE_OPTIONS: nodeOptions,
  // As the stack sets it by default (`traceSdkCalls`): the X-Ray SDK is not loaded.
  POWERTOOLS_TRACE_ENABLED: 'false',
  ...Object.fromEntries(
    [...Object.values(TABLES).map((table) => table.envVar), ...Object.values(QUEUES).flatMap((queue) => [queue.envVar, queue.deadLetterEnvVar]), BUCKET.envVar].map(
      (name) => [name, `bench-${name.toLowerCase()}`],
    ),
  ),
});

const REQUIRE_AND_TIME = "const start = performance.now(); require(process.argv[1]); process.stdout.write(String(performance.now() - start));";

/** Milliseconds a fresh `node` process spends in `require(file)`: Lambda's Init phase, less the runtime's own. */
async function moduleInitMs(file: string, nodeOptions: string): Promise<number> {
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', REQUIRE_AND_TIME, file], {
    env: lambdaLikeEnvironment(nodeOptions),
  });
  return Number(stdout);
}

const kilobytes = (bytes: number) => bytes / 1024;

async function measurePair(pair: BundlePair, placement: SdkPlacement): Promise<Row[]> {
  const where = `${pair.name}, ${placement.label}`;
  if (!existsSync(path.join(repositoryRoot, pair.entry))) {
    const notMeasured = `${pair.entry} does not exist yet`;
    return [
      { figure: `${where}: bundle size`, notMeasured, target: pair.maxKilobytes ? { on: 'value', bound: 'atMost', limit: pair.maxKilobytes } : undefined },
      { figure: `${where}: module init`, notMeasured, target: { on: 'ratio', bound: 'atMost', limit: 1.5 } },
    ];
  }
  const directory = path.join(outputRoot, placement.label.replaceAll(' ', '-').toLowerCase());
  await mkdir(directory, { recursive: true });
  const subject = await bundle(pair.entry, path.join(directory, `${pair.name}.js`), placement.external);
  const baseline = await bundle(pair.baselineEntry, path.join(directory, `${pair.name}-baseline.js`), placement.external);

  const withMaps = await medianMeasurements(
    { subject: () => moduleInitMs(subject.file, '--enable-source-maps'), baseline: () => moduleInitMs(baseline.file, '--enable-source-maps') },
    INIT_SAMPLING,
  );
  const withoutMaps = await medianMeasurements({ subject: () => moduleInitMs(subject.file, '') }, INIT_SAMPLING);

  return [
    {
      figure: `${where}: bundle size`,
      measured: { value: kilobytes(subject.bytes), unit: 'KB' },
      baseline: { value: kilobytes(baseline.bytes), unit: 'KB', label: pair.baselineLabel },
      target: pair.maxKilobytes ? { on: 'value', bound: 'atMost', limit: pair.maxKilobytes } : undefined,
      limitedBy: `largest parts: ${describeSizes(bytesByPackage(subject.metafile), 5)}`,
    },
    {
      figure: `${where}: module init`,
      measured: { value: withMaps.subject, unit: 'ms' },
      baseline: { value: withMaps.baseline, unit: 'ms', label: pair.baselineLabel },
      target: { on: 'ratio', bound: 'atMost', limit: 1.5 },
      limitedBy:
        `beyond the baseline its bundle holds (modules it imports on first use are held, not run, at init) ${beyondBaseline(subject.metafile, baseline.metafile)}; ` +
        `with NODE_OPTIONS=--enable-source-maps as the stack sets, without it ${formatNumber(withoutMaps.subject)} ms`,
    },
  ];
}

/** Size and init rows for each function under each placement of the SDK. */
export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const pair of PAIRS) for (const placement of PLACEMENTS) rows.push(...(await measurePair(pair, placement)));
  return rows;
}
