import { attemptsOf, getDelivery, recordAttempts } from '../../src/db/deliveries';
import { getEndpoint } from '../../src/db/endpoints';
import { healthOf, recordEndpointFailures } from '../../src/db/endpointHealth';
import { probeIntervalMs } from '../../src/domain/endpointGate';
import { scheduleFrom } from '../../src/services/workflowStartOptions';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';
import { waitFor } from '../helpers/receiver';
import { timeSkippingSuite } from '../helpers/timeSkipping';

// The default schedule without jitter (10 s × 3ⁿ, 12 h cap, 3-day window); the circuit opens
// after 3 failures in a row, probes every 10 s, 30 s, … up to 1 h.
const suite = timeSkippingSuite({ CIRCUIT_OPEN_AFTER: '3', CIRCUIT_PROBE_MAX_INTERVAL: '1h' });
const DAY = 86_400_000;

async function deliveries(n: number) {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const ids: string[] = [];
  // Distinct creation times: the oldest is the probe.
  const t0 = (await suite.env.currentTimeMs()) - n;
  for (let i = 0; i < n; i++) ids.push((await storedDelivery(suite.db, account.id, endpoint.id, 'referrer_added', new Date(t0 + i))).deliveryId);
  return { account, endpoint, ids };
}

/** Opens the endpoint's circuit as 3 failed attempts would have, now (the skipped clock); first probe in 10 s. */
async function openCircuit(endpointId: string) {
  const at = new Date(await suite.env.currentTimeMs());
  const [t] = await recordEndpointFailures(suite.db, [{ endpointId, at, count: 3, error: 'HTTP 503' }], 3, 10_000);
  expect(t.state).toBe('open');
  return at.getTime();
}

const sentAt = (req: { headers: Record<string, unknown> }) => Number(req.headers['webhook-timestamp']) * 1000;

test('when 25 deliveries to a dead endpoint fail their first attempt, then the circuit opens, the endpoint gets at most one probe per probe interval for 3 days, held wake-ups log no attempt, and every delivery still ends undeliverable with the window', async () => {
  const { account, endpoint, ids } = await deliveries(25);
  suite.receiver.respond = () => ({ status: 503, body: 'down' });
  const startedAt = await suite.env.currentTimeMs();

  const { batch, retries } = await suite.deliverBatch(account.id, ids);

  expect(batch).toMatchObject({ delivered: 0, retrying: 25 });
  for (const id of ids) expect(retries.get(id)?.status).toBe('undeliverable');
  const health = (await healthOf(suite.db, [endpoint.id])).get(endpoint.id)!;
  expect(health.state).toBe('open');
  expect(health.consecutive_failures).toBeGreaterThanOrEqual(25);

  // 25 first attempts at once, then one request per probe interval at most.
  const times = suite.receiver.requests.map(sentAt).sort((a, b) => a - b);
  const probes = times.slice(25);
  const schedule = scheduleFrom(suite.cfg);
  for (let i = 0; i < probes.length; i++) {
    const previous = i === 0 ? times[24] : probes[i - 1];
    // Probes are due on the schedule anchored at the streak's start: one that went out a moment late
    // (the prober's timer, then its activity) brings the next a moment closer, never a whole interval.
    expect(probes[i] - previous).toBeGreaterThanOrEqual(probeIntervalMs(schedule, i + 1, suite.cfg.CIRCUIT_PROBE_MAX_INTERVAL) - 3_000);
  }
  // ~6 probes to reach the 1 h cap, then at most one an hour: without the circuit it would be 25 × 14 = 350 requests.
  expect(probes.length).toBeGreaterThan(10);
  expect(probes.length).toBeLessThanOrEqual(6 + 73);
  expect(times[times.length - 1] - startedAt).toBeLessThanOrEqual(3 * DAY);

  // Only real requests are in the attempt log; held wake-ups are counted on the delivery.
  let logged = 0;
  let heldWakeups = 0;
  for (const id of ids) {
    const row = (await getDelivery(suite.db, account.id, id))!;
    logged += (await attemptsOf(suite.db, id)).length;
    heldWakeups += row.held_wakeups;
    expect(row.attempt_count).toBe((await attemptsOf(suite.db, id)).length);
  }
  expect(logged).toBe(suite.receiver.requests.length);
  expect(heldWakeups).toBeGreaterThan(25 * 5);
  const reasons = new Set(await Promise.all(ids.map(async (id) => (await getDelivery(suite.db, account.id, id))!.final_reason)));
  for (const r of reasons) expect(r).toMatch(/^retry window exhausted/);
  expect([...reasons].some((r) => /while the endpoint was unavailable \(endpoint circuit open since/.test(r!))).toBe(true);
  console.log(`circuit breaker: 25 deliveries, dead endpoint for 3 days: ${suite.receiver.requests.length} requests (${probes.length} probes), ${heldWakeups} held wake-ups`);
});

test('when the circuit is open and the endpoint is back, then the held deliveries send nothing before the probe, the probe closes the circuit, and every delivery is delivered exactly once', async () => {
  const { account, endpoint, ids } = await deliveries(10);
  const openedAt = await openCircuit(endpoint.id);
  suite.receiver.respond = () => ({ status: 200 });

  const { batch, retries } = await suite.deliverBatch(account.id, ids);

  expect(batch).toMatchObject({ delivered: 0, retrying: 10 }); // all held: the probe was not due yet
  for (const id of ids) expect(retries.get(id)?.status).toBe('delivered');
  expect(suite.receiver.requests).toHaveLength(10);
  expect(new Set(suite.receiver.requests.map((r) => r.headers['webhook-id']))).toEqual(new Set(ids));
  const times = suite.receiver.requests.map(sentAt).sort((a, b) => a - b);
  expect(times[0]).toBeGreaterThanOrEqual(openedAt + 10_000 - 1_000); // nothing before the probe was due
  for (const id of ids) {
    const row = (await getDelivery(suite.db, account.id, id))!;
    expect(row).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(row.held_wakeups).toBeGreaterThanOrEqual(1);
    expect(await attemptsOf(suite.db, id)).toHaveLength(1);
  }
  expect((await healthOf(suite.db, [endpoint.id])).get(endpoint.id)).toMatchObject({ state: 'healthy', consecutive_failures: 0, probe_owner: null });
});

test("when a delivery's own first attempt (no batch) meets an open circuit, then it is held without a request, and once the circuit closes its back-off starts from the first delay, not pushed by its held wake-ups", async () => {
  const { account, endpoint, ids } = await deliveries(2);
  const [deliveryId, otherId] = ids;
  const openedAt = await openCircuit(endpoint.id);
  // Its first real attempt fails once, then the receiver accepts.
  suite.receiver.respond = (_req, n) => ({ status: n === 1 ? 503 : 200 });

  const result = await suite.deliver(deliveryId, async () => {
    // While it is held (the clock stands still until the test awaits the result), another
    // delivery's 2xx closes the circuit, as any success does.
    await waitFor(async () => ((await getDelivery(suite.db, account.id, deliveryId))!.held_wakeups >= 1 ? true : undefined), 'the first wake-up to be held');
    expect(suite.receiver.requests).toHaveLength(0);
    await recordAttempts(suite.db, [{ deliveryId: otherId, series: 1, startedAt: new Date(await suite.env.currentTimeMs()), durationMs: 5, statusCode: 200, delivered: true }]);
  });

  expect(result.status).toBe('delivered');
  const [first, second] = suite.receiver.requests.map(sentAt);
  expect(first).toBeGreaterThanOrEqual(openedAt + 10_000 - 1_000); // the first wake-up was held: no request before its hold ended
  const row = (await getDelivery(suite.db, account.id, deliveryId))!;
  expect(row.held_wakeups).toBe(1);
  expect(row.attempt_count).toBe(2);
  // Its first real attempt failed: the next came one initial interval (10 s) later, as after any
  // delivery's attempt 1 (the held wake-up would have made it 30 s).
  expect(second - first).toBeGreaterThanOrEqual(10_000 - 1_000);
  expect(second - first).toBeLessThan(30_000 - 1_000);
});

test('when a probe gets 410 Gone, then the endpoint is disabled, the probe delivery is undeliverable and the held ones end cancelled without a request', async () => {
  const { account, endpoint, ids } = await deliveries(5);
  await openCircuit(endpoint.id);
  suite.receiver.respond = () => ({ status: 410 });

  const { retries } = await suite.deliverBatch(account.id, ids);

  expect(suite.receiver.requests).toHaveLength(1);
  const probeId = String(suite.receiver.requests[0].headers['webhook-id']);
  expect(retries.get(probeId)?.status).toBe('undeliverable');
  expect((await getDelivery(suite.db, account.id, probeId))?.final_reason).toMatch(/410/);
  for (const id of ids.filter((x) => x !== probeId)) expect((await getDelivery(suite.db, account.id, id))?.status).toBe('cancelled');
  expect((await getEndpoint(suite.db, account.id, endpoint.id))?.enabled).toBe(false);
});
