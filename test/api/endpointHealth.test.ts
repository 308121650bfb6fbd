import { getDelivery, recordAttempts } from '../../src/db/deliveries';
import { getEndpoint, updateEndpoint } from '../../src/db/endpoints';
import { autoDisableIfDue, finishProbe, healthOf, recordEndpointFailures, takeProbeLease } from '../../src/db/endpointHealth';
import { newAccount, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';
import { Receiver, waitFor } from '../helpers/receiver';

// Runs once on PGlite and once on a real Postgres (the api:pglite and api:postgres projects).
let h: Harness;
let receiver: Receiver;
beforeAll(async () => {
  h = await startHarness({ CIRCUIT_OPEN_AFTER: '3' });
});
afterAll(async () => {
  await h?.close();
});
beforeEach(async () => {
  receiver = await new Receiver().start();
});
afterEach(async () => {
  await receiver.stop();
});

const OPEN_AFTER = 3;
const PROBE_DELAY = 10_000;
const fail = (endpointId: string, at: Date, count = 1, error = 'HTTP 503') => ({ endpointId, at, count, error });

test('when failures are recorded, then the endpoint goes healthy → failing → open after the streak, with the first probe scheduled, and a 2xx closes it', async () => {
  const { account, endpoint } = await accountWithEndpoint(h.db, 'https://127.0.0.1/hook');
  const t0 = new Date('2030-01-01T00:00:00Z');

  const [first] = await recordEndpointFailures(h.db, [fail(endpoint.id, t0)], OPEN_AFTER, PROBE_DELAY);
  expect(first).toMatchObject({ prev_state: null, state: 'failing', consecutive_failures: 1 });
  const [second] = await recordEndpointFailures(h.db, [fail(endpoint.id, new Date(t0.getTime() + 1000))], OPEN_AFTER, PROBE_DELAY);
  expect(second).toMatchObject({ prev_state: 'failing', state: 'failing', consecutive_failures: 2 });
  const openedAt = new Date(t0.getTime() + 2000);
  const [third] = await recordEndpointFailures(h.db, [fail(endpoint.id, openedAt, 1, 'HTTP 500')], OPEN_AFTER, PROBE_DELAY);
  expect(third).toMatchObject({ prev_state: 'failing', state: 'open', consecutive_failures: 3 });
  expect(new Date(third.next_probe_at!).getTime()).toBe(openedAt.getTime() + PROBE_DELAY);

  const health = (await healthOf(h.db, [endpoint.id])).get(endpoint.id)!;
  expect(health).toMatchObject({ state: 'open', consecutive_failures: 3, last_error: 'HTTP 500', probe_attempt: 1 });
  expect(new Date(health.since).getTime()).toBe(openedAt.getTime());
  expect(new Date(health.failing_since!).getTime()).toBe(t0.getTime());

  // More failures while open (requests that were already in flight) keep it open and the probe schedule as it was.
  const [later] = await recordEndpointFailures(h.db, [fail(endpoint.id, new Date(t0.getTime() + 3000))], OPEN_AFTER, PROBE_DELAY);
  expect(later).toMatchObject({ prev_state: 'open', state: 'open', consecutive_failures: 4 });
  expect(new Date(later.next_probe_at!).getTime()).toBe(openedAt.getTime() + PROBE_DELAY);

  // A 2xx (recorded like any attempt) closes the circuit and ends the streak.
  const { deliveryId } = await storedDelivery(h.db, account.id, endpoint.id);
  await recordAttempts(h.db, [{ deliveryId, series: 1, startedAt: new Date(t0.getTime() + 60_000), durationMs: 5, statusCode: 200, delivered: true }]);
  const closed = (await healthOf(h.db, [endpoint.id])).get(endpoint.id)!;
  expect(closed).toMatchObject({ state: 'healthy', consecutive_failures: 0, failing_since: null, next_probe_at: null, probe_owner: null });
  expect(new Date(closed.since).getTime()).toBe(t0.getTime() + 60_000);
});

test('when a 429 is recorded, then the streak does not grow but the auto-disable clock starts', async () => {
  const { endpoint } = await accountWithEndpoint(h.db, 'https://127.0.0.1/hook');
  const at = new Date('2030-01-01T00:00:00Z');
  const [row] = await recordEndpointFailures(h.db, [fail(endpoint.id, at, 0, 'HTTP 429')], OPEN_AFTER, PROBE_DELAY);
  expect(row).toMatchObject({ state: 'healthy', consecutive_failures: 0 });
  expect(new Date(row.failing_since).getTime()).toBe(at.getTime());
});

test('when 10 connections record failures for one endpoint at once, then the transition to open is reported exactly once', async () => {
  const { endpoint } = await accountWithEndpoint(h.db, 'https://127.0.0.1/hook');
  const at = new Date('2030-01-01T00:00:00Z');
  const rows = await Promise.all(Array.from({ length: 10 }, (_, i) => recordEndpointFailures(h.db, [fail(endpoint.id, new Date(at.getTime() + i))], OPEN_AFTER, PROBE_DELAY)));
  const opened = rows.flat().filter((r) => r.state === 'open' && r.prev_state !== 'open');
  expect(opened).toHaveLength(1);
  expect((await healthOf(h.db, [endpoint.id])).get(endpoint.id)).toMatchObject({ state: 'open', consecutive_failures: 10 });
});

test("when the health record's failure streak has lasted the auto-disable period, then the endpoint is disabled and its pending deliveries cancelled; re-enabling resets the record", async () => {
  const { account, endpoint } = await accountWithEndpoint(h.db, 'https://127.0.0.1/hook');
  const { deliveryId } = await storedDelivery(h.db, account.id, endpoint.id);
  const since = new Date('2030-01-01T00:00:00Z');
  const [row] = await recordEndpointFailures(h.db, [fail(endpoint.id, since, 5)], OPEN_AFTER, PROBE_DELAY);
  const day = 86_400_000;

  expect(await autoDisableIfDue(h.db, endpoint.id, row.failing_since, new Date(since.getTime() + day - 1), day)).toBe(false);
  expect(await autoDisableIfDue(h.db, endpoint.id, row.failing_since, new Date(since.getTime() + day), day)).toBe(true);
  const ep = await getEndpoint(h.db, account.id, endpoint.id);
  expect(ep?.enabled).toBe(false);
  expect(ep?.disabled_reason).toBe(`auto-disabled: every attempt failed since ${since.toISOString()}`);
  expect((await getDelivery(h.db, account.id, deliveryId))?.status).toBe('cancelled');

  await updateEndpoint(h.db, account.id, endpoint.id, { enabled: true });
  expect((await healthOf(h.db, [endpoint.id])).has(endpoint.id)).toBe(false);
});

test("when an endpoint's first attempts fail the configured number of times in a row, then GET /v1/endpoints/:id shows its circuit open with the last error and the next probe", async () => {
  const account = await newAccount(h);
  const created = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } });
  expect(created.status).toBe(201);
  expect(created.body.health).toEqual({ state: 'healthy', since: created.body.createdAt, consecutiveFailures: 0 });
  receiver.respond = () => ({ status: 503, body: 'down' });

  for (let i = 1; i <= OPEN_AFTER; i++) await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(i) } });
  const ep = await waitFor(async () => {
    const r = await h.call('GET', `/v1/endpoints/${created.body.id}`, { token: account.apiKey });
    return r.body.health.state === 'open' ? r.body : undefined;
  }, 'the circuit to open');

  expect(ep.health).toMatchObject({ state: 'open', consecutiveFailures: OPEN_AFTER, lastError: 'HTTP 503' });
  expect(Date.parse(ep.health.nextProbeAt)).toBeGreaterThan(Date.parse(ep.health.since));
  const list = await h.call('GET', '/v1/endpoints', { token: account.apiKey });
  // The list shows the same health; its next probe may have moved meanwhile (a failing attempt
  // still in flight when the circuit opened is recorded later and schedules it from its own time).
  const { nextProbeAt, ...stable } = ep.health;
  expect(list.body.data[0].health).toEqual({ ...stable, nextProbeAt: expect.any(String) });
  expect(Math.abs(Date.parse(list.body.data[0].health.nextProbeAt) - Date.parse(nextProbeAt))).toBeLessThan(PROBE_DELAY + 1_000);
});

test("when 10 takers race for an open circuit's due probe lease, then exactly one wins; the lease blocks others until it expires, and only its owner can finish the probe", async () => {
  const { endpoint } = await accountWithEndpoint(h.db, 'https://127.0.0.1/hook');
  const at = new Date('2030-01-01T00:00:00Z');
  await recordEndpointFailures(h.db, [fail(endpoint.id, at, OPEN_AFTER)], OPEN_AFTER, PROBE_DELAY);
  const due = new Date(at.getTime() + PROBE_DELAY);

  expect(await takeProbeLease(h.db, endpoint.id, 'delivery-early', new Date(due.getTime() - 1), 45_000)).toBeUndefined(); // not due yet
  const won = await Promise.all(Array.from({ length: 10 }, (_, i) => takeProbeLease(h.db, endpoint.id, `delivery-${i}`, due, 45_000)));
  expect(won.filter((n) => n !== undefined)).toEqual([1]);
  const owner = `delivery-${won.findIndex((n) => n !== undefined)}`;
  expect((await healthOf(h.db, [endpoint.id])).get(endpoint.id)).toMatchObject({ state: 'probing', probe_owner: owner });

  expect(await takeProbeLease(h.db, endpoint.id, 'delivery-other', new Date(due.getTime() + 44_000), 45_000)).toBeUndefined(); // lease live
  expect(await finishProbe(h.db, endpoint.id, 'delivery-other', due, 'HTTP 503', 30_000)).toBeUndefined(); // not its lease
  const finished = await finishProbe(h.db, endpoint.id, owner, due, 'HTTP 502', 30_000);
  expect(new Date(finished!.next_probe_at).getTime()).toBe(due.getTime() + 30_000);
  expect((await healthOf(h.db, [endpoint.id])).get(endpoint.id)).toMatchObject({
    state: 'open',
    probe_owner: null,
    probe_attempt: 2,
    last_error: 'HTTP 502',
    consecutive_failures: OPEN_AFTER + 1,
  });

  // A dead owner's lease expires: the next due taker gets it.
  const next = new Date(due.getTime() + 30_000);
  expect(await takeProbeLease(h.db, endpoint.id, 'delivery-a', next, 45_000)).toBe(2);
  expect(await takeProbeLease(h.db, endpoint.id, 'delivery-b', new Date(next.getTime() + 45_001), 45_000)).toBe(2);
});

test('when the circuit is open, then a published delivery is held without a request: the delivery shows held with the reason and next wake-up, and no attempt', async () => {
  const account = await newAccount(h);
  const created = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } });
  // Opened a minute ago by failures; the next probe is an hour away.
  await recordEndpointFailures(h.db, [fail(created.body.id, new Date(Date.now() - 60_000), OPEN_AFTER)], OPEN_AFTER, 3_600_000);

  const published = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(1) } });
  const deliveryId = published.body.deliveries[0].id;
  const d = await waitFor(async () => {
    const r = await h.call('GET', `/v1/deliveries/${deliveryId}`, { token: account.apiKey });
    return r.body.held ? r.body : undefined;
  }, 'the delivery to be held');

  expect(d).toMatchObject({ status: 'pending', attemptCount: 0, attempts: [] });
  expect(d.held.reason).toBe('circuit_open');
  expect(d.held.detail).toMatch(/^endpoint circuit open since .* after 3 failed attempts in a row \(last error: HTTP 503\); next probe at /);
  expect(Date.parse(d.held.until)).toBeGreaterThan(Date.now() + 3_000_000);
  expect(d.nextAttemptAt).toBe(d.held.until);
  expect(receiver.requests).toHaveLength(0);
  const list = await h.call('GET', `/v1/deliveries?endpointId=${created.body.id}`, { token: account.apiKey });
  expect(list.body.data[0].held).toEqual(d.held);
});

async function heldDeliveries(n: number) {
  const account = await newAccount(h);
  const created = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } });
  await recordEndpointFailures(h.db, [fail(created.body.id, new Date(Date.now() - 60_000), OPEN_AFTER)], OPEN_AFTER, 3_600_000); // next probe in an hour
  const ids: string[] = [];
  for (let i = 0; i < n; i++)
    ids.push((await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(i) } })).body.deliveries[0].id);
  for (const id of ids) await waitFor(async () => ((await h.call('GET', `/v1/deliveries/${id}`, { token: account.apiKey })).body.held ? true : undefined), `${id} to be held`);
  return { account, endpointId: created.body.id as string, ids };
}
const delivered = (token: string, id: string) =>
  waitFor(async () => ((await h.call('GET', `/v1/deliveries/${id}`, { token })).body.status === 'delivered' ? true : undefined), `${id} delivered`);

test('when a customer retries a held delivery now (POST /v1/deliveries/:id/retry) and the receiver is back, then it is sent at once as the probe, the circuit closes and the other held deliveries are sent too', async () => {
  const { account, endpointId, ids } = await heldDeliveries(3);
  expect(receiver.requests).toHaveLength(0);

  const res = await h.call('POST', `/v1/deliveries/${ids[1]}/retry`, { token: account.apiKey });

  expect(res.status).toBe(202);
  expect(res.body).toEqual({ deliveryId: ids[1] });
  for (const id of ids) await delivered(account.apiKey, id);
  expect(receiver.requests[0].headers['webhook-id']).toBe(ids[1]); // the probe was the one retried
  expect(receiver.requests.map((r) => r.headers['webhook-id']).sort()).toEqual([...ids].sort()); // each once
  const ep = await h.call('GET', `/v1/endpoints/${endpointId}`, { token: account.apiKey });
  expect(ep.body.health.state).toBe('healthy');
  const again = await h.call('POST', `/v1/deliveries/${ids[1]}/retry`, { token: account.apiKey });
  expect(again.status).toBe(409);
  expect(again.body.code).toBe('delivery_not_pending');
});

test("when a customer retries an endpoint's pending deliveries now (POST /v1/endpoints/:id/retry), then the answer lists them and each is delivered once; other accounts get 404 and free plans 402 (the admin 409 once delivered)", async () => {
  const { account, endpointId, ids } = await heldDeliveries(3);
  const other = await newAccount(h);
  expect((await h.call('POST', `/v1/endpoints/${endpointId}/retry`, { token: other.apiKey })).status).toBe(404);
  expect((await h.call('POST', `/v1/deliveries/${ids[0]}/retry`, { token: other.apiKey })).status).toBe(404);

  const res = await h.call('POST', `/v1/endpoints/${endpointId}/retry`, { token: account.apiKey });

  expect(res.status).toBe(202);
  expect([...res.body.deliveryIds].sort()).toEqual([...ids].sort());
  for (const id of ids) await delivered(account.apiKey, id);
  expect(receiver.requests.map((r) => r.headers['webhook-id']).sort()).toEqual([...ids].sort());

  expect((await h.call('POST', `/v1/deliveries/${ids[0]}/retry?accountId=${account.id}`, {})).status).toBe(409); // admin: delivered now
  await h.call('PATCH', `/v1/accounts/${account.id}`, { body: { plan: 'free' } });
  expect((await h.call('POST', `/v1/endpoints/${endpointId}/retry`, { token: account.apiKey })).status).toBe(402);
  expect((await h.call('POST', `/v1/deliveries/${ids[0]}/retry`, { token: account.apiKey })).status).toBe(402);
});
