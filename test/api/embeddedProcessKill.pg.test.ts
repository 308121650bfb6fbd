import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deliveryStatuses, paidAccountWithEndpoint, participant, processEnv, startHarness, type Harness } from '../helpers/apiHarness';
import { freePort, spawnService, waitForHttp, type ServiceProcess } from '../helpers/processes';
import { Receiver, waitFor } from '../helpers/receiver';

// Runs in the api:postgres project only (*.pg.test.ts): the test reads the database the `npm start`
// process writes, which only a real Postgres server allows (PGlite lives inside one process).
// `npm start` sends first attempts from its own process (DISPATCH_INLINE): this kills it while
// those requests are in flight, and a second start must deliver everything.
let h: Harness;
let receiver: Receiver;
let dataDir: string;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  h = await startHarness({}, { worker: false }); // the database and the accounts; `npm start` does the rest
  receiver = await new Receiver().start();
  dataDir = mkdtempSync(join(tmpdir(), 'rr-embedded-kill-'));
});
afterAll(async () => {
  for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await receiver?.stop();
  await h?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function startEmbedded(port: number): Promise<ServiceProcess> {
  const p = spawnService('main', {
    ...processEnv(h, port),
    WORKFLOW_BUNDLE: process.env.RR_TEST_WORKFLOW_BUNDLE!,
    DATA_DIR: dataDir,
    // The attempt lease a dead process leaves is ATTEMPT_TIMEOUT + 30 s: the shortest that keeps the test real.
    ATTEMPT_TIMEOUT: '2s',
    DISPATCH_RECONCILE_INTERVAL: '1s',
    RETRY_INITIAL_INTERVAL: '1s',
    RETRY_JITTER: '0',
  });
  running.push(p);
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000);
  return p;
}

test('when the npm start process is SIGKILLed while its first attempts are in flight, then a restart delivers every accepted event, resending only what was in flight', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const port = await freePort();
  let first = await startEmbedded(port);

  // The receiver holds its answers: the first attempts stay in flight until the kill.
  let killedAt = Infinity;
  receiver.respond = () => (Date.now() < killedAt ? { status: 200, body: 'late', delayMs: 1_500 } : { status: 200, body: 'ok' });
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ accountId: account.id, eventType: 'referrer_added', data: participant(i), idempotencyKey: `kill-${i}` }),
    });
    expect(res.status).toBe(202);
    ids.push(...((await res.json()) as { deliveries: { id: string }[] }).deliveries.map((d) => d.id));
  }
  await waitFor(() => (receiver.requests.length >= 6 ? true : undefined), 'first attempts in flight', 20_000);
  killedAt = Date.now();
  first.child.kill('SIGKILL');
  await first.exited;
  await new Promise((r) => setTimeout(r, 300)); // a request on the wire at the kill arrives meanwhile
  const inFlight = new Set(receiver.requests.map((r) => String(r.headers['webhook-id'])));

  // What the dead process left: accepted, none recorded, each one in flight claimed under a lease by
  // its `inline-…` owner (beyond 8 batches of the account at once they waited in the process, unclaimed).
  const left = await h.db.query<{ id: string; status: string; workflow_id: string | null; attempt_lease_until: Date | null; dispatched_series: number }>(
    'select id, status, workflow_id, attempt_lease_until, dispatched_series from deliveries where account_id = $1',
    [account.id],
  );
  expect(left).toHaveLength(12);
  expect(left.every((r) => r.status === 'pending')).toBe(true);
  const inline = left.filter((r) => r.workflow_id?.startsWith('inline-'));
  expect(inline.length).toBeGreaterThan(0);
  expect(left.filter((r) => r.workflow_id !== null).length).toBeGreaterThanOrEqual(inFlight.size);
  for (const r of inline) {
    expect(new Date(r.attempt_lease_until!).getTime()).toBeGreaterThan(Date.now());
    expect(r.dispatched_series).toBe(0); // so the reconciler of the next start finds it
  }

  first = await startEmbedded(port);
  try {
    await waitFor(
      async () => ((await deliveryStatuses(h, account.id)).every((d) => d.status === 'delivered') ? true : undefined),
      'every delivery to be delivered after the restart (once the dead process lease ended)',
      90_000,
    );
  } finally {
    first.child.kill('SIGTERM');
    await first.exited;
  }
  console.log(
    `[embedded kill] 12 accepted; at the kill ${inFlight.size} requests in flight, ${inline.length} deliveries claimed by the process (inline), ${left.filter((r) => r.workflow_id?.startsWith('batch-')).length} by batch workflows; all delivered after the restart`,
  );
  // Each delivered; sent twice only if its request was in flight when the process died (at least once).
  for (const id of ids) {
    const got = receiver.byWebhookId(id).length;
    expect([id, got]).toEqual([id, inFlight.has(id) ? 2 : 1]);
  }
}, 150_000);
