#!/usr/bin/env node
// Installs the system packages the test suite drives for real: Debian's PostgreSQL server
// (api:postgres) and Chromium (e2e). Runs before `npm test`. Does nothing when they are
// there; installs them with apt-get when running as root on Debian; otherwise says what to
// install (the tests that need them then fail with the same advice).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const hasPostgres = () => existsSync('/usr/lib/postgresql') && readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/pg_ctl`));
const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const missing = [];
if (!process.env.TEST_DATABASE_URL && !hasPostgres()) missing.push('postgresql');
if (!existsSync(chromium)) missing.push('chromium', 'fonts-liberation');

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
