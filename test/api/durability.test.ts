import { publishEvent } from '../../src/services/publishEvent';
import type { Dispatcher } from '../../src/services/dispatcher';
import { deliveryStatuses, paidAccountWithEndpoint, participant, startHarness, type Harness } from '../helpers/apiHarness';
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

/** A dispatcher that "dies" before it starts anything, like a process killed right after the commit. */
const dyingDispatcher = {
  dispatchAll: async () => {
    throw new Error('process killed');
  },
} as unknown as Dispatcher;

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

  const [row] = await h.db.query<{ dispatched_series: number }>('select dispatched_series from deliveries where id = $1', [id]);
  expect(row.dispatched_series).toBe(1);
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
