import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { publishEvent } from '../../src/services/publishEvent';
import type { Dispatcher } from '../../src/services/dispatcher';
import { startHarness, newAccount, participant, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor } from '../helpers/receiver';

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

async function paidAccountWithEndpoint() {
  const account = await newAccount(h);
  const ep = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } });
  expect(ep.status).toBe(201);
  return account;
}

const statuses = async (accountId: string) =>
  h.db.query<{ id: string; status: string }>('select id, status from deliveries where account_id = $1 order by id', [accountId]);

/** A dispatcher that "dies" before it starts anything, like a process killed right after the commit. */
const dyingDispatcher = { dispatchAll: async () => { throw new Error('process killed'); } } as unknown as Dispatcher;

test('when the API dies between storing an event and starting its workflow, then the retried publish and the reconciler deliver it exactly once', async () => {
  const account = await paidAccountWithEndpoint();
  const input = { accountId: account.id, eventType: 'referrer_added' as const, data: participant(1), idempotencyKey: 'crash-1' };

  await expect(publishEvent({ db: h.db, dispatcher: dyingDispatcher, maxPayloadBytes: 1e6 }, input)).rejects.toThrow('process killed');
  const [stored] = await statuses(account.id);
  expect(stored.status).toBe('pending'); // accepted durably, nothing started yet
  expect(receiver.byWebhookId(stored.id)).toHaveLength(0);

  // The caller never saw a 202 and retries with the same key: same ids, and the start happens now.
  const retried = await h.call('POST', '/v1/events', { body: input });
  expect(retried.status).toBe(202);
  expect(retried.body.deliveries.map((d: any) => d.id)).toEqual([stored.id]);
  // Even if the reconciler also runs, the workflow id keeps it to one start.
  await h.dispatcher.reconcileOnce(0);
  await waitFor(async () => ((await statuses(account.id))[0].status === 'delivered' ? true : undefined), 'delivery');
  await new Promise((r) => setTimeout(r, 500));
  expect(receiver.byWebhookId(stored.id)).toHaveLength(1);
});

test('when the caller never retries after such a crash, then the reconciler alone starts the delivery', async () => {
  const account = await paidAccountWithEndpoint();
  await expect(publishEvent({ db: h.db, dispatcher: dyingDispatcher, maxPayloadBytes: 1e6 }, { accountId: account.id, eventType: 'referrer_added', data: participant(2) })).rejects.toThrow();
  const [stored] = await statuses(account.id);

  expect(await h.dispatcher.reconcileOnce(0)).toBeGreaterThanOrEqual(1);

  await waitFor(async () => ((await statuses(account.id))[0].status === 'delivered' ? true : undefined), 'delivery');
  expect(receiver.byWebhookId(stored.id)).toHaveLength(1);
});

test('when the API dies after starting the workflow but before recording it, then reconciling does not start a second one', async () => {
  const account = await paidAccountWithEndpoint();
  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(3) } });
  const id = pub.body.deliveries[0].id;
  await waitFor(async () => ((await statuses(account.id))[0].status === 'delivered' ? true : undefined), 'delivery');
  await h.db.query('update deliveries set dispatched_series = 0 where id = $1', [id]); // the lost bookkeeping write

  await h.dispatcher.reconcileOnce(0);

  const [row] = await h.db.query<{ dispatched_series: number }>('select dispatched_series from deliveries where id = $1', [id]);
  expect(row.dispatched_series).toBe(1);
  await new Promise((r) => setTimeout(r, 1_000));
  expect(receiver.byWebhookId(id)).toHaveLength(1);
});

// A separate API process shares the database only on a real Postgres server (PGlite is in-process).
const realPostgres = process.env.TEST_DB_BACKEND === 'postgres' ? test : test.skip;

realPostgres('when the API process is SIGKILLed in the middle of a publishing burst, then every accepted event is delivered exactly once', async () => {
  const account = await paidAccountWithEndpoint();
  stopReconciler = h.dispatcher.startReconciler(500);
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

  await waitFor(async () => {
    const rows = await statuses(account.id);
    return rows.length === keys.length && rows.every((r) => r.status === 'delivered') ? true : undefined;
  }, 'every delivery to be delivered', 60_000);
  const rows = await statuses(account.id);
  const [{ n: events }] = await h.db.query<{ n: string }>('select count(*) as n from events where account_id = $1', [account.id]);
  expect(Number(events)).toBe(keys.length);
  for (const row of rows) expect(receiver.byWebhookId(row.id)).toHaveLength(1);
  expect(new Set([...answers.values()].flat())).toEqual(new Set(rows.map((r) => r.id)));
});

async function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => ok(port));
    });
  });
}

async function startApi(port: number): Promise<ChildProcess> {
  const root = resolve(__dirname, '..', '..');
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/api-server.ts'], {
    cwd: root,
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      DATABASE_URL: h.dbUrl!,
      ADMIN_TOKEN: h.adminToken,
      TEMPORAL_ADDRESS: process.env.RR_TEST_TEMPORAL_ADDRESS!,
      TEMPORAL_TASK_QUEUE: h.cfg.TEMPORAL_TASK_QUEUE,
      DESTINATION_ALLOW_CIDRS: '127.0.0.0/8',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) || undefined, 'the API process to listen', 30_000, 200);
  return child;
}
