import { attemptsOf, cancelPendingOfEndpoint, claimForAttempt, finishDelivery, getDelivery, recordAttempts, startNewSeries } from '../../src/db/deliveries';
import { createEndpoint, getEndpoint, updateEndpoint } from '../../src/db/endpoints';
import { accountWithEndpoint, storedDelivery } from '../helpers/fixtures';
import { waitFor } from '../helpers/receiver';
import { timeSkippingSuite } from '../helpers/timeSkipping';

// The batch's own behaviour, with the endpoint circuit breaker out of the way (covered by
// circuitBreaker.test.ts and drainEndpoint.test.ts).
const suite = timeSkippingSuite({ CIRCUIT_OPEN_AFTER: '100000' });

/** One account with three endpoints on the loopback receiver (told apart by path), one delivery each. */
async function threeDeliveries() {
  const { account, endpoint } = await accountWithEndpoint(suite.db, `${suite.receiver.url}/ok`);
  const flaky = await createEndpoint(suite.db, account.id, { url: `${suite.receiver.url}/flaky`, eventTypes: ['referrer_added'] });
  const gone = await createEndpoint(suite.db, account.id, { url: `${suite.receiver.url}/gone`, eventTypes: ['referrer_added'] });
  const ids = [];
  for (const ep of [endpoint, flaky, gone]) ids.push((await storedDelivery(suite.db, account.id, ep.id)).deliveryId);
  return { account, endpoints: { ok: endpoint, flaky, gone }, ids };
}

test('when a batch meets 200, 503 and 410, then one is delivered at once, one continues in its own workflow until delivered, and one ends undeliverable', async () => {
  const { account, endpoints, ids } = await threeDeliveries();
  const [okId, flakyId, goneId] = ids;
  let flakyCalls = 0;
  suite.receiver.respond = (req) => {
    if (req.path.endsWith('/gone')) return { status: 410 };
    if (req.path.endsWith('/flaky')) return { status: ++flakyCalls <= 2 ? 503 : 200 };
    return { status: 200 };
  };

  const { batch, retries } = await suite.deliverBatch(account.id, ids);

  expect(batch).toEqual({ delivered: 1, finished: 1, skipped: 0, retrying: 1 });
  expect([...retries.keys()]).toEqual([flakyId]); // only the failed one got a workflow of its own
  expect(retries.get(flakyId)?.status).toBe('delivered');
  const ok = await getDelivery(suite.db, account.id, okId);
  expect(ok).toMatchObject({ status: 'delivered', attempt_count: 1, workflow_id: `batch-${okId}` });
  const flaky = await getDelivery(suite.db, account.id, flakyId);
  expect(flaky).toMatchObject({ status: 'delivered', attempt_count: 3, workflow_id: `delivery-${flakyId}` });
  // The retry workflow kept the schedule: 10 s after the batch's attempt, then 30 s.
  const [a1, a2, a3] = (await attemptsOf(suite.db, flakyId)).map((a) => a.started_at.getTime());
  expect(a2 - a1).toBeGreaterThanOrEqual(10_000);
  expect(a2 - a1).toBeLessThan(12_000);
  expect(a3 - a2).toBeGreaterThanOrEqual(30_000);
  expect(a3 - a2).toBeLessThan(32_000);
  const gone = await getDelivery(suite.db, account.id, goneId);
  expect(gone).toMatchObject({ status: 'undeliverable', attempt_count: 1 });
  expect(gone?.final_reason).toMatch(/410/);
  expect((await getEndpoint(suite.db, account.id, endpoints.gone.id))?.enabled).toBe(false);
  // Every POST carries its delivery's id: 1 + 3 + 1.
  expect(suite.receiver.requests.map((r) => r.headers['webhook-id']).sort()).toEqual([okId, flakyId, flakyId, flakyId, goneId].sort());
});

test('when one receiver of a batch is slow, then the fast deliveries are recorded delivered without waiting for it', async () => {
  const { account, ids } = await threeDeliveries();
  const [fastId, , slowId] = ids;
  suite.receiver.respond = (req) => ({ status: 200, delayMs: req.path.endsWith('/gone') ? 3_000 : 0 });
  let fastWhileSlowPending: string | undefined;

  const { batch } = await suite.deliverBatch(account.id, ids, async () => {
    await waitFor(() => suite.receiver.requests.length === 3 || undefined, 'all three requests');
    await new Promise((r) => setTimeout(r, 500));
    fastWhileSlowPending = (await getDelivery(suite.db, account.id, fastId))?.status;
    expect((await getDelivery(suite.db, account.id, slowId))?.status).toBe('pending');
  });

  expect(fastWhileSlowPending).toBe('delivered');
  expect(batch).toEqual({ delivered: 3, finished: 0, skipped: 0, retrying: 0 });
});

test('when a batch is cancelled mid-flight (an operator in the Web UI), then it still finishes and hands over, and nothing is stranded', async () => {
  const { account, ids } = await threeDeliveries();
  suite.receiver.respond = (req) => ({ status: req.path.endsWith('/ok') ? 200 : 503, delayMs: 1_500 });

  const { batch, retries } = await suite.deliverBatch(account.id, ids, async () => {
    await waitFor(() => suite.receiver.requests.length === 3 || undefined, 'all three requests');
    await suite.env.client.workflow.getHandle(`batch-${ids[0]}`).cancel();
    suite.receiver.respond = () => ({ status: 200 });
  });

  // (The local activity may run again when the cancellation replays the task: a re-run sends
  // nothing twice, it finds one delivery done and two handed over.)
  expect(batch.retrying).toBe(2);
  for (const id of ids.slice(1)) expect(retries.get(id)?.status).toBe('delivered');
  for (const id of ids) expect((await getDelivery(suite.db, account.id, id))?.status).toBe('delivered');
  const sent = (id: string) => suite.receiver.requests.filter((r) => r.headers['webhook-id'] === id).length;
  expect(ids.map(sent)).toEqual([1, 2, 2]); // once, or a 503 then a 200: no duplicate
});

test('when another workflow already owns a delivery, then the batch does not send it', async () => {
  const { account, ids } = await threeDeliveries();
  const [ownedId, ...rest] = ids;
  await claimForAttempt(suite.db, [{ id: ownedId, series: 1 }], 'delivery-elsewhere');

  const { batch } = await suite.deliverBatch(account.id, ids);

  expect(batch).toMatchObject({ skipped: 1 });
  expect(suite.receiver.requests.map((r) => r.headers['webhook-id'])).not.toContain(ownedId);
  expect((await getDelivery(suite.db, account.id, ownedId))?.status).toBe('pending'); // left to its owner
  for (const id of rest) expect(suite.receiver.requests.map((r) => r.headers['webhook-id'])).toContain(id);
});

test('when the database fails during a batch, then every delivery continues in its own workflow and is delivered', async () => {
  const { account, ids } = await threeDeliveries();
  suite.receiver.respond = () => ({ status: 200 });
  // Recording the batch's attempts fails for longer than the activity's own write retries, as if
  // the database were down for a while; it is back when the retry workflows send.
  await suite.db.query('alter table delivery_attempts rename to delivery_attempts_away');
  let restored: Promise<unknown> | undefined;
  suite.receiver.onRequest = (_req, n) => {
    if (n === 4) restored = suite.db.query('alter table delivery_attempts_away rename to delivery_attempts');
  };

  const { batch, retries } = await suite.deliverBatch(account.id, ids);
  await restored;

  expect(batch.retrying).toBe(3);
  for (const id of ids) {
    expect(retries.get(id)?.status).toBe('delivered');
    expect((await getDelivery(suite.db, account.id, id))?.status).toBe('delivered');
  }
  // At least once: each was sent by the batch (unrecorded), then once by its own workflow.
  for (const id of ids) expect(suite.receiver.requests.filter((r) => r.headers['webhook-id'] === id)).toHaveLength(2);
});

test("when a closed workflow of a delivery's retry id exists (the reconciler's, superseded), then the batch's hand-over still starts the retries", async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  // A run of `delivery-<id>` that ended before the batch handed the delivery over.
  const earlier = await suite.env.client.workflow.start('deliverWebhook', { taskQueue: 'nobody-polls-this', workflowId: `delivery-${deliveryId}`, args: [{}] });
  await earlier.terminate('superseded by the batch');
  suite.receiver.respond = (_req, n) => ({ status: n === 1 ? 503 : 200 });

  const { batch, retries } = await suite.deliverBatch(account.id, [deliveryId]);

  expect(batch).toMatchObject({ retrying: 1 });
  expect(retries.get(deliveryId)?.status).toBe('delivered');
  expect(suite.receiver.requests).toHaveLength(2);
});

test('when the database is down as a batch starts (before it could claim anything), then every delivery is still handed over and delivered', async () => {
  const { account, ids } = await threeDeliveries();
  suite.receiver.respond = () => ({ status: 200 });
  await suite.db.query('alter table deliveries rename to deliveries_away');
  const back = setTimeout(() => void suite.db.query('alter table deliveries_away rename to deliveries'), 2_000);

  const { batch, retries } = await suite.deliverBatch(account.id, ids);
  clearTimeout(back);

  expect(batch.retrying).toBe(3);
  for (const id of ids) {
    expect(retries.get(id)?.status).toBe('delivered');
    expect((await getDelivery(suite.db, account.id, id))?.status).toBe('delivered');
  }
});

test('when a delivery was resent while an attempt of its old series was in flight, then that attempt neither records onto nor claims the new series', async () => {
  const { account, endpoint } = await accountWithEndpoint(suite.db, suite.receiver.url);
  const { deliveryId } = await storedDelivery(suite.db, account.id, endpoint.id);
  await claimForAttempt(suite.db, [{ id: deliveryId, series: 1 }], `batch-${deliveryId}`);
  await finishDelivery(suite.db, { deliveryId, series: 1, status: 'cancelled', reason: 'endpoint disabled', at: new Date() });
  await startNewSeries(suite.db, account.id, deliveryId); // series 2, pending, unowned

  // The series-1 attempt finishes late (a success even) and would hand over to delivery-<id>.
  const [n] = await recordAttempts(suite.db, [
    { deliveryId, series: 1, startedAt: new Date(), durationMs: 5, statusCode: 200, delivered: true, handOverTo: `delivery-${deliveryId}` },
  ]);
  expect(n).toBe(0);
  expect(await getDelivery(suite.db, account.id, deliveryId)).toMatchObject({ series: 2, status: 'pending', workflow_id: null, attempt_count: 0 });
  // A series-1 workflow cannot claim it either; the series-2 one can.
  const [stale] = await claimForAttempt(suite.db, [{ id: deliveryId, series: 1 }], `delivery-${deliveryId}`);
  expect(stale.claimed).toBe(false);
  const [fresh] = await claimForAttempt(suite.db, [{ id: deliveryId, series: 2 }], `delivery-${deliveryId}-2`);
  expect(fresh.claimed).toBe(true);
});

test('when endpoints are disabled while a batch waits for send slots, then the waiting deliveries are checked again and never sent, and the ones in flight are logged as what happened', async () => {
  // 60 deliveries to one origin: 50 start at once (the claim was their check), 10 wait for a slot.
  const { account, endpoint: ok } = await accountWithEndpoint(suite.db, `${suite.receiver.url}/ok`);
  const failing = await createEndpoint(suite.db, account.id, { url: `${suite.receiver.url}/fail`, eventTypes: ['referrer_added'] });
  const quiet = await createEndpoint(suite.db, account.id, { url: `${suite.receiver.url}/quiet`, eventTypes: ['referrer_added'] });
  const endpointOf = new Map<string, string>();
  for (let i = 0; i < 20; i++) {
    for (const ep of [ok, failing, quiet]) endpointOf.set((await storedDelivery(suite.db, account.id, ep.id)).deliveryId, ep.id);
  }
  const ids = [...endpointOf.keys()];
  suite.receiver.respond = (req) => ({ status: req.path.endsWith('/fail') ? 503 : 200, delayMs: 1_500 });

  const { batch, retries } = await suite.deliverBatch(account.id, ids, async () => {
    await waitFor(() => suite.receiver.requests.length === 50 || undefined, 'the first 50 requests');
    // As the API does: `ok` and `failing` disabled and their pending deliveries cancelled; `quiet`
    // only disabled (its deliveries still pending: the batch itself must not send them).
    for (const ep of [ok, failing]) {
      await updateEndpoint(suite.db, account.id, ep.id, { enabled: false });
      await cancelPendingOfEndpoint(suite.db, ep.id, 'endpoint disabled');
    }
    await updateEndpoint(suite.db, account.id, quiet.id, { enabled: false });
  });

  expect(suite.receiver.requests).toHaveLength(50); // nothing started after the disable
  const sent = new Set(suite.receiver.requests.map((r) => String(r.headers['webhook-id'])));
  let delivered = 0;
  for (const id of ids) {
    const d = (await getDelivery(suite.db, account.id, id))!;
    const ep = endpointOf.get(id);
    if (!sent.has(id)) {
      expect([id, d.status, d.attempt_count]).toEqual([id, 'cancelled', 0]);
      if (ep === quiet.id) expect(d.final_reason).toBe('endpoint disabled');
    } else if (ep === failing.id) {
      // In flight when cancelled, then failed: stays cancelled, and no retry workflow.
      expect([id, d.status, d.attempt_count]).toEqual([id, 'cancelled', 1]);
    } else {
      // In flight when cancelled (or disabled), then 2xx: delivered, no reason left.
      expect([id, d.status, d.final_reason, d.attempt_count]).toEqual([id, 'delivered', null, 1]);
      delivered++;
    }
  }
  expect(sent.size).toBe(50);
  expect(retries.size).toBe(0); // (the batch offers the failed ones for hand-over; cancelled, none is taken)
  expect(batch.delivered).toBe(delivered);
});
