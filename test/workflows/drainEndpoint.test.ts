import { attemptsOf, getDelivery } from '../../src/db/deliveries';
import { healthOf } from '../../src/db/endpointHealth';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';
import { timeSkippingSuite } from '../helpers/timeSkipping';
import { waitFor } from '../helpers/receiver';

// Default schedule without jitter; the circuit opens after 3 failures in a row; probes at most hourly.
const suite = timeSkippingSuite({ CIRCUIT_OPEN_AFTER: '3', CIRCUIT_PROBE_MAX_INTERVAL: '1h' });
const HOUR = 3_600_000;
const sentAt = (req: { headers: Record<string, unknown> }) => Number(req.headers['webhook-timestamp']) * 1000;

test("when a probe succeeds after a 6-hour outage, then the drain sends every held delivery within a minute (not at each one's own next slot), each exactly once, and every retry workflow completes delivered without another request", async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const t0 = await suite.env.currentTimeMs();
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) ids.push((await storedDelivery(suite.db, account.id, endpoint.id, 'referrer_added', new Date(t0 - 30 + i))).deliveryId);
  // Down for 6 hours of the (skipped) clock, then back.
  suite.receiver.respond = (req) => (sentAt(req) - t0 < 6 * HOUR ? { status: 503 } : { status: 200 });

  const { retries } = await suite.deliverBatch(account.id, ids);

  for (const id of ids) expect(retries.get(id)?.status).toBe('delivered');
  const ok = suite.receiver.requests.filter((r) => sentAt(r) - t0 >= 6 * HOUR);
  // Exactly one successful request per delivery: the probe's, then the drain's.
  expect(ok.map((r) => r.headers['webhook-id']).sort()).toEqual([...ids].sort());
  const probeAt = Math.min(...ok.map(sentAt));
  const lastAt = Math.max(...ok.map(sentAt));
  expect(lastAt - probeAt).toBeLessThan(60_000);
  for (const id of ids) {
    const row = (await getDelivery(suite.db, account.id, id))!;
    expect(row.status).toBe('delivered');
    expect(row.attempt_count).toBe((await attemptsOf(suite.db, id)).length);
  }
  expect(suite.receiver.requests.length).toBe((await Promise.all(ids.map((id) => attemptsOf(suite.db, id)))).flat().length);
  expect((await healthOf(suite.db, [endpoint.id])).get(endpoint.id)?.state).toBe('healthy');
  const drain = await suite.env.client.workflow.getHandle(`drain-${endpoint.id}`).result();
  expect(drain.delivered).toBeGreaterThanOrEqual(ids.length - 1); // all but the probe, or all (the drain probed)
  console.log(`drain: probe → last of ${ids.length} held deliveries ${lastAt - probeAt} ms (skipped clock); ${suite.receiver.requests.length} requests in all`);
});

test('when an endpoint with few held deliveries (parked hours apart) comes back, then the drain, as the prober, notices within one probe interval and delivers them, with at most one request per probe interval during the outage', async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const t0 = await suite.env.currentTimeMs();
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await storedDelivery(suite.db, account.id, endpoint.id, 'referrer_added', new Date(t0 - 3 + i))).deliveryId);
  const backAt = t0 + 30 * HOUR; // by then each held delivery parks 12 h between wake-ups
  suite.receiver.respond = (req) => (sentAt(req) < backAt ? { status: 503 } : { status: 200 });

  const { retries } = await suite.deliverBatch(account.id, ids);

  for (const id of ids) expect(retries.get(id)?.status).toBe('delivered');
  if (process.env.DEBUG_PROBES)
    console.log(suite.receiver.requests.map((r) => `${((sentAt(r) - t0) / 60_000).toFixed(1)}m ${String(r.headers['webhook-id']).slice(-4)}`).join('\n'));
  const ok = suite.receiver.requests.filter((r) => sentAt(r) >= backAt);
  expect(ok.map((r) => r.headers['webhook-id']).sort()).toEqual([...ids].sort());
  // Probes at most hourly (CIRCUIT_PROBE_MAX_INTERVAL): the first after the recovery comes within the hour.
  expect(Math.max(...ok.map(sentAt)) - backAt).toBeLessThanOrEqual(HOUR + 60_000);
  const during = suite.receiver.requests
    .map(sentAt)
    .filter((t) => t < backAt)
    .sort((a, b) => a - b)
    .slice(3); // after the 3 first attempts
  for (let i = 1; i < during.length; i++) expect(during[i] - during[i - 1]).toBeGreaterThanOrEqual(10_000 - 1_000);
  expect(during.filter((t) => t - t0 > 2 * HOUR).length).toBeLessThanOrEqual(29); // hourly from the second hour on
  console.log(`prober: recovery → last of 3 delivered ${Math.max(...ok.map(sentAt)) - backAt} ms; ${during.length} probes in 30 h`);
});

test("when a retry workflow wakes while a drain holds its delivery, then it waits without a request, takes it back once the drain's lease has expired (a drain that died), and delivers it", async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  suite.receiver.respond = (_req, n) => ({ status: n === 1 ? 503 : 200 });
  let leaseUntil = 0;

  const result = await suite.deliver(deliveryId, async () => {
    // While it waits for its second attempt, a drain (that then dies) claims it for a minute.
    await waitFor(async () => ((await getDelivery(suite.db, account.id, deliveryId))!.attempt_count === 1 ? true : undefined), 'the first attempt');
    leaseUntil = (await suite.env.currentTimeMs()) + 60_000;
    await suite.db.query(`update deliveries set workflow_id = 'drain-gone', lease_until = $2 where id = $1`, [deliveryId, new Date(leaseUntil)]);
  });

  expect(result.status).toBe('delivered'); // not superseded: a drain never ends a retry workflow
  expect(suite.receiver.requests).toHaveLength(2);
  expect(sentAt(suite.receiver.requests[1])).toBeGreaterThanOrEqual(leaseUntil - 1_000); // nothing while the drain held it
  const row = (await getDelivery(suite.db, account.id, deliveryId))!;
  expect(row).toMatchObject({ status: 'delivered', attempt_count: 2, workflow_id: `delivery-${deliveryId}` });
  expect(row.held_wakeups).toBeGreaterThanOrEqual(1);
});
