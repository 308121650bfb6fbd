#!/usr/bin/env node
// Installs the system packages the test suite drives for real: Debian's PostgreSQL server
// (api:postgres) and Chromium (e2e). Runs before `npm test`. Does nothing when they are
// there; installs them with apt-get when running as root on Debian; otherwise says what to
// install (the tests that need them then fail with the same advice).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';

const hasPostgres = () => existsSync('/usr/lib/postgresql') && readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/pg_ctl`));
const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// `--no-browser`: for `npm run bench`, which needs Postgres and the Temporal server but no browser.
const browser = !process.argv.includes('--no-browser');
const missing = [];
if (!process.env.TEST_DATABASE_URL && !hasPostgres()) missing.push('postgresql');
if (browser && !existsSync(chromium)) missing.push('chromium', 'fonts-liberation');

if (missing.length) {
  const canApt = process.platform === 'linux' && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
  if (!canApt) {
    console.warn(`[provision] the tests need: ${missing.join(' ')} — install them (e.g. sudo apt-get install ${missing.join(' ')}), or set TEST_DATABASE_URL / CHROMIUM_PATH.`);
  } else {
    console.log(`[provision] installing ${missing.join(', ')} with apt-get …`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  }
}

// The multi-process stack test runs the official Temporal server on Postgres, built once from
// the Go module proxy (about 5 minutes the first time, cached in .tools/ afterwards).
const root = new URL('..', import.meta.url).pathname;
const serverScript = `${root}scripts/provision-temporal-server.sh`;
const hasGo = ['/usr/local/go/bin/go', '/usr/bin/go'].some((p) => existsSync(p)) || (process.env.PATH ?? '').split(':').some((d) => existsSync(`${d}/go`));
let built = false;
try {
  execFileSync('bash', [serverScript, '--check'], { stdio: 'ignore' });
  built = true;
} catch {
  /* not built yet */
}
if (!built) {
  if (!hasGo) {
    console.warn('[provision] Go is not installed: the multi-process stack test will be skipped (it needs scripts/provision-temporal-server.sh).');
  } else {
    console.log('[provision] building the Temporal server from the Go module proxy for the stack test (first time only, ~5 min) …');
    try {
      execFileSync('bash', [serverScript], { stdio: ['ignore', 'ignore', 'inherit'] });
    } catch (err) {
      if (process.env.CI) throw err;
      console.warn(`[provision] building the Temporal server failed (${err.message}); the stack test will be skipped.`);
    }
  }
}

// The API fuzz test (test/fuzz/schemathesis.test.ts) runs schemathesis, pinned, from PyPI into
// .tools/schemathesis-<version>/ with `pip install --target` (no venv needed, and PEP 668's
// externally-managed guard does not apply to --target). `python` in the marker file is the
// interpreter it was installed for; the test runs it with PYTHONPATH set to the folder.
const SCHEMATHESIS_VERSION = '4.32.5';
const stDir = `${root}.tools/schemathesis-${SCHEMATHESIS_VERSION}`;
if (!existsSync(`${stDir}/.installed`)) {
  const py = ['python3', 'python'].find((p) => {
    try {
      execFileSync(p, ['-m', 'pip', '--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
  if (!py) {
    const msg = '[provision] python3 -m pip not found: the schemathesis API fuzz test needs it (apt-get install python3-pip).';
    if (process.env.CI) throw new Error(msg);
    console.warn(msg);
  } else {
    console.log(`[provision] installing schemathesis ${SCHEMATHESIS_VERSION} from PyPI into ${stDir} …`);
    const partial = `${stDir}.partial`;
    rmSync(partial, { recursive: true, force: true });
    execFileSync(
      py,
      ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-warn-script-location', '--target', partial, `schemathesis==${SCHEMATHESIS_VERSION}`],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, PIP_ROOT_USER_ACTION: 'ignore' },
      },
    );
    const python = execFileSync(py, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    writeFileSync(`${partial}/.installed`, JSON.stringify({ version: SCHEMATHESIS_VERSION, python }) + '\n');
    rmSync(stDir, { recursive: true, force: true });
    renameSync(partial, stDir); // atomic: a half-installed copy is never mistaken for a cached one
  }
}
