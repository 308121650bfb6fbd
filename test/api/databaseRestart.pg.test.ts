import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { deliveryStatuses, paidAccountWithEndpoint, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { freePort } from '../helpers/processes';
import { Receiver, waitFor } from '../helpers/receiver';

// Fault injection: the application's Postgres server is restarted under load. It gets a cluster
// of its own (the shared test server keeps serving the other suites). api:postgres project only.
const script = resolve(__dirname, '..', '..', 'scripts', 'test-postgres.sh');
let env: NodeJS.ProcessEnv;
const pg = (cmd: 'start' | 'stop') => execFileSync('bash', [script, cmd], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });

let h: Harness;
let receiver: Receiver;
let stopReconciler: (() => Promise<void>) | undefined;

beforeAll(async () => {
  env = { ...process.env, PG_TEST_DIR: join(tmpdir(), `rr-dbrestart-${process.pid}`), PG_TEST_PORT: String(await freePort()) };
  const url = pg('start')
    .trim()
    .split('\n')
    .pop()!
    .replace(/^TEST_DATABASE_URL=/, '');
  h = await startHarness({}, { postgresServerUrl: url });
  receiver = await new Receiver().start();
  stopReconciler = h.reconciler.start(1_000);
});
afterAll(async () => {
  await stopReconciler?.();
  await receiver?.stop();
  await h?.close().catch(() => undefined);
  try {
    pg('stop');
  } finally {
    rmSync(env.PG_TEST_DIR!, { recursive: true, force: true });
  }
});

test('when the database restarts under load, then every event the platform got a 202 for is delivered', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const accepted = new Map<string, string>();
  // The platform's behaviour: retry with the same idempotency key until it gets a 202.
  const publish = async (i: number) => {
    for (;;) {
      const res = await h
        .call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(i), idempotencyKey: `k${i}` } })
        .catch(() => undefined);
      if (res?.status === 202) {
        accepted.set(`k${i}`, res.body.deliveries[0].id);
        return;
      }
      expect(res === undefined || res.status >= 500).toBe(true); // refused while the database is away, never half-accepted
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const first = Promise.all(Array.from({ length: 40 }, (_, i) => publish(i)));
  await waitFor(() => receiver.requests.length >= 10 || undefined, 'deliveries to flow');
  pg('stop'); // fast shutdown: open connections are cut mid-query
  const during = Promise.all(Array.from({ length: 20 }, (_, i) => publish(40 + i)));
  await new Promise((r) => setTimeout(r, 1_500));
  pg('start');
  await Promise.all([first, during]);
  await Promise.all(Array.from({ length: 20 }, (_, i) => publish(60 + i)));

  await waitFor(
    async () => {
      const rows = await deliveryStatuses(h, account.id).catch(() => []);
      return rows.length === 80 && rows.every((r) => r.status === 'delivered') ? true : undefined;
    },
    'every delivery to be delivered after the restart',
    120_000,
    250,
  );
  const received = new Set(receiver.requests.map((r) => String(r.headers['webhook-id'])));
  expect(received).toEqual(new Set(accepted.values()));
  const duplicates = receiver.requests.length - received.size;
  console.log(`[database restart] ${accepted.size} deliveries, ${duplicates} duplicate requests`);
  expect(duplicates).toBeLessThanOrEqual(5); // at-least-once around the restart (0 in 3 runs); receivers dedupe on webhook-id
}, 240_000);
