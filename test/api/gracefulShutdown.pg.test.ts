import { attemptsOf } from '../../src/db/deliveries';
import { deliveryStatuses, paidAccountWithEndpoint, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { freePort, spawnService, waitForHttp } from '../helpers/processes';
import { Receiver, waitFor } from '../helpers/receiver';

// Separate processes share the database only on a real Postgres server (api:postgres project).
let h: Harness;
let receiver: Receiver;
beforeAll(async () => {
  h = await startHarness({}, { worker: false });
  receiver = await new Receiver().start();
});
afterAll(async () => {
  await receiver?.stop();
  await h?.close();
});

const serviceEnv = () => ({
  DATABASE_URL: h.dbUrl!,
  ADMIN_TOKEN: h.adminToken,
  TEMPORAL_ADDRESS: process.env.RR_TEST_TEMPORAL_ADDRESS!,
  TEMPORAL_TASK_QUEUE: h.cfg.TEMPORAL_TASK_QUEUE,
  DESTINATION_ALLOW_CIDRS: '127.0.0.0/8',
  WORKER_METRICS_PORT: '0',
});

test('when the worker gets SIGTERM during an attempt, then it finishes that attempt, exits cleanly, and another worker completes the delivery without resending', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  receiver.respond = () => ({ status: 200, body: 'slow ok', delayMs: 3_000 });
  const worker = spawnService('worker', serviceEnv());
  await waitFor(() => worker.output().includes('worker.running') || undefined, 'worker to start', 30_000);

  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant() } });
  const id = pub.body.deliveries[0].id;
  await waitFor(() => receiver.requests.length === 1 || undefined, 'the attempt to reach the receiver', 30_000);
  const signalledAt = Date.now();
  worker.child.kill('SIGTERM');

  expect(await worker.exited).toBe(0);
  expect(Date.now() - signalledAt).toBeLessThan(25_000); // bounded by shutdownGraceTime (20 s) plus clean-up
  expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(2_000); // it waited for the in-flight attempt
  expect(worker.output()).toContain('worker.stopped');
  const attempts = await attemptsOf(h.db, id);
  expect(attempts.map((a) => a.status_code)).toEqual([200]); // the attempt finished and was logged

  const next = spawnService('worker', serviceEnv());
  try {
    await waitFor(async () => ((await deliveryStatuses(h, account.id))[0].status === 'delivered' ? true : undefined), 'the delivery to complete', 30_000);
  } finally {
    next.child.kill('SIGTERM');
    await next.exited;
  }
  expect(receiver.requests).toHaveLength(1);
});

test('when the API gets SIGTERM under load, then accepted requests complete, it exits cleanly and every 202 is stored', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const port = await freePort();
  const api = spawnService('api-server', { ...serviceEnv(), PORT: String(port) });
  await waitForHttp(`http://127.0.0.1:${port}/healthz`);

  const accepted: string[] = [];
  const failures: string[] = [];
  let signalled = false;
  const publishes = Array.from({ length: 40 }, async (_, i) => {
    await new Promise((r) => setTimeout(r, i * 5));
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ accountId: account.id, eventType: 'referrer_added', data: participant(i) }),
      });
      if (res.status === 202) accepted.push(((await res.json()) as { id: string }).id);
      else failures.push(`HTTP ${res.status}`);
    } catch {
      // refused after close: fine, the caller retries elsewhere
    }
    if (!signalled && accepted.length >= 5) {
      signalled = true;
      api.child.kill('SIGTERM');
    }
  });
  await Promise.all(publishes);
  const code = await api.exited;

  expect(signalled).toBe(true);
  expect(code).toBe(0);
  expect(failures).toEqual([]); // nothing answered with an error while shutting down
  const stored = await h.db.query<{ id: string }>('select id from events where account_id = $1', [account.id]);
  expect(stored.map((r) => r.id).sort()).toEqual(expect.arrayContaining(accepted.sort()));
  expect(api.output()).toContain('api.stopping');
});
