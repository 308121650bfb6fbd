#!/usr/bin/env node
// `npm run build`: what the image runs, made once.
//   1. tsc -p tsconfig.build.json   src/**/*.ts → dist/**/*.js (CommonJS, source maps)
//   2. every other file under src/ (the settings page's html/css/js) copied beside it
//   3. the workflow code bundled once (bundleWorkflowCode) → dist/workflow-bundle.js (and
//      dist/workflow-bundle-traced.js, with the tracing interceptors), which a worker started
//      from dist/ loads (workflowBundle: { codePath }) instead of running webpack at every start.
// Run with `node dist/main.js` (`npm start`), `node dist/api-server.js`, `node dist/worker.js`
// (npm run api:prod / worker:prod).
// --if-stale (`npm start`'s prestart): does nothing when dist/ was built from exactly these sources
// (a hash of src/, the tsconfigs, package-lock.json and this script, kept in dist/.build-hash).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
// --out-dir DIR: build somewhere else than dist/ (the stack tests build a private copy inside the
// project, so node_modules resolves and no dist/ of the developer's is overwritten).
const outArg = process.argv.indexOf('--out-dir');
const dist = outArg > 0 ? resolve(process.argv[outArg + 1]) : join(root, 'dist');
const require = createRequire(import.meta.url);

/** Every input of the build, hashed: a changed, added or removed file changes it. */
const sourceHash = () => {
  const hash = createHash('sha256');
  const add = (file) => hash.update(relative(root, file)).update('\0').update(readFileSync(file)).update('\0');
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const file = join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      else add(file);
    }
  };
  walk(src);
  for (const name of ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json', 'scripts/build.mjs']) if (existsSync(join(root, name))) add(join(root, name));
  return hash.digest('hex');
};
const hashFile = join(dist, '.build-hash');
const hash = sourceHash();
if (process.argv.includes('--if-stale') && existsSync(hashFile) && readFileSync(hashFile, 'utf8') === hash) {
  console.log(`[build] ${relative(root, dist) || '.'}/ is up to date with src/`);
  process.exit(0);
}
const t0 = Date.now();
const step = (what) => console.log(`[build] ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

rmSync(dist, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', dist], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
step('compiled src/ to dist/');

let assets = 0;
const copyAssets = (dir) => {
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    if (statSync(file).isDirectory()) copyAssets(file);
    else if (!name.endsWith('.ts')) {
      const to = join(dist, relative(src, file));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(file, to);
      assets++;
    }
  }
};
copyAssets(src);
step(`copied ${assets} non-TypeScript files`);

// The compiled module, so the bundle is made with exactly the options the worker would use.
const { writeWorkflowBundle } = require(join(dist, 'temporal', 'workflowBundle.js'));
const quiet = { trace() {}, debug() {}, info() {}, log() {}, warn: console.warn, error: console.error };
// Two: without the tracing interceptors (loaded by default) and with them (loaded when tracing is on).
for (const [name, tracing] of [
  ['workflow-bundle.js', false],
  ['workflow-bundle-traced.js', true],
]) {
  const out = join(dist, name);
  const bytes = await writeWorkflowBundle(out, quiet, { tracing });
  step(`bundled the workflow code into ${relative(root, out)} (${(bytes / 1024).toFixed(0)} KiB)`);
}
writeFileSync(hashFile, hash); // last: a build that failed half-way is redone next time
