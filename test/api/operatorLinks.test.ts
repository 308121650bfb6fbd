import { markDispatched } from '../../src/db/deliveries';
import { newAccount, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { waitFor } from '../helpers/receiver';

/** The Temporal Web UI is the operator's, unauthenticated: customers never get links to it. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ TEMPORAL_UI_URL: 'http://127.0.0.1:8233' }, { worker: false });
});
afterAll(async () => {
  await h?.close();
});

/** The admin's view of a delivery once it names its workflow (the 202 may come before the batch's start is recorded, ≤ 5 s). */
const adminViewOnceLinked = (accountId: string, id: string) =>
  waitFor(
    async () => {
      const got = await h.call('GET', `/v1/deliveries/${id}?accountId=${accountId}`);
      return got.body.workflowId ? got : undefined;
    },
    'the delivery records its batch',
    5_000,
  );

test('when a customer reads deliveries (API key or portal link), then no Temporal Web UI link is included; the admin gets one', async () => {
  const a = await newAccount(h);
  await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'https://127.0.0.1/hook', eventTypes: ['referrer_added'] } });
  const pub = await h.call('POST', '/v1/events', { body: { accountId: a.id, eventType: 'referrer_added', data: participant() } });
  const id = pub.body.deliveries[0].id;
  const portal = await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: {} });
  const portalToken = new URL(portal.body.url).hash.replace('#token=', '');

  // The 202 may come before the batch's start is recorded (publishEvent): the link is there once it is,
  // and only then is there a link a customer must not get.
  const admin = await adminViewOnceLinked(a.id, id);
  expect(admin.body.workflowUrl).toMatch(/^http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\//);
  for (const token of [a.apiKey, portalToken]) {
    const list = await h.call('GET', '/v1/deliveries', { token });
    const one = await h.call('GET', `/v1/deliveries/${id}`, { token });
    expect([list.status, one.status]).toEqual([200, 200]);
    expect(JSON.stringify([list.body, one.body])).not.toContain('8233');
    expect(one.body.workflowUrl).toBeUndefined();
  }
});

test('when a delivery was just published and no workflow has claimed it yet, then its workflow link opens the first-attempt batch that was started for it, which exists', async () => {
  const a = await newAccount(h);
  await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'https://127.0.0.1/hook', eventTypes: ['referrer_added'] } });
  const pub = await h.call('POST', '/v1/events', { body: { accountId: a.id, eventType: 'referrer_added', data: participant() } });
  const id = pub.body.deliveries[0].id;

  // No worker here: the batch is started, but never runs its first attempt (which would claim it).
  // The 202 may come before that start (publishEvent): the link is there once it was started.
  const admin = await adminViewOnceLinked(a.id, id);
  expect(admin.body).toMatchObject({ status: 'pending', workflowId: `batch-${id}`, workflowUrl: `http://127.0.0.1:8233/namespaces/default/workflows/batch-${id}` });
  const described = await h.client.workflow.getHandle(admin.body.workflowId).describe();
  expect(described.type).toBe('deliverBatch');
});

test("when a batch's start is recorded after it already handed the delivery to its retry workflow, then the link stays on the retry workflow", async () => {
  const a = await newAccount(h);
  await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'https://127.0.0.1/hook', eventTypes: ['referrer_added'] } });
  const pub = await h.call('POST', '/v1/events', { body: { accountId: a.id, eventType: 'referrer_added', data: participant() } });
  const id = pub.body.deliveries[0].id;
  const link = async () => (await h.call('GET', `/v1/deliveries/${id}?accountId=${a.id}`)).body.workflowId;
  await waitFor(async () => ((await link()) === `batch-${id}` ? true : undefined), 'the batch start to be recorded');

  await h.db.query('update deliveries set workflow_id = $2 where id = $1', [id, `delivery-${id}`]); // the batch's attempt record handed it over
  expect(await link()).toBe(`batch-${id}`); // its retry workflow is not started yet: the batch, which starts it
  await markDispatched(h.db, [{ id, series: 1, workflowId: `delivery-${id}` }]); // Dispatcher.startRetryWorkflows
  await markDispatched(h.db, [{ id, series: 1, workflowId: `batch-${id}` }]); // the batch's own start, recorded late
  expect(await link()).toBe(`delivery-${id}`);
});
