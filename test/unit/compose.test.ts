import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { temporalServerDir } from '../helpers/temporalCluster';

/**
 * docker-compose.yml runs the Temporal server release CI tests (the stack test builds
 * scripts/provision-temporal-server.sh's DEFAULT_VERSION and runs it on Postgres), and its
 * dynamic config only uses keys that release knows. No Docker here: the compose file is read
 * as text, and the dynamic config is checked by that server binary's own validator.
 */
const ROOT = resolve(__dirname, '..', '..');
const compose = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
const testedVersion = /^DEFAULT_VERSION=v(\S+)$/m.exec(readFileSync(join(ROOT, 'scripts', 'provision-temporal-server.sh'), 'utf8'))![1];
const images = (repo: string) => [...compose.matchAll(new RegExp(`^\\s*image: ${repo}:(\\S+)$`, 'gm'))].map((m) => m[1]);

/** The inline `configs.temporal-dynamic-config.content` block, un-indented, `$$` as compose passes it. */
function dynamicConfig(): string {
  const lines = compose.split('\n');
  const start = lines.findIndex((l) => /^ {2}temporal-dynamic-config:$/.test(l));
  expect(lines[start + 1]).toBe('    content: |');
  const body: string[] = [];
  for (const l of lines.slice(start + 2)) {
    if (l.trim() !== '' && !l.startsWith('      ')) break;
    body.push(l.slice(6));
  }
  return body.join('\n').replaceAll('$$', '$');
}

test('when the compose file is read, then server and admin-tools run the Temporal release CI tests', () => {
  expect(images('temporalio/server')).toEqual([testedVersion]);
  expect(images('temporalio/admin-tools')).toEqual([testedVersion]);
  expect(images('temporalio/auto-setup')).toEqual([]); // deprecated
});

test('when the compose dynamic config is validated by that server release, then every key is known and well typed', () => {
  const text = dynamicConfig();
  expect(text).toMatch(/^system\.enableActivityEagerExecution:\n {2}- value: true$/m);
  expect(text).toMatch(/^matching\.enableFairness:\n {2}- value: true$/m);
  const dir = temporalServerDir();
  if (!dir) {
    if (process.env.CI) throw new Error('Temporal server not provisioned: run scripts/provision-temporal-server.sh (.ci/run does)');
    console.warn('[compose.test] scripts/provision-temporal-server.sh has not run: the dynamic config keys were not validated');
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'rr-dc-'));
  try {
    const file = join(tmp, 'rr-webhooks.yaml');
    writeFileSync(file, text);
    const out = execFileSync(join(dir, 'temporal-server'), ['validate-dynamic-config', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    // The validator exits 0 either way; it prints a `warning:` line per unknown key or bad value.
    expect(out.trim()).toBe(file);
    // …and it does catch mistakes (so the line above proves something):
    writeFileSync(file, 'matching.enableFairnes:\n  - value: true\n');
    expect(execFileSync(join(dir, 'temporal-server'), ['validate-dynamic-config', file], { encoding: 'utf8' })).toMatch(/warning: unregistered key "matching\.enablefairnes"/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
