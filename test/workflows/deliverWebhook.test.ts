import { attemptsOf, getDelivery } from '../../src/db/deliveries';
import { softDeleteEndpoint, updateEndpoint } from '../../src/db/endpoints';
import { baseDelayMs } from '../../src/domain/retrySchedule';
import { rrSignature } from '../../src/domain/signing';
import { silentLogger } from '../../src/logger';
import { cancelEndpointDeliveries } from '../../src/services/deliveryControl';
import { Dispatcher } from '../../src/services/dispatcher';
import { scheduleFrom } from '../../src/services/workflowStartOptions';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';
import { timeSkippingSuite } from '../helpers/timeSkipping';

// The default schedule (10 s × 3ⁿ, capped at 12 h, 3-day window) without jitter, so attempt
// times can be checked exactly; jitter has its own table tests.
// One delivery's own retry schedule, with the endpoint circuit breaker out of the way (it never
// opens here): the circuit, its probes and the drain are covered by circuitBreaker.test.ts and
// drainEndpoint.test.ts.
const suite = timeSkippingSuite({ CIRCUIT_OPEN_AFTER: '100000' });
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

test('when the receiver fails for about two days and then answers 200, then the delivery is delivered and attempts follow the exponential schedule', async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  // Fail every attempt that starts in the first two days of the window.
  let firstAt: number | undefined;
  suite.receiver.respond = (req) => {
    const ts = Number(req.headers['webhook-timestamp']) * 1000;
    firstAt ??= ts;
    return ts - firstAt < 2 * DAY - HOUR ? { status: 503, body: 'down for maintenance' } : { status: 200, body: 'ok' };
  };

  const result = await suite.deliver(deliveryId);

  expect(result.status).toBe('delivered');
  const row = await getDelivery(suite.db, account.id, deliveryId);
  expect(row?.status).toBe('delivered');
  const attempts = await attemptsOf(suite.db, deliveryId);
  expect(attempts.length).toBe(suite.receiver.requests.length);
  expect(attempts.length).toBeGreaterThanOrEqual(10);
  expect(attempts.slice(0, -1).every((a) => a.status_code === 503 && a.response_body === 'down for maintenance')).toBe(true);
  expect(attempts[attempts.length - 1].status_code).toBe(200);
  // Gap before attempt n+1 is the configured delay after attempt n (a few seconds of slack for real work).
  for (let i = 1; i < attempts.length; i++) {
    const gap = attempts[i].started_at.getTime() - attempts[i - 1].started_at.getTime();
    expect(Math.abs(gap - baseDelayMs(scheduleFrom(suite.cfg), i))).toBeLessThan(5_000);
  }
  const elapsed = attempts[attempts.length - 1].started_at.getTime() - attempts[0].started_at.getTime();
  expect(elapsed).toBeGreaterThan(2 * DAY - HOUR);
  expect(elapsed).toBeLessThan(3 * DAY);
  // Every attempt carried the same webhook-id and a valid signature.
  expect(suite.receiver.byWebhookId(deliveryId).length).toBe(suite.receiver.requests.length);
  for (const req of suite.receiver.requests) expect(req.headers['x-rr-signature']).toBe(rrSignature(endpoint.secret, req.body));
});

test('when the receiver never recovers, then the delivery is undeliverable at the end of the 3-day window and never retried after', async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  suite.receiver.respond = () => ({ status: 500, body: 'boom' });

  const startedAt = await suite.env.currentTimeMs();
  const result = await suite.deliver(deliveryId);

  expect(result.status).toBe('undeliverable');
  expect(result.reason).toMatch(/retry window exhausted/);
  const row = await getDelivery(suite.db, account.id, deliveryId);
  expect(row?.status).toBe('undeliverable');
  expect(row?.next_attempt_at).toBeNull();
  const attempts = await attemptsOf(suite.db, deliveryId);
  const last = attempts[attempts.length - 1].started_at.getTime();
  expect(last - startedAt).toBeGreaterThan(2.4 * DAY); // kept trying well into day three
  expect(last - startedAt).toBeLessThanOrEqual(3 * DAY);
  expect(row!.finished_at!.getTime() - startedAt).toBeLessThanOrEqual(3 * DAY + 60_000);

  const seen = suite.receiver.requests.length;
  await suite.env.sleep('2 days');
  expect(suite.receiver.requests.length).toBe(seen);
  expect((await getDelivery(suite.db, account.id, deliveryId))?.status).toBe('undeliverable');
});

test('when the endpoint is deleted mid-retry, then the delivery is cancelled and no attempt follows', async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  const dispatcher = new Dispatcher(suite.env.client, suite.db, suite.cfg, silentLogger);
  suite.receiver.respond = () => ({ status: 500 });
  let deletion: Promise<unknown> | undefined;
  suite.receiver.onRequest = (_req, n) => {
    // What DELETE /v1/endpoints/:id does, right after the third failed attempt.
    if (n === 3)
      deletion = softDeleteEndpoint(suite.db, account.id, endpoint.id).then(() => cancelEndpointDeliveries({ db: suite.db, dispatcher }, endpoint.id, 'endpoint deleted'));
  };

  const result = await suite.deliver(deliveryId);
  await deletion;

  expect(result.status).toBe('cancelled');
  const row = await getDelivery(suite.db, account.id, deliveryId);
  expect(row?.status).toBe('cancelled');
  expect(row?.final_reason).toBe('endpoint deleted');
  expect(suite.receiver.requests.length).toBe(3);
  await suite.env.sleep('1 day');
  expect(suite.receiver.requests.length).toBe(3);
});

test("when the endpoint is disabled behind the workflow's back, then the next attempt stops it as cancelled without sending", async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  suite.receiver.respond = () => ({ status: 500 });
  // Only the database changes (no workflow cancel): the activity's own check must catch it.
  suite.receiver.onRequest = (_req, n) => {
    if (n === 2) void updateEndpoint(suite.db, account.id, endpoint.id, { enabled: false });
  };

  const result = await suite.deliver(deliveryId);

  expect(result.status).toBe('cancelled');
  expect(result.reason).toBe('endpoint disabled');
  expect(suite.receiver.requests.length).toBe(2);
  expect((await getDelivery(suite.db, account.id, deliveryId))?.status).toBe('cancelled');
});
