import { WorkflowNotFoundError } from '@temporalio/client';
import { batchWorkflowId, workflowIdFor } from '../../src/domain/workflowIds';
import { startHarness, newAccount, participant, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor } from '../helpers/receiver';

/**
 * Fairness between accounts: every workflow the service starts carries its account as Temporal
 * fairness key, so the server's matching hands one account's backlog out in turn with the others.
 */
let h: Harness;
let receiver: Receiver;

beforeAll(async () => {
  // Fairness keys are on workflows: every first attempt runs in a batch workflow here (the flood
  // against first attempts sent from the process is bench/fairness.ts's, under `npm start`).
  h = await startHarness({ DISPATCH_INLINE: 'false' });
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

async function accountWithEndpoints(harness: Harness, n: number) {
  const account = await newAccount(harness);
  const endpoints = [];
  for (let i = 0; i < n; i++) {
    const ep = await harness.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: `${receiver.url}?ep=${i}`, eventTypes: ['referrer_added'] } });
    expect(ep.status).toBe(201);
    endpoints.push(ep.body);
  }
  return { account, endpoints };
}

/** The batch workflow that made the first attempt of these deliveries (its id is the first delivery's). */
async function batchOf(harness: Harness, deliveryIds: string[]) {
  return waitFor(async () => {
    for (const id of deliveryIds) {
      try {
        return await harness.client.workflow.getHandle(batchWorkflowId(id)).describe();
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }
    return undefined;
  }, 'the batch workflow');
}

test('when an event is published, then its first-attempt batch carries the account as fairness key, weighted by its deliveries', async () => {
  const { account } = await accountWithEndpoints(h, 2);

  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(1) } });

  expect(pub.status).toBe(202);
  const batch = await batchOf(
    h,
    pub.body.deliveries.map((d: { id: string }) => d.id),
  );
  expect(batch.type).toBe('deliverBatch');
  // A batch of 2 advances its account's turn twice as far as a single delivery.
  expect(batch.priority).toMatchObject({ fairnessKey: account.id, fairnessWeight: 0.5 });
});

test("when a first attempt fails, then the delivery's retry workflow carries the account as fairness key", async () => {
  const { account } = await accountWithEndpoints(h, 1);
  receiver.respond = (_req, n) => (n === 1 ? { status: 503, body: 'down' } : { status: 200, body: 'ok' });

  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(2) } });

  const deliveryId = pub.body.deliveries[0].id;
  const retry = await waitFor(async () => {
    try {
      return await h.client.workflow.getHandle(workflowIdFor(deliveryId, 1)).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
  }, 'the retry workflow');
  expect(retry.type).toBe('deliverWebhook');
  expect(retry.priority?.fairnessKey).toBe(account.id);
  expect(retry.priority?.fairnessWeight ?? 0).toBe(0); // unset: weight 1, one delivery
});

test("when an endpoint's recovery drain is woken, then the drain workflow carries the account as fairness key", async () => {
  const { account, endpoints } = await accountWithEndpoints(h, 1);

  await h.dispatcher.wakeDrain({ endpointId: endpoints[0].id, accountId: account.id, reason: 'test' });

  const drain = await h.client.workflow.getHandle(`drain-${endpoints[0].id}`).describe();
  expect(drain.priority?.fairnessKey).toBe(account.id);
});

test('when TEMPORAL_FAIRNESS is false, then workflows are started without a fairness key', async () => {
  const off = await startHarness({ TEMPORAL_FAIRNESS: 'false', DISPATCH_INLINE: 'false' });
  try {
    const { account } = await accountWithEndpoints(off, 1);
    const pub = await off.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(3) } });
    const batch = await batchOf(off, [pub.body.deliveries[0].id]);
    expect(batch.priority?.fairnessKey).toBeUndefined();
  } finally {
    await off.close();
  }
});
