import { TestWorkflowEnvironment } from '@temporalio/testing';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { devServerExecutable } from '../src/temporal/binaries';
import { writeWorkflowBundle } from '../src/temporal/workflowBundle';
import { DELIVERY_SEARCH_ATTRIBUTES } from '../src/workflows/searchAttributes';
import { workflowBundleOptions } from '../src/temporal/worker';

/**
 * Once per `npm test`: one workflow bundle for every worker, one Temporal dev server for the
 * API suites, and a real Postgres for the `api:postgres` project.
 */
export default async function globalSetup(): Promise<void> {
  const dir = join(tmpdir(), `rr-webhooks-test-${process.pid}`);
  mkdirSync(dir, { recursive: true });

  if (process.env.RR_TEST_WORKFLOW_BUNDLE) {
    // A bundle made elsewhere, e.g. `npm run build`'s dist/workflow-bundle.js: the suites run against that file.
    process.env.RR_TEST_WORKFLOW_BUNDLE = resolve(process.env.RR_TEST_WORKFLOW_BUNDLE);
    if (!existsSync(process.env.RR_TEST_WORKFLOW_BUNDLE)) throw new Error(`RR_TEST_WORKFLOW_BUNDLE=${process.env.RR_TEST_WORKFLOW_BUNDLE}: no such file`);
    console.log(`\n[tests] workflow code: ${process.env.RR_TEST_WORKFLOW_BUNDLE} (RR_TEST_WORKFLOW_BUNDLE)`);
  } else {
    const bundlePath = join(dir, 'workflow-bundle.js');
    await writeWorkflowBundle(bundlePath, quietLogger);
    process.env.RR_TEST_WORKFLOW_BUNDLE = bundlePath;
  }

  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: devServerExecutable(),
      ip: '127.0.0.1',
      ui: false,
      log: { format: 'pretty', level: 'error' },
      searchAttributes: DELIVERY_SEARCH_ATTRIBUTES,
      extraArgs: ['--dynamic-config-value', 'matching.enableFairness=true'],
    },
  });
  (globalThis as Record<string, unknown>).__RR_TEMPORAL_ENV = env;
  process.env.RR_TEST_TEMPORAL_ADDRESS = env.address;

  process.env.TEST_DATABASE_URL ??= startPostgres();
}

function startPostgres(): string {
  const script = resolve(__dirname, '..', 'scripts', 'test-postgres.sh');
  const hasPostgres = ['/usr/lib/postgresql'].some((d) => existsSync(d));
  if (!hasPostgres) {
    if (process.env.CI) throw new Error('CI needs a real Postgres: .ci/run installs it; TEST_DATABASE_URL is unset and no PostgreSQL binaries were found.');
    console.warn('\n[tests] No PostgreSQL installed and TEST_DATABASE_URL unset: the api:postgres project will fail. `apt-get install postgresql` (or set TEST_DATABASE_URL).\n');
    return '';
  }
  const out = execFileSync('bash', [script, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const last = out.trim().split('\n').pop() ?? '';
  const url = last.replace(/^TEST_DATABASE_URL=/, '');
  (globalThis as Record<string, unknown>).__RR_STARTED_POSTGRES = true;
  return url;
}

const quietLogger = { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} };
