import { newAccount, processEnv, startHarness, type Harness } from '../helpers/apiHarness';
import { freePort, spawnService, waitForHttp, type ServiceProcess } from '../helpers/processes';
import { Receiver, waitFor } from '../helpers/receiver';

/**
 * The abuse limits hold across API processes: two real `src/api-server.ts` processes on one
 * Postgres share every budget through the rate_limits table (api:postgres only: PGlite serves
 * one process). With per-process counters each of these would let twice as much through.
 */
const ENV = {
  RATE_LIMIT_API: '6/30s',
  RATE_LIMIT_SEND: '2/1m',
  RATE_LIMIT_AUTH_FAILURES: '3/1m',
  TRUSTED_PROXY_HOPS: '1',
  MAX_ENDPOINTS_PER_ACCOUNT: '3',
};

let h: Harness;
let receiver: Receiver;
const apis: { proc: ServiceProcess; base: string }[] = [];

beforeAll(async () => {
  receiver = await new Receiver().start();
  h = await startHarness(); // the database, and a worker on the processes' task queue
  for (let i = 0; i < 2; i++) {
    const port = await freePort();
    const proc = spawnService('api-server', { ...ENV, ...processEnv(h, port) });
    apis.push({ proc, base: `http://127.0.0.1:${port}` });
  }
  await Promise.all(apis.map((a) => waitForHttp(`${a.base}/healthz`, 60_000)));
}, 120_000);

afterAll(async () => {
  for (const a of apis) a.proc.child.kill('SIGTERM');
  await Promise.all(apis.map((a) => a.proc.exited));
  await h?.close();
  await receiver?.stop();
});

let nextAddress = 1;
const address = () => `198.51.100.${nextAddress++}`;

async function call(n: number, method: string, path: string, token: string | null, from: string, body?: unknown) {
  const headers: Record<string, string> = { 'x-forwarded-for': from };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(apis[n % 2].base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json().catch(() => undefined)) as any, headers: res.headers };
}

test('when one API key alternates between two API processes, then they count against one RATE_LIMIT_API budget', async () => {
  const a = await newAccount(h);
  const from = address();
  const remaining: string[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await call(i, 'GET', '/v1/endpoints', a.apiKey, from);
    expect([i, res.status]).toEqual([i, 200]);
    remaining.push(res.headers.get('ratelimit-remaining')!);
  }
  expect(remaining).toEqual(['5', '4', '3', '2', '1', '0']);
  for (const n of [0, 1]) {
    const res = await call(n, 'GET', '/v1/endpoints', a.apiKey, from);
    expect([n, res.status, res.body.code]).toEqual([n, 429, 'rate_limited']);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(res.body.detail).toContain('RATE_LIMIT_API');
  }
  const [row] = await h.db.query<{ points: number }>(`select points from rate_limits where key like 'rl_api:key:%' order by points desc limit 1`);
  expect(row.points).toBeGreaterThanOrEqual(7);
}, 60_000);

test('when an account sends test events through both processes, then RATE_LIMIT_SEND lets 2 through in all and its receiver gets exactly 2', async () => {
  const a = await newAccount(h);
  const from = address();
  const path = `/rl-pg-${a.id}`;
  const ep = await call(0, 'POST', `/v1/endpoints?accountId=${a.id}`, h.adminToken, from, { url: `${receiver.url}${path}`, eventTypes: ['referrer_added'] });
  expect(ep.status).toBe(201);
  const results = [];
  for (let i = 0; i < 4; i++) results.push(await call(i, 'POST', `/v1/endpoints/${ep.body.id}/test`, a.apiKey, from, {}));
  expect(results.map((r) => r.status)).toEqual([202, 202, 429, 429]);
  for (const r of results.slice(2)) expect(r.body.detail).toContain('RATE_LIMIT_SEND');
  await waitFor(() => (receiver.requests.filter((r) => r.path === `/webhooks${path}`).length >= 2 ? true : undefined), 'both test events to arrive');
  await new Promise((r) => setTimeout(r, 1000));
  expect(
    receiver.requests
      .filter((r) => r.path === `/webhooks${path}`)
      .map((r) => r.headers['webhook-id'])
      .sort(),
  ).toEqual(
    results
      .slice(0, 2)
      .map((r) => r.body.deliveryId)
      .sort(),
  );
}, 60_000);

test('when one address fails authentication on both processes, then the failures add up: the 4th, on either, is a 429, and the process that saw it refuses the address even with a valid key', async () => {
  const a = await newAccount(h);
  const from = address();
  for (let i = 0; i < 3; i++) expect([i, (await call(i, 'GET', '/v1/account', `rrk_guess_${i}`, from)).status]).toEqual([i, 401]);
  const over = await call(3, 'GET', '/v1/account', 'rrk_guess_3', from);
  expect([over.status, over.body.code]).toEqual([429, 'rate_limited']);
  expect(over.body.detail).toContain('RATE_LIMIT_AUTH_FAILURES');
  expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(30);
  expect((await call(3, 'GET', '/v1/account', a.apiKey, from)).status).toBe(429);
  // The other process: its next failure is over the shared budget too.
  expect((await call(0, 'GET', '/v1/account', 'rrk_guess_4', from)).status).toBe(429);
  expect((await call(0, 'GET', '/v1/account', a.apiKey, from)).status).toBe(429);
  // Another address is unaffected on both.
  const other = address();
  for (const n of [0, 1]) expect((await call(n, 'GET', '/v1/account', a.apiKey, other)).status).toBe(200);
}, 60_000);

test('when endpoints are created concurrently through both processes, then the account still ends with MAX_ENDPOINTS_PER_ACCOUNT of them', async () => {
  const a = await newAccount(h);
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      call(i, 'POST', `/v1/endpoints?accountId=${a.id}`, h.adminToken, address(), { url: `${receiver.url}/cap-${i}`, eventTypes: ['referrer_added'] }),
    ),
  );
  expect(results.map((r) => r.status).sort()).toEqual([201, 201, 201, 409, 409, 409, 409, 409, 409, 409]);
  expect(results.find((r) => r.status === 409)!.body.code).toBe('endpoint_limit_reached');
  expect(await h.db.query('select 1 from endpoints where account_id = $1 and deleted_at is null', [a.id])).toHaveLength(3);
}, 60_000);
