import { createDeliveryActivities } from '../../src/activities/delivery';
import { silentLogger } from '../../src/logger';
import { publishEvent } from '../../src/services/publishEvent';
import { scheduleFrom } from '../../src/services/workflowStartOptions';
import { deliveryStatuses, dyingDispatcher, paidAccountWithEndpoint, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor } from '../helpers/receiver';

let h: Harness;
let receiver: Receiver;

beforeAll(async () => {
  h = await startHarness();
  receiver = await new Receiver().start();
});
afterAll(async () => {
  await receiver?.stop();
  await h?.close();
});

const statuses = (accountId: string) => deliveryStatuses(h, accountId);

test('when the API dies between storing an event and starting its workflow, then the retried publish and the reconciler deliver it exactly once', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
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
  await h.reconciler.once(0);
  await waitFor(async () => ((await statuses(account.id))[0].status === 'delivered' ? true : undefined), 'delivery');
  await new Promise((r) => setTimeout(r, 500));
  expect(receiver.byWebhookId(stored.id)).toHaveLength(1);
});

test('when the caller never retries after such a crash, then the reconciler alone starts the delivery', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  await expect(
    publishEvent({ db: h.db, dispatcher: dyingDispatcher, maxPayloadBytes: 1e6 }, { accountId: account.id, eventType: 'referrer_added', data: participant(2) }),
  ).rejects.toThrow();
  const [stored] = await statuses(account.id);

  expect(await h.reconciler.once(0)).toBeGreaterThanOrEqual(1);

  await waitFor(async () => ((await statuses(account.id))[0].status === 'delivered' ? true : undefined), 'delivery');
  expect(receiver.byWebhookId(stored.id)).toHaveLength(1);
});

test('when the API dies after starting the workflow but before recording it, then reconciling does not start a second one', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(3) } });
  const id = pub.body.deliveries[0].id;
  await waitFor(async () => ((await statuses(account.id))[0].status === 'delivered' ? true : undefined), 'delivery');
  await h.db.query('update deliveries set dispatched_series = 0 where id = $1', [id]); // the lost bookkeeping write

  await h.reconciler.once(0);

  // Recorded by the start, or (first attempts sent from the process) by the run that finds it delivered.
  const dispatched = async () => (await h.db.query<{ dispatched_series: number }>('select dispatched_series from deliveries where id = $1', [id]))[0].dispatched_series;
  await waitFor(async () => ((await dispatched()) === 1 ? true : undefined), 'the delivered delivery to count as dispatched', 5_000);
  await new Promise((r) => setTimeout(r, 1_000));
  expect(receiver.byWebhookId(id)).toHaveLength(1);
});

test('when a delivery whose batch already ran is reconciled together with one that never started, then the other one is delivered too (the batch names collide; the rest goes in a batch of its own)', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const first = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(5) } });
  const firstId: string = first.body.deliveries[0].id;
  await waitFor(async () => ((await statuses(account.id))[0]?.status === 'delivered' ? true : undefined), 'the first delivery');
  // Its start not recorded (a lost write), then a second event accepted by a process that died before starting it.
  await h.db.query("update deliveries set dispatched_series = 0, updated_at = now() - interval '1 minute' where id = $1", [firstId]);
  await expect(
    publishEvent({ db: h.db, dispatcher: dyingDispatcher, maxPayloadBytes: 1e6 }, { accountId: account.id, eventType: 'referrer_added', data: participant(6) }),
  ).rejects.toThrow();
  const secondId = (await statuses(account.id)).map((d) => d.id).find((id) => id !== firstId)!;

  // One pass gathers both into one batch, oldest first: named after the first, which exists already.
  expect(await h.reconciler.once(0)).toBeGreaterThanOrEqual(2);
  await waitFor(async () => ((await statuses(account.id)).every((d) => d.status === 'delivered') ? true : undefined), 'both delivered', 20_000);
  expect(receiver.byWebhookId(firstId)).toHaveLength(1);
  expect(receiver.byWebhookId(secondId)).toHaveLength(1);
});

test("when a batch's hand-over runs again after the retry workflow it started has delivered (the first run's worker died), then that retry workflow stays the delivery's owner; one never started leaves it with the batch", async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const failedOnce = new Set<string>();
  receiver.respond = (r) => {
    const id = String(r.headers['webhook-id']);
    if (failedOnce.has(id)) return { status: 200, body: 'ok' };
    failedOnce.add(id);
    return { status: 503, body: 'down for a moment' };
  };
  try {
    const res = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(7) } });
    const id: string = res.body.deliveries[0].id;
    const owner = async () => (await h.db.query<{ status: string; workflow_id: string }>('select status, workflow_id from deliveries where id = $1', [id]))[0];
    // The batch's attempt failed and handed it over; its retry workflow delivered it.
    await waitFor(async () => ((await owner()).status === 'delivered' ? true : undefined), 'the retry workflow to deliver it', 20_000);
    expect((await owner()).workflow_id).toBe(`delivery-${id}`);

    // The batch's startRetries local activity once more, as the survivor re-runs a dead worker's workflow task.
    const { startRetries } = createDeliveryActivities({
      db: h.db,
      send: () => Promise.reject(new Error('no request expected')),
      log: silentLogger,
      autoDisableAfterMs: h.cfg.AUTO_DISABLE_AFTER,
      startRetryWorkflows: (r) => h.dispatcher.startRetryWorkflows(r),
      existingWorkflows: (ids) => h.dispatcher.existingWorkflows(ids),
    });
    const request = {
      batchId: `batch-${id}`,
      accountId: account.id,
      retrying: [{ deliveryId: id, series: 1, delayMs: 1_000 }],
      windowEndsAtMs: Date.now() + 60_000,
      schedule: scheduleFrom(h.cfg),
      attemptTimeoutMs: h.cfg.ATTEMPT_TIMEOUT,
    };
    await startRetries(request);
    expect((await owner()).workflow_id).toBe(`delivery-${id}`);

    // A delivery handed over whose retry workflow was never started (finished by the API in
    // between): the batch that made its attempts stays its owner, a workflow that exists.
    await h.db.query(`update deliveries set workflow_id = $2 where id = $1`, [id, `delivery-${id}-9`]);
    await startRetries({ ...request, retrying: [{ deliveryId: id, series: 9, delayMs: 1_000 }] });
    expect((await owner()).workflow_id).toBe(`batch-${id}`);
  } finally {
    receiver.respond = () => ({ status: 200, body: 'ok' });
  }
});
