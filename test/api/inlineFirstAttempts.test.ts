import { publishEvent } from '../../src/services/publishEvent';
import { batchWorkflowId } from '../../src/domain/workflowIds';
import { dyingDispatcher, paidAccountWithEndpoint, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor } from '../helpers/receiver';

// First attempts sent straight from the process that accepted them (DISPATCH_INLINE, on in the
// harness as in `npm start`): no batch workflow, a retry workflow only for what must be retried,
// and nothing lost when the process dies during the attempt.

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
afterEach(() => {
  receiver.respond = () => ({ status: 200, body: 'ok' });
});

interface Row {
  status: string;
  workflow_id: string | null;
  dispatched_series: number;
  attempt_count: number;
  attempt_lease_until: Date | null;
}
const row = async (id: string) =>
  (await h.db.query<Row>('select status, workflow_id, dispatched_series, attempt_count, attempt_lease_until from deliveries where id = $1', [id]))[0];

async function acceptedButUnsent(accountId: string, n: number): Promise<string> {
  await expect(publishEvent({ db: h.db, dispatcher: dyingDispatcher, maxPayloadBytes: 1e6 }, { accountId, eventType: 'referrer_added', data: participant(n) })).rejects.toThrow();
  const [d] = await h.db.query<{ id: string }>('select id from deliveries where account_id = $1 order by id desc limit 1', [accountId]);
  return d.id;
}

test('when a webhook is published and its endpoint answers 200, then it is delivered from the process without any workflow, and counts as dispatched', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const res = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(1) } });
  expect(res.status).toBe(202);
  const id: string = res.body.deliveries[0].id;

  await waitFor(async () => ((await row(id)).status === 'delivered' ? true : undefined), 'delivery');
  const r = await row(id);
  expect(r.workflow_id).toMatch(/^inline-/);
  expect(r.dispatched_series).toBe(1); // the reconciler leaves it alone
  expect(r.attempt_lease_until).toBeNull(); // the attempt record released its fence
  expect(receiver.byWebhookId(id)).toHaveLength(1);
  expect(await h.dispatcher.existingWorkflows([batchWorkflowId(id), `delivery-${id}`])).toEqual(new Set());
  expect(await h.reconciler.once(0)).toBe(0);

  // No workflow to link to: the operator's link is absent, not a workflow that does not exist.
  const got = await h.call('GET', `/v1/deliveries/${id}?accountId=${account.id}`);
  expect(got.body.workflowId).toBeUndefined();
  expect(got.body.attemptCount).toBe(1);
});

test('when the first attempt fails, then the delivery continues in its own retry workflow, which delivers it', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const seen = new Set<string>();
  receiver.respond = (req) => {
    const id = String(req.headers['webhook-id']);
    if (seen.has(id)) return { status: 200, body: 'ok' };
    seen.add(id);
    return { status: 503, body: 'down for a moment' };
  };
  const res = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(2) } });
  const id: string = res.body.deliveries[0].id;

  await waitFor(async () => ((await row(id)).status === 'delivered' ? true : undefined), 'the retry to deliver it', 20_000);
  const r = await row(id);
  expect(r.workflow_id).toBe(`delivery-${id}`);
  expect(r.attempt_count).toBe(2);
  expect(r.dispatched_series).toBe(1);
  expect(await h.dispatcher.existingWorkflows([batchWorkflowId(id), `delivery-${id}`])).toEqual(new Set([`delivery-${id}`]));
  expect(receiver.byWebhookId(id).map((x) => x.headers['webhook-id'])).toEqual([id, id]);
  expect((await h.call('GET', `/v1/deliveries/${id}?accountId=${account.id}`)).body.workflowId).toBe(`delivery-${id}`);
  // Its Web UI page says who made the first attempt: no batch workflow to look for.
  const described = await h.client.workflow.getHandle(`delivery-${id}`).describe();
  expect(await described.staticDetails()).toContain('Its first attempt was made by the service process that accepted it (`inline-');
});

test('when the process died during an inline first attempt, then the reconciler leaves the delivery while its lease holds and takes it over once the lease ended: delivered once', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const id = await acceptedButUnsent(account.id, 3);
  // What the dead process left: its claim, and its attempt fence under a lease.
  await h.db.query(
    "update deliveries set workflow_id = 'inline-dead-0001', attempt_token = 'inline-dead-0001#1#x', attempt_lease_until = now() + interval '1 hour', updated_at = now() - interval '1 minute' where id = $1",
    [id],
  );

  expect(await h.reconciler.once(0)).toBe(0); // its request may still be in flight
  await new Promise((r) => setTimeout(r, 500));
  expect(receiver.byWebhookId(id)).toHaveLength(0);

  await h.db.query("update deliveries set attempt_lease_until = now() - interval '1 second' where id = $1", [id]);
  expect(await h.reconciler.once(0)).toBe(1);
  await waitFor(async () => ((await row(id)).status === 'delivered' ? true : undefined), 'the take-over to deliver it');
  expect((await row(id)).workflow_id).not.toBe('inline-dead-0001');
  await new Promise((r) => setTimeout(r, 500));
  expect(receiver.byWebhookId(id)).toHaveLength(1);
});

test('when the process died after releasing its fence but before handing the delivery over, then the reconciler takes it over at once', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const id = await acceptedButUnsent(account.id, 4);
  await h.db.query("update deliveries set workflow_id = 'inline-dead-0002', updated_at = now() - interval '1 minute' where id = $1", [id]);

  expect(await h.reconciler.once(0)).toBe(1);
  await waitFor(async () => ((await row(id)).status === 'delivered' ? true : undefined), 'the take-over to deliver it');
  expect(receiver.byWebhookId(id)).toHaveLength(1);
});

test('when a delivery is owned by a workflow, then no claim takes it over, whatever its lease', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const id = await acceptedButUnsent(account.id, 5);
  // Handed to its retry workflow (which waits out its back-off): not an inline owner.
  await h.db.query(`update deliveries set workflow_id = $2, updated_at = now() - interval '1 minute' where id = $1`, [id, `delivery-${id}-7`]);

  expect(await h.reconciler.once(0)).toBe(1);
  await new Promise((r) => setTimeout(r, 1_500));
  expect(receiver.byWebhookId(id)).toHaveLength(0);
  expect((await row(id)).workflow_id).toBe(`delivery-${id}-7`);
});

test('when a batch lists a delivery twice (dispatched again while its batch gathered), then it is claimed and sent once', async () => {
  const account = await paidAccountWithEndpoint(h, receiver.url);
  const id = await acceptedButUnsent(account.id, 7);
  await h.dispatcher.startBatchWorkflow({
    accountId: account.id,
    deliveries: [
      { deliveryId: id, series: 1 },
      { deliveryId: id, series: 1 },
    ],
  });
  await waitFor(async () => ((await row(id)).status === 'delivered' ? true : undefined), 'delivery');
  await new Promise((r) => setTimeout(r, 300)); // a second request would be on its way
  expect(receiver.byWebhookId(id)).toHaveLength(1);
});
