import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { newAccount, startHarness, type Harness } from '../helpers/apiHarness';
import { LoopbackOnlyGuard } from '../helpers/loopbackGuard';
import { Receiver } from '../helpers/receiver';

/**
 * Property-based API fuzzing: schemathesis reads the served /openapi.json and checks the running
 * service against it (every check, examples + coverage + fuzzing + stateful phases), once with
 * an account key and once with the admin token. Seeded and bounded, so a run is reproducible
 * and takes a few minutes. Installed by `npm test`'s pretest (scripts/provision-test-deps.mjs).
 */
const ROOT = resolve(__dirname, '..', '..');
const VERSION = '4.32.5';
const ST_DIR = join(ROOT, '.tools', `schemathesis-${VERSION}`);
const SEED = Number(process.env.FUZZ_SEED ?? 20251127);
const MAX_EXAMPLES = Number(process.env.FUZZ_MAX_EXAMPLES ?? 10);

let h: Harness;
let receiver: Receiver;
const accounts: Record<string, { id: string; apiKey: string }> = {};
const reportRoot = mkdtempSync(join(process.env.FUZZ_REPORT_DIR ?? tmpdir(), 'rr-fuzz-'));

beforeAll(async () => {
  if (!existsSync(join(ST_DIR, '.installed'))) {
    throw new Error(`schemathesis ${VERSION} is not installed in ${ST_DIR}: run \`node scripts/provision-test-deps.mjs\` (npm test's pretest does), which needs python3 -m pip.`);
  }
  receiver = await new Receiver().start();
  // The abuse limits stay on (their code paths run, their headers are sent) but far above what
  // one fuzzing worker reaches: the ignored-auth checks alone would otherwise spend the loopback
  // address's failed-authentication budget within seconds and turn the rest of the run into 429s.
  // 429 itself is documented on every authenticated operation (test/api/rateLimits.test.ts reads it).
  const roomy = '1000000/1s';
  h = await startHarness(
    { RATE_LIMIT_API: roomy, RATE_LIMIT_SEND: roomy, RATE_LIMIT_AUTH_FAILURES: roomy, RATE_LIMIT_ADMIN: roomy, MAX_ENDPOINTS_PER_ACCOUNT: '100000' },
    { guard: (cfg) => new LoopbackOnlyGuard(cfg) },
  );
  // One paid account with an endpoint (at the loopback receiver) per run.
  for (const run of ['account-key', 'admin-token']) {
    accounts[run] = await newAccount(h);
    const ep = await h.call('POST', '/v1/endpoints', {
      token: accounts[run].apiKey,
      body: { url: receiver.url, eventTypes: ['referrer_added', 'referee_added', 'reward_unlocked'] },
    });
    if (ep.status !== 201) throw new Error(`endpoint creation failed: ${ep.status} ${JSON.stringify(ep.body)}`);
  }
}, 60_000);

afterAll(async () => {
  await h?.close();
  await receiver?.stop();
});

interface Run {
  code: number | null;
  output: string;
  ms: number;
}

function schemathesis(name: string, token: string, extraConfig: string): Promise<Run> {
  const dir = join(reportRoot, name);
  const config = join(reportRoot, `${name}.toml`);
  // Every check; all four phases; bounded examples per operation and stateful steps; a fixed seed.
  writeFileSync(
    config,
    [
      `seed = ${SEED}`,
      'workers = 1',
      'continue-on-failure = true',
      '[generation]',
      `max-examples = ${MAX_EXAMPLES}`,
      'database = "none"',
      '[phases.stateful]',
      'max-steps = 20',
      '[auth.openapi.bearer]',
      `bearer = "${token}"`,
      extraConfig,
    ].join('\n'),
  );
  const { python } = JSON.parse(readFileSync(join(ST_DIR, '.installed'), 'utf8')) as { python: string };
  const args = [
    '-m',
    'schemathesis.cli',
    '--config-file',
    config,
    'run',
    `${h.baseUrl}/openapi.json`,
    '--checks',
    'all',
    '--phases',
    'examples,coverage,fuzzing,stateful',
    '--report',
    'junit,ndjson',
    '--report-dir',
    dir,
    '--request-timeout',
    '30',
    '--no-color',
  ];
  const started = Date.now();
  return new Promise((ok, fail) => {
    const child = spawn(python, args, {
      cwd: reportRoot,
      env: {
        ...process.env,
        // schemathesis itself, and this folder for the hooks module SCHEMATHESIS_HOOKS names.
        PYTHONPATH: `${ST_DIR}:${__dirname}`,
        PYTHONDONTWRITEBYTECODE: '1',
        SCHEMATHESIS_HOOKS: 'schemathesis_hooks',
        RR_FUZZ_RECEIVER_URL: receiver.url,
        RR_FUZZ_ACCOUNT_ID: accounts[name].id,
        RR_FUZZ_BASE_URL: h.baseUrl,
        ...(name === 'admin-token' ? { RR_FUZZ_ADMIN_TOKEN: h.adminToken } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('error', fail);
    child.once('exit', (code) => {
      writeFileSync(join(reportRoot, `${name}.txt`), output);
      ok({ code, output, ms: Date.now() - started });
    });
  });
}

test.each([
  ['account-key', () => accounts['account-key'].apiKey, ''],
  // The admin acts for an account with ?accountId= on the account routes: always the test's own.
  ['admin-token', () => h.adminToken, () => `[parameters]\naccountId = "${accounts['admin-token'].id}"`],
] as const)(
  'when schemathesis fuzzes the API with the %s, then every check passes on every operation',
  async (name, token, extra) => {
    const run = await schemathesis(name, token(), typeof extra === 'function' ? extra() : extra);
    const summary = `schemathesis ${VERSION} (${name}, seed ${SEED}, ${Math.round(run.ms / 1000)} s; report in ${join(reportRoot, name)}):\n${run.output.slice(-20_000)}`;
    // The failures themselves, not a collapsed diff, in the test's output.
    if (run.code !== 0) throw new Error(`schemathesis exited with ${run.code}\n${summary}`);
    // Nothing the fuzzer did made the service POST anywhere but the loopback receiver.
    expect(receiver.requests.every((r) => r.path.startsWith('/webhooks'))).toBe(true);
  },
  600_000,
);
