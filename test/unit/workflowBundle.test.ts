import { execFileSync } from 'node:child_process';
import { loaderFlags } from '../../src/temporal/bundleInChild';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/config';
import { BUILT_TRACED_WORKFLOW_BUNDLE, BUILT_WORKFLOW_BUNDLE, workflowBundleOptions, workflowCode } from '../../src/temporal/workflowBundle';

test('when running from the TypeScript sources with WORKFLOW_BUNDLE unset, then the worker bundles src/workflows at start', () => {
  expect(BUILT_WORKFLOW_BUNDLE).toMatch(/src\/workflow-bundle\.js$/); // never written: `npm run build` writes dist/
  expect(workflowCode(undefined)).toEqual({ workflowsPath: require.resolve('../../src/workflows') });
});

test('when WORKFLOW_BUNDLE names a file, then the worker loads it (no webpack); a missing file stops start-up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rr-bundle-'));
  try {
    const file = join(dir, 'workflow-bundle.js');
    writeFileSync(file, '/* bundle */');
    expect(workflowCode(file)).toEqual({ workflowBundle: { codePath: file } });
    expect(() => workflowCode(join(dir, 'missing.js'))).toThrow(ConfigError);
    expect(() => workflowCode(join(dir, 'missing.js'))).toThrow(/WORKFLOW_BUNDLE=.*missing\.js: no such file.*npm run build/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('when tracing is off, then the workflow code is bundled without the OpenTelemetry workflow interceptors, and with them when it is on', () => {
  expect(workflowBundleOptions({ tracing: false }).workflowInterceptorModules).toEqual([]);
  expect(workflowBundleOptions({ tracing: true }).workflowInterceptorModules).toEqual([require.resolve('../../src/workflows/interceptors')]);
  expect(workflowBundleOptions().workflowInterceptorModules).toHaveLength(1); // tests and replays bundle the traced variant
  expect(BUILT_TRACED_WORKFLOW_BUNDLE).toMatch(/src\/workflow-bundle-traced\.js$/);
  expect(workflowCode(undefined, true)).toEqual({ workflowsPath: require.resolve('../../src/workflows') }); // not built: bundled at start
});

test('when a worker runs from the sources under tsx (npm start), then webpack runs in a child process and the worker gets the whole bundle, once per tracing choice', () => {
  // The service's own loader (tsx), as `npm start` runs it; the script reports what the worker would load.
  const script = `
    const { bundleInChild } = require('./src/temporal/bundleInChild');
    Promise.all([bundleInChild(false), bundleInChild(false)]).then(([a, b]) => {
      console.log(JSON.stringify({ same: a === b, length: a.code.length, workflows: ['deliverBatch', 'deliverWebhook', 'drainEndpoint', 'purgeOldData'].every((w) => a.code.includes(w)), otel: /@opentelemetry/.test(a.code), pid: process.pid }));
    });`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: join(__dirname, '..', '..'), encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  const r = JSON.parse(out.trim().split('\n').pop()!);
  expect(r).toMatchObject({ same: true, workflows: true, otel: false });
  expect(r.length).toBeGreaterThan(100_000);
}, 120_000);

test("when the child that bundles is started, then it gets the parent's loader flags only (never its -e script or profiling flags)", () => {
  expect(loaderFlags(['--import', 'tsx', '-e', 'spawnAgain()', '--cpu-prof', '--cpu-prof-dir=/tmp/p', '--require=./x.js', '-r', 'y'])).toEqual([
    '--import',
    'tsx',
    '--require=./x.js',
    '-r',
    'y',
  ]);
  expect(loaderFlags(['--experimental-vm-modules', '--no-warnings=ExperimentalWarning'])).toEqual([]);
});
