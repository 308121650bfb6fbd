import { Webhook } from 'standardwebhooks';
import { finishDelivery } from '../../src/db/deliveries';
import { disableEndpoint } from '../../src/db/endpoints';
import { autoDisableIfDue, recordEndpointFailures } from '../../src/db/endpointHealth';
import { OPERATIONAL_EVENT_TYPES, OPERATIONAL_EVENTS, PLATFORM_ACCOUNT_ID, type OperationalEventType } from '../../src/domain/operationalEvents';
import { newAccount, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor, type ReceivedRequest } from '../helpers/receiver';

// Runs once on PGlite and once on a real Postgres (the api:pglite and api:postgres projects):
// a real Temporal dev server, real receivers, the platform's operational endpoint among them.
let h: Harness;
let ops: Receiver;
let opsEndpoint: { id: string; secret: string };
let receiver: Receiver;

beforeAll(async () => {
  h = await startHarness({ CIRCUIT_OPEN_AFTER: '2', DELIVERY_WINDOW: '10s' });
  ops = await new Receiver().start();
  const created = await h.call('POST', '/v1/operational-endpoints', { body: { url: ops.url, eventTypes: OPERATIONAL_EVENT_TYPES, description: 'email customers' } });
  expect(created.status).toBe(201);
  opsEndpoint = created.body;
});
afterAll(async () => {
  await h?.close();
  await ops?.stop();
});
beforeEach(async () => {
  receiver = await new Receiver().start();
});
afterEach(async () => {
  await receiver.stop();
});

interface OpsEvent {
  eventType: OperationalEventType;
  data: Record<string, any>;
  createdAt: number;
  req: ReceivedRequest;
}

/** Every operational webhook received so far, each verified as Standard Webhooks signed with the operational endpoint's secret. */
function received(): OpsEvent[] {
  return ops.requests.map((req) => {
    new Webhook(opsEndpoint.secret).verify(req.body, {
      'webhook-id': req.headers['webhook-id'] as string,
      'webhook-timestamp': req.headers['webhook-timestamp'] as string,
      'webhook-signature': req.headers['webhook-signature'] as string,
    });
    return { ...JSON.parse(req.body), req };
  });
}
const opsEvent = (type: OperationalEventType, endpointId: string, timeoutMs = 30_000) =>
  waitFor(() => received().find((e) => e.eventType === type && e.data.endpointId === endpointId), `${type} for ${endpointId}`, timeoutMs);
const valid = (e: OpsEvent) => expect(OPERATIONAL_EVENTS[e.eventType].schema.safeParse(e.data).error?.issues).toBeUndefined();

test('when a customer endpoint fails until its circuit opens, recovers, answers 410 and is changed and deleted, then the operational endpoint receives endpoint.created, failing, recovered, disabled, delivery.exhausted, updated and deleted, each signed', async () => {
  const account = await newAccount(h);
  const created = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'], description: 'CRM' } });
  const endpointId: string = created.body.id;
  const createdEvent = await opsEvent('endpoint.created', endpointId);
  expect(createdEvent.data).toEqual({ accountId: account.id, endpointId, url: receiver.url, description: 'CRM', eventTypes: ['referrer_added'], enabled: true });
  expect(createdEvent.req.headers['x-rr-signature']).toMatch(/^[0-9a-f]{64}$/);

  // Two failures in a row (CIRCUIT_OPEN_AFTER=2) open the circuit: endpoint.failing, once.
  receiver.respond = () => ({ status: 503, body: 'down' });
  const held: string[] = [];
  for (let i = 1; i <= 2; i++)
    held.push((await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(i) } })).body.deliveries[0].id);
  const failing = await opsEvent('endpoint.failing', endpointId);
  expect(failing.data).toMatchObject({ accountId: account.id, endpointId, url: receiver.url, consecutiveFailures: 2, lastError: 'HTTP 503' });
  valid(failing);

  // The receiver is back; retry-now probes it, the circuit closes: endpoint.recovered.
  receiver.respond = () => ({ status: 200 });
  expect((await h.call('POST', `/v1/endpoints/${endpointId}/retry`, { token: account.apiKey })).status).toBe(202);
  const recovered = await opsEvent('endpoint.recovered', endpointId);
  expect(recovered.data).toMatchObject({ accountId: account.id, endpointId, failingSince: failing.data.failingSince });
  valid(recovered);
  for (const id of held)
    await waitFor(async () => ((await h.call('GET', `/v1/deliveries/${id}`, { token: account.apiKey })).body.status === 'delivered' ? true : undefined), `${id} delivered`);

  // 410 Gone: the delivery is undeliverable and the endpoint disabled.
  receiver.respond = () => ({ status: 410 });
  const published = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(3) } });
  const deliveryId = published.body.deliveries[0].id;
  const disabled = await opsEvent('endpoint.disabled', endpointId);
  expect(disabled.data).toMatchObject({ accountId: account.id, endpointId, trigger: 'automatic', reason: 'receiver answered 410 Gone; endpoint disabled' });
  valid(disabled);
  const exhausted = await opsEvent('delivery.exhausted', endpointId);
  expect(exhausted.data).toMatchObject({
    accountId: account.id,
    endpointId,
    deliveryId,
    eventType: 'referrer_added',
    attemptCount: 1,
    reason: 'receiver answered 410 Gone; endpoint disabled',
  });
  valid(exhausted);

  expect((await h.call('PATCH', `/v1/endpoints/${endpointId}`, { token: account.apiKey, body: { enabled: true, description: 'CRM v2' } })).status).toBe(200);
  const updated = await opsEvent('endpoint.updated', endpointId);
  expect(updated.data).toMatchObject({ endpointId, description: 'CRM v2', enabled: true });
  expect((await h.call('DELETE', `/v1/endpoints/${endpointId}`, { token: account.apiKey })).status).toBe(204);
  expect((await opsEvent('endpoint.deleted', endpointId)).data).toEqual({ accountId: account.id, endpointId, url: receiver.url });

  const mine = received().filter((e) => e.data.endpointId === endpointId);
  expect(mine.map((e) => e.eventType).filter((t) => t === 'endpoint.failing')).toHaveLength(1); // once per streak
  expect(new Set(mine.map((e) => e.req.headers['webhook-id'])).size).toBe(mine.length); // one delivery each
});

test('when a delivery is retried until its window closes, then the operational endpoint receives delivery.exhausted', async () => {
  const account = await newAccount(h);
  const created = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } });
  receiver.respond = () => ({ status: 500 });
  const published = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(1) } });
  const exhausted = await opsEvent('delivery.exhausted', created.body.id, 40_000); // DELIVERY_WINDOW=10s
  expect(exhausted.data).toMatchObject({ accountId: account.id, deliveryId: published.body.deliveries[0].id, reason: expect.stringMatching(/^retry window exhausted/) });
  expect(exhausted.data.attemptCount).toBeGreaterThanOrEqual(2);
  valid(exhausted);
}, 60_000);

test('when an endpoint is auto-disabled and the process dies before anything is started, then the event is already stored with its delivery, and the reconciler delivers it', async () => {
  const account = await newAccount(h);
  const created = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } });
  const endpointId: string = created.body.id;
  const since = new Date(Date.now() - 6 * 86_400_000);
  const [row] = await recordEndpointFailures(h.db, [{ endpointId, at: since, count: 1, error: 'HTTP 503' }], 100, 10_000);

  // What the activity does, without its kick: the state change alone.
  expect(await autoDisableIfDue(h.db, endpointId, row.failing_since, new Date(), 5 * 86_400_000)).toBe(true);
  const stored = await h.db.query<{ body: string; deliveries: number }>(
    `select e.body, (select count(*) from deliveries d where d.event_id = e.id and d.endpoint_id = $2)::int as deliveries
     from events e where e.account_id = $1 and e.event_type = 'endpoint.disabled' and e.body like '%' || $3 || '%'`,
    [PLATFORM_ACCOUNT_ID, opsEndpoint.id, endpointId],
  );
  expect(stored).toHaveLength(1);
  expect(stored[0].deliveries).toBe(1);

  await h.reconciler.once(0);
  const disabled = await opsEvent('endpoint.disabled', endpointId);
  expect(disabled.data).toMatchObject({ trigger: 'automatic', reason: `auto-disabled: every attempt failed since ${since.toISOString()}` });
  expect(disabled.req.body).toBe(stored[0].body);
});

test('when the operational endpoint itself fails, opens, is disabled or exhausts a delivery, then no operational event is emitted about it', async () => {
  const before = await h.db.query<{ n: number }>('select count(*)::int as n from events where account_id = $1', [PLATFORM_ACCOUNT_ID]);
  const [row] = await recordEndpointFailures(h.db, [{ endpointId: opsEndpoint.id, at: new Date(Date.now() - 86_400_000), count: 10, error: 'HTTP 503' }], 2, 10_000);
  expect(row.state).toBe('open');
  const [delivery] = await h.db.query<{ id: string; series: number }>(`select id, series from deliveries where endpoint_id = $1 order by id limit 1`, [opsEndpoint.id]);
  await h.db.query(`update deliveries set status = 'pending' where id = $1`, [delivery.id]);
  expect(await finishDelivery(h.db, { deliveryId: delivery.id, series: delivery.series, status: 'undeliverable', reason: 'retry window exhausted', at: new Date() })).toBe(true);
  expect(await disableEndpoint(h.db, opsEndpoint.id, 'receiver answered 410 Gone', new Date())).toBe(true);

  const after = await h.db.query<{ n: number }>('select count(*)::int as n from events where account_id = $1', [PLATFORM_ACCOUNT_ID]);
  expect(after[0].n).toBe(before[0].n);
  // Back to work for the other tests.
  expect((await h.call('PATCH', `/v1/operational-endpoints/${opsEndpoint.id}`, { body: { enabled: true } })).status).toBe(200);
});

test("when operational endpoints are managed, then only the admin token may, event types are checked, the secret has its own route, and the internal platform account is no customer's", async () => {
  const account = await newAccount(h);
  expect((await h.call('GET', '/v1/operational-endpoints', { token: account.apiKey })).status).toBe(403);
  const bad = await h.call('POST', '/v1/operational-endpoints', { body: { url: ops.url, eventTypes: ['referrer_added', 'endpoint.failing'] } });
  expect(bad.status).toBe(400);
  expect(bad.body.errors).toEqual([{ path: 'eventTypes.0', message: expect.stringContaining('unknown operational event type "referrer_added"') }]);

  const created = await h.call('POST', '/v1/operational-endpoints', { body: { url: ops.url, eventTypes: ['delivery.exhausted', 'delivery.exhausted'] } });
  expect(created.status).toBe(201);
  expect(created.body).toMatchObject({ url: ops.url, eventTypes: ['delivery.exhausted'], enabled: true, secret: expect.stringMatching(/^whsec_/), health: { state: 'healthy' } });
  const id = created.body.id;
  expect((await h.call('GET', `/v1/operational-endpoints/${id}/secret`)).body).toEqual({ secret: created.body.secret });
  const rotated = await h.call('POST', `/v1/operational-endpoints/${id}/secret/rotate`);
  expect(rotated.body.secret).not.toBe(created.body.secret);
  const [stored] = await h.db.query<{ secret: string }>('select secret from endpoints where id = $1', [id]);
  expect(stored.secret.startsWith('enc:')).toBe(true); // encrypted at rest like every endpoint secret
  const list = await h.call('GET', '/v1/operational-endpoints');
  expect(list.body.data.map((e: { id: string }) => e.id)).toEqual(expect.arrayContaining([opsEndpoint.id, id]));
  expect(list.body.data[0].secret).toBeUndefined();
  expect((await h.call('PATCH', `/v1/operational-endpoints/${id}`, { body: { eventTypes: ['endpoint.failing'] } })).body.eventTypes).toEqual(['endpoint.failing']);
  expect((await h.call('DELETE', `/v1/operational-endpoints/${id}`)).status).toBe(204);
  expect((await h.call('GET', `/v1/operational-endpoints/${id}`)).status).toBe(404);
  // A customer endpoint is not an operational one, nor the other way round.
  const customer = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } });
  expect((await h.call('GET', `/v1/operational-endpoints/${customer.body.id}`)).status).toBe(404);
  expect((await h.call('GET', `/v1/endpoints/${opsEndpoint.id}?accountId=${account.id}`)).status).toBe(404);

  expect((await h.call('GET', `/v1/accounts/${PLATFORM_ACCOUNT_ID}`)).status).toBe(404);
  expect((await h.call('GET', `/v1/endpoints?accountId=${PLATFORM_ACCOUNT_ID}`)).status).toBe(404);
  const forged = await h.call('POST', '/v1/events', { body: { accountId: PLATFORM_ACCOUNT_ID, eventType: 'referrer_added', data: participant(1) } });
  expect(forged.status).toBe(404);
});
