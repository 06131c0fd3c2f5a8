#!/usr/bin/env node
// The `vital-pipeline` command: runs cli/main.ts through tsx, so no build step stands between a
// checkout and the CLI. Node 22 or later is required (svix 2 and fauxqs are ESM-only on node:sqlite).
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  process.stderr.write(`vital-pipeline: needs Node 22 or later, this is ${process.version} (run it through npx or npm, which use the project's Node)\n`);
  process.exit(1);
}
const { register } = await import('tsx/esm/api');
register();
await import('./main.ts');
