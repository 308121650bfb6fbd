import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { startHarness, newAccount, participant, type Harness } from '../helpers/apiHarness';
import { historyToJson, readableText } from '../helpers/historyJson';
import { Receiver, waitFor } from '../helpers/receiver';

let h: Harness;
/** Every first attempt in a batch workflow, as without DISPATCH_INLINE (the separate API and worker processes). */
let hw: Harness;
let receiver: Receiver;

beforeAll(async () => {
  h = await startHarness();
  hw = await startHarness({ DISPATCH_INLINE: 'false' });
});
afterAll(async () => {
  await Promise.all([h?.close(), hw?.close()]);
});
beforeEach(async () => {
  receiver = await new Receiver().start();
});
afterEach(async () => {
  await receiver.stop();
});

async function setup(eventTypes = ['referrer_added', 'reward_unlocked'], on = h) {
  const account = await newAccount(on);
  const ep = await on.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes, description: 'CRM sync' } });
  expect(ep.status).toBe(201);
  return { account, endpoint: ep.body };
}

async function delivered(token: string, id: string, on = h) {
  return waitFor(async () => {
    const r = await on.call('GET', `/v1/deliveries/${id}`, { token });
    return r.body.status !== 'pending' ? r.body : undefined;
  }, `delivery ${id} to finish`);
}

test('when an event is published, then each subscribed endpoint receives it signed and the delivery is delivered', async () => {
  const { account, endpoint } = await setup();
  const other = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referee_added'] } });
  expect(other.status).toBe(201);

  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(7) } });

  expect(pub.status).toBe(202);
  expect(pub.body.deliveries).toEqual([{ id: expect.stringMatching(/^dlv_/), endpointId: endpoint.id }]);
  const deliveryId = pub.body.deliveries[0].id;
  const detail = await delivered(account.apiKey, deliveryId);
  expect(detail).toMatchObject({ id: deliveryId, eventId: pub.body.id, endpointId: endpoint.id, eventType: 'referrer_added', status: 'delivered', attemptCount: 1 });
  expect(detail.attempts).toEqual([expect.objectContaining({ attempt: 1, statusCode: 200, responseBody: 'ok' })]);
  expect(receiver.requests).toHaveLength(1);

  const req = receiver.requests[0];
  expect(req.method).toBe('POST');
  expect(req.headers['content-type']).toBe('application/json');
  expect(req.headers['user-agent']).toMatch(/^rr-webhooks\//);
  expect(req.headers['webhook-id']).toBe(deliveryId);
  const body = JSON.parse(req.body);
  expect(body).toEqual({ eventType: 'referrer_added', data: participant(7), createdAt: expect.any(Number), updatedAt: body.createdAt });
  expect(detail.payload).toBe(req.body);

  // The receiver verifies both signatures the way the docs tell customers to.
  const { secret } = (await h.call('GET', `/v1/endpoints/${endpoint.id}/secret`, { token: account.apiKey })).body;
  expect(secret).toBe(endpoint.secret);
  const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(req.body).digest('hex');
  expect(req.headers['x-rr-signature']).toBe(expected);
  const verified = new Webhook(secret).verify(req.body, {
    'webhook-id': req.headers['webhook-id'] as string,
    'webhook-timestamp': req.headers['webhook-timestamp'] as string,
    'webhook-signature': req.headers['webhook-signature'] as string,
  });
  expect(verified).toEqual(body);
  expect(() =>
    new Webhook(secret).verify(req.body + ' ', {
      'webhook-id': deliveryId,
      'webhook-timestamp': req.headers['webhook-timestamp'] as string,
      'webhook-signature': req.headers['webhook-signature'] as string,
    }),
  ).toThrow();
});

test('when the same idempotency key is published twice, then the original answer comes back and only one webhook is sent', async () => {
  const { account } = await setup();
  const event = {
    accountId: account.id,
    eventType: 'reward_unlocked',
    data: { ...participant(3), reward: { id: 'rw1', amount: 10, currency: 'USD', type: 'cash', side: 'referrer' } },
    idempotencyKey: 'reward-rw1',
  };

  const first = await h.call('POST', '/v1/events', { body: event });
  const second = await h.call('POST', '/v1/events', { body: event });

  expect(first.status).toBe(202);
  expect(second.status).toBe(202);
  expect(second.body).toEqual(first.body);
  expect(second.headers.get('idempotent-replayed')).toBe('true');
  await delivered(account.apiKey, first.body.deliveries[0].id);
  await new Promise((r) => setTimeout(r, 500));
  expect(receiver.requests).toHaveLength(1);
  const [{ count }] = await h.db.query<{ count: string }>('select count(*) from events where account_id = $1', [account.id]);
  expect(Number(count)).toBe(1);

  const conflicting = await h.call('POST', '/v1/events', { body: { ...event, data: { ...event.data, participantId: 99 } } });
  expect(conflicting.status).toBe(409);
  expect(conflicting.body.code).toBe('idempotency_conflict');
});

test('when the receiver fails twice, then the delivery is retried with back-off, every attempt is logged, and it ends delivered', async () => {
  const { account } = await setup();
  receiver.respond = (_req, n) => (n <= 2 ? { status: 500, body: `fail ${n}` } : { status: 204 });

  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant() } });
  const detail = await delivered(account.apiKey, pub.body.deliveries[0].id);

  expect(detail.status).toBe('delivered');
  expect(detail.attempts.map((a: any) => [a.attempt, a.statusCode, a.error ?? null, a.responseBody ?? null])).toEqual([
    [1, 500, 'HTTP 500', 'fail 1'],
    [2, 500, 'HTTP 500', 'fail 2'],
    [3, 204, null, null],
  ]);
  const t = detail.attempts.map((a: any) => Date.parse(a.startedAt));
  expect(t[1] - t[0]).toBeGreaterThanOrEqual(900); // 1 s, then 2 s (test schedule)
  expect(t[2] - t[1]).toBeGreaterThanOrEqual(1900);
  expect(new Set(receiver.requests.map((r) => r.headers['webhook-id']))).toEqual(new Set([detail.id]));
});

test('when deliveries are listed, then filters and cursor paging work newest first', async () => {
  const { account, endpoint } = await setup(['referrer_added', 'referee_added']);
  const ids: string[] = [];
  for (const [i, type] of ['referrer_added', 'referee_added', 'referrer_added'].entries()) {
    const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: type, data: participant(i) } });
    ids.push(pub.body.deliveries[0].id);
  }
  for (const id of ids) await delivered(account.apiKey, id);

  const page1 = await h.call('GET', '/v1/deliveries?limit=2', { token: account.apiKey });
  expect(page1.body.data.map((d: any) => d.id)).toEqual([ids[2], ids[1]]);
  const page2 = await h.call('GET', `/v1/deliveries?limit=2&cursor=${page1.body.nextCursor}`, { token: account.apiKey });
  expect(page2.body.data.map((d: any) => d.id)).toEqual([ids[0]]);
  expect(page2.body.nextCursor).toBeNull();
  const referee = await h.call('GET', `/v1/deliveries?eventType=referee_added&endpointId=${endpoint.id}&status=delivered`, { token: account.apiKey });
  expect(referee.body.data.map((d: any) => d.id)).toEqual([ids[1]]);
  const admin = await h.call('GET', `/v1/deliveries?accountId=${account.id}&limit=1`);
  expect(admin.body.data.map((d: any) => d.id)).toEqual([ids[2]]);
});

test('when a test event is sent and a delivery is resent, then both go through the normal path with the same webhook-id on resend', async () => {
  const { account, endpoint } = await setup();
  const test1 = await h.call('POST', `/v1/endpoints/${endpoint.id}/test`, { token: account.apiKey, body: { eventType: 'reward_unlocked' } });
  expect(test1.status).toBe(202);
  const done = await delivered(account.apiKey, test1.body.deliveryId);
  expect(done.status).toBe('delivered');
  expect(JSON.parse(receiver.requests[0].body).eventType).toBe('reward_unlocked');

  const resend = await h.call('POST', `/v1/deliveries/${test1.body.deliveryId}/resend`, { token: account.apiKey });
  expect(resend.status).toBe(202);
  await waitFor(() => receiver.requests.length === 2 || undefined, 'the resent webhook');
  expect(receiver.requests[1].headers['webhook-id']).toBe(test1.body.deliveryId);
  expect(receiver.requests[1].body).toBe(receiver.requests[0].body);
  const after = await delivered(account.apiKey, test1.body.deliveryId);
  expect(after.attempts).toHaveLength(2);
});

test('when an endpoint is disabled while a delivery is retrying, then the delivery is cancelled at once', async () => {
  const { account, endpoint } = await setup();
  receiver.respond = () => ({ status: 503 });
  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant() } });
  await waitFor(() => receiver.requests.length >= 1 || undefined, 'first attempt');

  const patch = await h.call('PATCH', `/v1/endpoints/${endpoint.id}`, { token: account.apiKey, body: { enabled: false } });
  expect(patch.status).toBe(200);
  expect(patch.body.enabled).toBe(false);

  const detail = await delivered(account.apiKey, pub.body.deliveries[0].id);
  expect(detail.status).toBe('cancelled');
  const seen = receiver.requests.length;
  await new Promise((r) => setTimeout(r, 3_000)); // past the next scheduled retry
  expect(receiver.requests.length).toBe(seen);
  const wf = await h.client.workflow.getHandle(detail.workflowId).describe();
  expect(wf.status.name).toMatch(/CANCELLED|COMPLETED/);
});

test("when a delivery succeeds at once in a batch workflow (DISPATCH_INLINE=false), then its workflow is the account's first-attempt batch, filterable by account in the Web UI", async () => {
  const { account } = await setup(undefined, hw);
  const pub = await hw.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant() } });
  const detail = await delivered(account.apiKey, pub.body.deliveries[0].id, hw);
  expect(detail.workflowId).toBe(`batch-${pub.body.deliveries[0].id}`);

  const handle = hw.client.workflow.getHandle(detail.workflowId);
  expect(await handle.result()).toEqual({ delivered: 1, finished: 0, skipped: 0, retrying: 0 });
  const described = await handle.describe();
  expect(described.searchAttributes).toMatchObject({ RrAccountId: [account.id] });
  expect(await described.staticSummary()).toBe('first attempt of 1 delivery');
  const found = await waitFor(async () => {
    const ids: string[] = [];
    for await (const wf of hw.client.workflow.list({ query: `RrAccountId = "${account.id}"` })) ids.push(wf.workflowId);
    return ids.length ? ids : undefined;
  }, 'visibility to index the workflow');
  expect(found).toEqual([detail.workflowId]);
});

test.each([
  { path: 'sent from the process (DISPATCH_INLINE, the default)', inline: true },
  { path: 'made by a batch workflow', inline: false },
])(
  'when a delivery is retried after a first attempt $path, then its own workflow carries search attributes and a summary an operator can filter on in the Web UI',
  async ({ inline }) => {
    const on = inline ? h : hw;
    const { account, endpoint } = await setup(undefined, on);
    receiver.respond = (_req, n) => (n === 1 ? { status: 503 } : { status: 200 });
    const pub = await on.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant() } });
    const deliveryId = pub.body.deliveries[0].id;
    const detail = await delivered(account.apiKey, deliveryId, on);
    expect(detail.status).toBe('delivered');
    expect(detail.attemptCount).toBe(2);
    expect(detail.workflowId).toBe(`delivery-${deliveryId}`);

    const handle = on.client.workflow.getHandle(detail.workflowId);
    expect((await handle.result()).status).toBe('delivered');
    const described = await handle.describe();
    expect(described.searchAttributes).toMatchObject({ RrAccountId: [account.id], RrEndpointId: [endpoint.id], RrEventType: ['referrer_added'], RrDeliveryStatus: ['delivered'] });
    // Endpoint URLs are often capability URLs: Temporal sees scheme and host only.
    expect(await described.staticSummary()).toBe(`referrer_added → ${new URL(receiver.url).origin}/…`);
    for (const id of inline ? [detail.workflowId] : [detail.workflowId, `batch-${deliveryId}`]) {
      const history = readableText(historyToJson(await on.client.workflow.getHandle(id).fetchHistory()));
      expect([id, history]).toEqual([id, expect.stringContaining(new URL(receiver.url).host)]);
      expect([id, history]).toEqual([id, expect.not.stringContaining('/webhooks')]);
    }
    // The batch that made the first attempt handed it over and says so; a first attempt sent from the process left no batch.
    if (inline) expect(await on.dispatcher.existingWorkflows([`batch-${deliveryId}`])).toEqual(new Set());
    else expect(await on.client.workflow.getHandle(`batch-${deliveryId}`).result()).toEqual({ delivered: 0, finished: 0, skipped: 0, retrying: 1 });
    const found = await waitFor(async () => {
      const ids: string[] = [];
      for await (const wf of on.client.workflow.list({ query: `RrAccountId = "${account.id}" AND RrDeliveryStatus = "delivered"` })) ids.push(wf.workflowId);
      return ids.length ? ids : undefined;
    }, 'visibility to index the workflow');
    expect(found).toEqual([detail.workflowId]);
  },
);

test('when deliveries have happened, then /metrics reports attempts, latency, final statuses and pending figures to the admin only', async () => {
  const { account } = await setup();
  receiver.respond = (_req, n) => (n === 1 ? { status: 502 } : { status: 200 });
  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant() } });
  await delivered(account.apiKey, pub.body.deliveries[0].id);

  const res = await fetch(`${h.baseUrl}/metrics`, { headers: { authorization: `Bearer ${h.adminToken}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/text\/plain/);
  const text = await res.text();
  const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);
  expect(value('rr_delivery_attempts_total{outcome="5xx"}')).toBeGreaterThanOrEqual(1);
  expect(value('rr_delivery_attempts_total{outcome="2xx"}')).toBeGreaterThanOrEqual(1);
  expect(value('rr_deliveries_finished_total{status="delivered"}')).toBeGreaterThanOrEqual(1);
  expect(value('rr_delivery_attempt_duration_seconds_count')).toBeGreaterThanOrEqual(2);
  expect(value('rr_deliveries{status="delivered"}')).toBeGreaterThanOrEqual(1);
  expect(text).toMatch(/^rr_deliveries_pending \d+$/m);
  expect(text).toMatch(/^rr_deliveries_oldest_pending_age_seconds [\d.]+$/m);
  expect(text).not.toMatch(/whsec_|rrk_/);

  expect((await fetch(`${h.baseUrl}/metrics`)).status).toBe(401);
  expect((await fetch(`${h.baseUrl}/metrics`, { headers: { authorization: `Bearer ${account.apiKey}` } })).status).toBe(403);
  const ready = await fetch(`${h.baseUrl}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toEqual({ status: 'ready', database: true, temporal: true });
});
