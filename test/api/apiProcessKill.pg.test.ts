import type { ChildProcess } from 'node:child_process';
import { deliveryStatuses, paidAccountWithEndpoint, participant, processEnv, startHarness, type Harness } from '../helpers/apiHarness';
import { freePort, spawnService, waitForHttp } from '../helpers/processes';
import { Receiver, waitFor } from '../helpers/receiver';

// Runs in the api:postgres project only (*.pg.test.ts): a separate API process can share the
// database only on a real Postgres server; PGlite lives inside one process.
let h: Harness;
let receiver: Receiver;
let stopReconciler: (() => Promise<void>) | undefined;

beforeAll(async () => {
  h = await startHarness();
  receiver = await new Receiver().start();
});
afterAll(async () => {
  await stopReconciler?.();
  await receiver?.stop();
  await h?.close();
});

const statuses = (accountId: string) => deliveryStatuses(h, accountId);

test('when the API process is SIGKILLed in the middle of a publishing burst, then every accepted event is delivered exactly once', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  stopReconciler = h.reconciler.start(500);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const keys = Array.from({ length: 80 }, (_, i) => `burst-${i}`);
  const answers = new Map<string, string[]>();

  const publish = async (key: string, i: number) => {
    try {
      const res = await fetch(`${base}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ accountId: account.id, eventType: 'referrer_added', data: participant(i), idempotencyKey: key }),
      });
      if (res.status !== 202) return false;
      const body = (await res.json()) as { deliveries: { id: string }[] };
      const ids = body.deliveries.map((d) => d.id);
      const earlier = answers.get(key);
      if (earlier) expect(ids).toEqual(earlier);
      answers.set(key, ids);
      return true;
    } catch {
      return false; // connection refused or reset: the process is dead
    }
  };

  let api = await startApi(port);
  // Eight publishers in parallel; once 20 events are acknowledged the process is SIGKILLed
  // while the others are still in flight (before, during or after their commit).
  const firstRound: boolean[] = new Array(keys.length).fill(false);
  let next = 0;
  let acked = 0;
  const publisher = async () => {
    while (next < keys.length) {
      const i = next++;
      firstRound[i] = await publish(keys[i], i);
      if (firstRound[i] && ++acked === 20) api.kill('SIGKILL');
    }
  };
  await Promise.all(Array.from({ length: 8 }, publisher));
  expect(firstRound.filter(Boolean).length).toBeGreaterThan(0);
  expect(firstRound.filter((ok) => !ok).length).toBeGreaterThan(0); // the kill really cut requests off
  if (api.exitCode === null && api.signalCode === null) await new Promise((r) => api.once('exit', r));

  // The platform retries what was not acknowledged, with the same idempotency keys.
  api = await startApi(port);
  try {
    for (const [i, key] of keys.entries()) if (!firstRound[i]) expect(await publish(key, i)).toBe(true);
  } finally {
    api.kill('SIGTERM');
  }

  await waitFor(
    async () => {
      const rows = await statuses(account.id);
      return rows.length === keys.length && rows.every((r) => r.status === 'delivered') ? true : undefined;
    },
    'every delivery to be delivered',
    60_000,
  );
  const rows = await statuses(account.id);
  const [{ n: events }] = await h.db.query<{ n: string }>('select count(*) as n from events where account_id = $1', [account.id]);
  expect(Number(events)).toBe(keys.length);
  for (const row of rows) expect(receiver.byWebhookId(row.id)).toHaveLength(1);
  expect(new Set([...answers.values()].flat())).toEqual(new Set(rows.map((r) => r.id)));
});

async function startApi(port: number): Promise<ChildProcess> {
  const api = spawnService('api-server', processEnv(h, port));
  await waitForHttp(`http://127.0.0.1:${port}/healthz`);
  return api.child;
}
