import { recordAttempts, type AttemptRecord } from '../../src/db/deliveries';
import { newId } from '../../src/domain/ids';
import { newAccount, startHarness, type Harness } from '../helpers/apiHarness';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({}, { worker: false });
});
afterAll(async () => {
  await h?.close();
});

async function endpointOf(token: string) {
  const ep = await h.call('POST', '/v1/endpoints', { token, body: { url: 'http://127.0.0.1:9/hooks', eventTypes: ['referrer_added'] } });
  expect(ep.status).toBe(201);
  return ep.body.id as string;
}

/** A finished delivery row to hang attempts on (no workflow: the harness runs no worker). */
async function delivery(accountId: string, endpointId: string): Promise<string> {
  const eventId = newId('evt');
  const id = newId('dlv');
  await h.db.query(`insert into events (id, account_id, event_type, body) values ($1, $2, 'referrer_added', '{}')`, [eventId, accountId]);
  await h.db.query(
    `insert into deliveries (id, account_id, event_id, endpoint_id, event_type, status, dispatched_series) values ($1, $2, $3, $4, 'referrer_added', 'delivered', 1)`,
    [id, accountId, eventId, endpointId],
  );
  return id;
}

/** Records attempts the way the delivery activities do, one statement per batch. */
async function seed(accountId: string, endpointId: string, attempts: Omit<AttemptRecord, 'deliveryId' | 'series'>[], perStatement = 4) {
  const records: AttemptRecord[] = [];
  for (const a of attempts) records.push({ ...a, deliveryId: await delivery(accountId, endpointId), series: 1 });
  for (let i = 0; i < records.length; i += perStatement) await recordAttempts(h.db, records.slice(i, i + perStatement));
}

const ok = (at: Date, ms: number) => ({ startedAt: at, durationMs: ms, statusCode: 200, delivered: true, outcome: '2xx' });
const none = { '3xx': 0, '4xx': 0, '5xx': 0, timeout: 0, network: 0, refused: 0 };

test('when an endpoint has a seeded attempt log, then its stats count every attempt, class and bucket exactly, and estimate p50/p95 from the histogram', async () => {
  const account = await newAccount(h);
  const endpointId = await endpointOf(account.apiKey);
  const otherEndpoint = await endpointOf(account.apiKey);
  const now = Date.now();
  const t1 = new Date(now - 50 * 60_000); // three buckets of the 1 h window
  const t2 = new Date(now - 20 * 60_000);
  const t3 = new Date(now - 5 * 60_000);
  await seed(account.id, endpointId, [
    ok(t1, 100),
    ok(t1, 100),
    ok(t1, 100),
    { startedAt: t1, durationMs: 50, statusCode: 404, error: 'HTTP 404', outcome: '4xx' },
    ok(t2, 200),
    ok(t2, 200),
    ok(t2, 200),
    { startedAt: t2, durationMs: 1000, statusCode: 503, error: 'HTTP 503', outcome: '5xx' },
    { startedAt: new Date(t2.getTime() + 1), durationMs: 1000, statusCode: 503, error: 'HTTP 503', outcome: '5xx' },
    { startedAt: t3, durationMs: 1, error: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9', outcome: 'network' },
    { startedAt: new Date(t3.getTime() + 5), durationMs: 5000, error: 'timed out after 5000 ms', outcome: 'timeout' },
    // Older than the 24 h window, and another endpoint's: not counted.
    ok(new Date(now - 25 * 3_600_000), 10),
  ]);
  await seed(account.id, otherEndpoint, [ok(t2, 10), ok(t3, 10)]);

  const res = await h.call('GET', `/v1/endpoints/${endpointId}/stats?window=1h`, { token: account.apiKey });

  expect(res.status).toBe(200);
  const s = res.body;
  expect(s).toMatchObject({ window: '1h', bucketSeconds: 60 });
  expect(s.buckets).toHaveLength(60);
  expect(new Date(s.to).getTime() - new Date(s.from).getTime()).toBe(3_600_000);
  // Response times of the 9 answered attempts: 50, 100×3, 200×3, 1000×2 (exact median 200, p95 1000).
  expect(s.totals).toEqual({
    attempts: 11,
    succeeded: 6,
    failed: 5,
    failedBy: { ...none, '4xx': 1, '5xx': 2, timeout: 1, network: 1 },
    successRate: 0.5455,
    p50Ms: 208,
    p95Ms: 1155,
  });
  const at = (t: Date) => s.buckets[Math.floor((t.getTime() - new Date(s.from).getTime()) / 60_000)];
  expect(at(t1)).toEqual({
    start: new Date(Math.floor(t1.getTime() / 60_000) * 60_000).toISOString(),
    attempts: 4,
    succeeded: 3,
    failed: 1,
    failedBy: { ...none, '4xx': 1 },
    successRate: 0.75,
    p50Ms: 107,
    p95Ms: 119,
  });
  expect(at(t2)).toMatchObject({ attempts: 5, succeeded: 3, failed: 2, failedBy: { ...none, '5xx': 2 }, successRate: 0.6 });
  expect(at(t3)).toMatchObject({ attempts: 2, succeeded: 0, failed: 2, successRate: 0, p50Ms: null, p95Ms: null });
  expect(s.buckets.reduce((n: number, b: { attempts: number }) => n + b.attempts, 0)).toBe(11);
  expect(s.buckets.filter((b: { attempts: number }) => b.attempts === 0).every((b: { successRate: null }) => b.successRate === null)).toBe(true);
  expect(s.lastError).toEqual({ at: new Date(t3.getTime() + 5).toISOString(), error: 'timed out after 5000 ms' });

  const day = (await h.call('GET', `/v1/endpoints/${endpointId}/stats?window=24h`, { token: account.apiKey })).body;
  expect([day.bucketSeconds, day.buckets.length, day.totals.attempts]).toEqual([900, 96, 11]);
  const week = (await h.call('GET', `/v1/endpoints/${endpointId}/stats?window=7d`, { token: account.apiKey })).body;
  expect([week.bucketSeconds, week.buckets.length, week.totals.attempts, week.totals.succeeded]).toEqual([3600, 168, 12, 7]);
  const defaultWindow = (await h.call('GET', `/v1/endpoints/${endpointId}/stats`, { token: account.apiKey })).body;
  expect(defaultWindow.window).toBe('24h');
});

test('when attempts of one minute are recorded in separate statements, then the rollup adds them up like one', async () => {
  const account = await newAccount(h);
  const endpointId = await endpointOf(account.apiKey);
  const t = new Date(Date.now() - 2 * 60_000);
  await seed(account.id, endpointId, [ok(t, 100), ok(t, 100), ok(t, 200), { startedAt: t, durationMs: 300, statusCode: 500, outcome: '5xx', error: 'HTTP 500' }], 1);
  const rows = await h.db.query<{ attempts: number; latency: number[] }>('select attempts, latency from endpoint_attempt_stats where endpoint_id = $1', [endpointId]);
  expect(rows).toHaveLength(1);
  expect(rows[0].attempts).toBe(4);
  expect(rows[0].latency.reduce((a, b) => a + b, 0)).toBe(4);
  const s = (await h.call('GET', `/v1/endpoints/${endpointId}/stats?window=1h`, { token: account.apiKey })).body;
  expect(s.totals).toMatchObject({ attempts: 4, succeeded: 3, failed: 1, successRate: 0.75 });
});

test('when an endpoint has no attempts, then every figure is zero or null', async () => {
  const account = await newAccount(h);
  const endpointId = await endpointOf(account.apiKey);
  const s = (await h.call('GET', `/v1/endpoints/${endpointId}/stats?window=7d`, { token: account.apiKey })).body;
  expect(s.totals).toEqual({ attempts: 0, succeeded: 0, failed: 0, failedBy: none, successRate: null, p50Ms: null, p95Ms: null });
  expect(s.lastError).toBeNull();
});

test("when another account asks for an endpoint's stats, then it is 404; an unknown window is 400 naming it", async () => {
  const owner = await newAccount(h);
  const other = await newAccount(h);
  const endpointId = await endpointOf(owner.apiKey);
  expect((await h.call('GET', `/v1/endpoints/${endpointId}/stats`, { token: other.apiKey })).status).toBe(404);
  expect((await h.call('GET', `/v1/endpoints/${endpointId}/stats?accountId=${other.id}`)).status).toBe(404);
  expect((await h.call('GET', `/v1/endpoints/${endpointId}/stats?accountId=${owner.id}`)).status).toBe(200);
  const bad = await h.call('GET', `/v1/endpoints/${endpointId}/stats?window=30d`, { token: owner.apiKey });
  expect(bad.status).toBe(400);
  expect(bad.body.errors).toEqual([expect.objectContaining({ path: 'query.window' })]);
});
