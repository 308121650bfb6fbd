import { healthOf } from '../../src/db/endpointHealth';
import { attemptsOf, getDelivery } from '../../src/db/deliveries';
import { getEndpoint } from '../../src/db/endpoints';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';
import { timeSkippingSuite } from '../helpers/timeSkipping';

// Auto-disable after one day (instead of five) so one 3-day delivery window can reach it.
const suite = timeSkippingSuite({ AUTO_DISABLE_AFTER: '1d' });
const gaps = (times: Date[]) => times.slice(1).map((t, i) => t.getTime() - times[i].getTime());

test('when the receiver answers 429 or 503 with Retry-After, then the next attempt waits that long', async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  const replies = [
    { status: 429, headers: { 'retry-after': '600' } }, // 10 min instead of 10 s
    { status: 503, headers: { 'retry-after': new Date(Date.now() + 3_600_000 * 100).toUTCString() } }, // far future: capped at 6 h
    { status: 429 }, // no header: still at least a minute
    { status: 200 },
  ];
  suite.receiver.respond = (_req, n) => replies[n - 1];

  expect((await suite.deliver(deliveryId)).status).toBe('delivered');

  const [first, second, third] = gaps((await attemptsOf(suite.db, deliveryId)).map((a) => a.started_at));
  expect(first).toBeGreaterThanOrEqual(600_000);
  expect(first).toBeLessThan(605_000);
  expect(second).toBeGreaterThanOrEqual(6 * 3_600_000);
  expect(second).toBeLessThan(6 * 3_600_000 + 5_000);
  expect(third).toBeGreaterThanOrEqual(90_000); // attempt 3's back-off (1m30s) is above the 1-minute floor
});

test('when the receiver answers 410 Gone, then retries stop at once, the delivery is undeliverable and the endpoint disabled', async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  suite.receiver.respond = () => ({ status: 410, body: 'gone' });

  const result = await suite.deliver(deliveryId);

  expect(result.status).toBe('undeliverable');
  expect(suite.receiver.requests).toHaveLength(1);
  const ep = await getEndpoint(suite.db, account.id, endpoint.id);
  expect(ep?.enabled).toBe(false);
  expect(ep?.disabled_reason).toMatch(/410 Gone/);
  expect(ep?.disabled_at).toBeInstanceOf(Date);
});

test('when a redirect is the answer, then it is a failed attempt and is not followed', async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  suite.receiver.respond = (req, n) => (n === 1 ? { status: 301, headers: { location: '/moved' } } : { status: 200 });

  expect((await suite.deliver(deliveryId)).status).toBe('delivered');
  expect(suite.receiver.requests.map((r) => r.path)).toEqual(['/webhooks', '/webhooks']);
  expect((await attemptsOf(suite.db, deliveryId)).map((a) => a.status_code)).toEqual([301, 200]);
});

test('when every attempt to an endpoint fails for the auto-disable period, then it is disabled and its pending deliveries cancelled', async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  const other = await storedDelivery(suite.db, account.id, endpoint.id, 'referee_added'); // pending, never started
  suite.receiver.respond = () => ({ status: 500 });

  const result = await suite.deliver(deliveryId);

  expect(result.status).toBe('cancelled');
  const ep = await getEndpoint(suite.db, account.id, endpoint.id);
  expect(ep?.enabled).toBe(false);
  expect(ep?.disabled_reason).toMatch(/^auto-disabled: every attempt failed since /);
  const attempts = await attemptsOf(suite.db, deliveryId);
  const span = attempts[attempts.length - 1].started_at.getTime() - attempts[0].started_at.getTime();
  expect(span).toBeGreaterThanOrEqual(86_400_000);
  expect(span).toBeLessThan(86_400_000 + 12 * 3_600_000 + 5_000); // disabled at the first attempt past one day
  expect((await getDelivery(suite.db, account.id, other.deliveryId))?.status).toBe('cancelled');
  const seen = suite.receiver.requests.length;
  await suite.env.sleep('3 days');
  expect(suite.receiver.requests.length).toBe(seen);
});

test('when an endpoint recovers before the period ends, then its failure streak resets and it stays enabled', async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  suite.receiver.respond = (_req, n) => (n < 8 ? { status: 500 } : { status: 200 }); // ~3 h of failures

  expect((await suite.deliver(deliveryId)).status).toBe('delivered');
  const ep = await getEndpoint(suite.db, account.id, endpoint.id);
  expect(ep?.enabled).toBe(true);
  const health = (await healthOf(suite.db, [endpoint.id])).get(endpoint.id);
  expect(health).toMatchObject({ state: 'healthy', consecutive_failures: 0, failing_since: null });
  expect(health?.last_success_at).toBeInstanceOf(Date);
});

test('when the receiver answers other 4xx (misconfigured, then fixed), then retries continue until it accepts', async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  const replies = [400, 401, 404, 422, 200];
  suite.receiver.respond = (_req, n) => ({ status: replies[n - 1] });

  expect((await suite.deliver(deliveryId)).status).toBe('delivered');
  expect((await attemptsOf(suite.db, deliveryId)).map((a) => a.status_code)).toEqual(replies);
  // webhook-timestamp is each attempt's own time (the server's skipped clock here), so late retries stay fresh.
  const stamps = suite.receiver.requests.map((r) => Number(r.headers['webhook-timestamp']));
  const started = (await attemptsOf(suite.db, deliveryId)).map((a) => Math.floor(a.started_at.getTime() / 1000));
  expect(stamps).toEqual(started);
});

test('when the database fails during the first attempt, then the delivery is retried on schedule, not given up', async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  // Recording the first attempt fails (the table is briefly gone), as if the database restarted.
  await suite.db.query('alter table delivery_attempts rename to delivery_attempts_away');
  suite.receiver.respond = (_req, n) => ({ status: 200, delayMs: n === 2 ? 300 : 0 });
  let restored: Promise<unknown> | undefined;
  suite.receiver.onRequest = (_req, n) => {
    if (n === 2) restored = suite.db.query('alter table delivery_attempts_away rename to delivery_attempts');
  };

  const result = await suite.deliver(deliveryId);
  await restored;

  expect(result.status).toBe('delivered');
  expect(suite.receiver.requests).toHaveLength(2); // at-least-once: the first POST went out before the failure
  expect(new Set(suite.receiver.requests.map((r) => r.headers['webhook-id']))).toEqual(new Set([deliveryId]));
  // The retry came after the activity's own ~13 s of write retries plus the schedule's first
  // delay (10 s), read from each attempt's webhook-timestamp.
  const [t1, t2] = suite.receiver.requests.map((r) => Number(r.headers['webhook-timestamp']));
  expect(t2 - t1).toBeGreaterThanOrEqual(20);
  expect(t2 - t1).toBeLessThanOrEqual(30);
  expect((await getDelivery(suite.db, account.id, deliveryId))?.status).toBe('delivered');
});
