import { Webhook } from 'standardwebhooks';
import { rrSignature } from '../../src/domain/signing';
import { newAccount, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor } from '../helpers/receiver';

// Short windows so rotation overlaps and retry windows end within a test. The circuit breaker is
// out of the way (its probes are seconds apart, a 4 s window would end held resends before the
// probe): test/workflows/circuitBreaker.test.ts covers it.
let h: Harness;
let receiver: Receiver;
beforeAll(async () => {
  h = await startHarness({ SECRET_ROTATION_OVERLAP: '4s', DELIVERY_WINDOW: '4s', CIRCUIT_OPEN_AFTER: '1000' });
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

async function endpointFor(account: { apiKey: string }, eventTypes = ['referrer_added']) {
  const res = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes } });
  expect(res.status).toBe(201);
  return res.body as { id: string; secret: string };
}
const publish = (accountId: string, n = 1) => h.call('POST', '/v1/events', { body: { accountId, eventType: 'referrer_added', data: participant(n) } });
const finished = (token: string, id: string) =>
  waitFor(async () => {
    const r = await h.call('GET', `/v1/deliveries/${id}`, { token });
    return r.body.status !== 'pending' ? r.body : undefined;
  }, `delivery ${id}`);
const headersOf = (i: number) => {
  const r = receiver.requests[i];
  return {
    'webhook-id': String(r.headers['webhook-id']),
    'webhook-timestamp': String(r.headers['webhook-timestamp']),
    'webhook-signature': String(r.headers['webhook-signature']),
  };
};

test('when a secret is rotated, then during the overlap receivers holding the old or the new secret both verify, and after it only the new one', async () => {
  const account = await newAccount(h);
  const ep = await endpointFor(account);
  const rotated = await h.call('POST', `/v1/endpoints/${ep.id}/secret/rotate`, { token: account.apiKey });
  expect(rotated.status).toBe(200);
  const newSecret = rotated.body.secret;
  expect(newSecret).not.toBe(ep.secret);
  expect((await h.call('GET', `/v1/endpoints/${ep.id}/secret`, { token: account.apiKey })).body.secret).toBe(newSecret);

  await finished(account.apiKey, (await publish(account.id)).body.deliveries[0].id);
  const body0 = receiver.requests[0].body;
  expect(headersOf(0)['webhook-signature'].split(' ')).toHaveLength(2);
  expect(new Webhook(ep.secret).verify(body0, headersOf(0))).toBeTruthy();
  expect(new Webhook(newSecret).verify(body0, headersOf(0))).toBeTruthy();
  expect(receiver.requests[0].headers['x-rr-signature']).toBe(rrSignature(newSecret, body0));

  await new Promise((r) => setTimeout(r, 4_500)); // the 4 s overlap ends
  await finished(account.apiKey, (await publish(account.id, 2)).body.deliveries[0].id);
  const body1 = receiver.requests[1].body;
  expect(headersOf(1)['webhook-signature'].split(' ')).toHaveLength(1);
  expect(new Webhook(newSecret).verify(body1, headersOf(1))).toBeTruthy();
  expect(() => new Webhook(ep.secret).verify(body1, headersOf(1))).toThrow();
});

test('when failed deliveries are recovered since a time, then each undeliverable one is resent once, with the same webhook-id', async () => {
  const account = await newAccount(h);
  const ep = await endpointFor(account);
  const since = new Date().toISOString();
  receiver.respond = () => ({ status: 500 });
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await publish(account.id, i)).body.deliveries[0].id);
  for (const id of ids) expect((await finished(account.apiKey, id)).status).toBe('undeliverable');

  receiver.respond = () => ({ status: 200 });
  const failedBefore = receiver.requests.length;
  const recover = await h.call('POST', `/v1/endpoints/${ep.id}/recover`, { token: account.apiKey, body: { since } });
  expect(recover.status).toBe(202);
  expect([...recover.body.deliveryIds].sort()).toEqual([...ids].sort());
  for (const id of ids) expect((await finished(account.apiKey, id)).status).toBe('delivered');
  const resent = receiver.requests.slice(failedBefore);
  expect(resent.map((r) => r.headers['webhook-id']).sort()).toEqual([...ids].sort());

  const again = await h.call('POST', `/v1/endpoints/${ep.id}/recover`, { token: account.apiKey, body: { since } });
  expect(again.body.deliveryIds).toEqual([]); // nothing undeliverable is left: recovering twice sends nothing twice
  const bad = await h.call('POST', `/v1/endpoints/${ep.id}/recover`, { token: account.apiKey, body: { since: 'yesterday' } });
  expect(bad.status).toBe(400);
  expect(bad.body.errors[0].path).toBe('since');
});

test('when an account moves to the free plan, then nothing is delivered and settings writes get 402; moving back restores it', async () => {
  const account = await newAccount(h);
  const ep = await endpointFor(account);
  receiver.respond = () => ({ status: 503 });
  const pending = (await publish(account.id)).body.deliveries[0].id;
  await waitFor(() => receiver.requests.length >= 1 || undefined, 'first attempt');

  expect((await h.call('PATCH', `/v1/accounts/${account.id}`, { body: { plan: 'free' } })).body.plan).toBe('free');
  expect((await finished(account.apiKey, pending)).status).toBe('cancelled');
  const pub = await publish(account.id, 2);
  expect(pub.status).toBe(202);
  expect(pub.body.deliveries).toEqual([]);
  const write = await h.call('PATCH', `/v1/endpoints/${ep.id}`, { token: account.apiKey, body: { description: 'x' } });
  expect(write.status).toBe(402);
  expect(write.body.code).toBe('plan_required');
  expect((await h.call('GET', '/v1/endpoints', { token: account.apiKey })).body.data).toHaveLength(1); // data stays

  receiver.respond = () => ({ status: 200 });
  await h.call('PATCH', `/v1/accounts/${account.id}`, { body: { plan: 'paid' } });
  const back = await publish(account.id, 3);
  expect(back.body.deliveries).toHaveLength(1);
  expect((await finished(account.apiKey, back.body.deliveries[0].id)).status).toBe('delivered');
});

test('when a second account uses its key on every route of the first, then everything is 404 and nothing changes', async () => {
  const a = await newAccount(h);
  const b = await newAccount(h);
  const ep = await endpointFor(a);
  const dlv = (await publish(a.id)).body.deliveries[0].id;
  await finished(a.apiKey, dlv);

  const probes: [string, string, unknown?][] = [
    ['GET', `/v1/endpoints/${ep.id}`],
    ['PATCH', `/v1/endpoints/${ep.id}`, { enabled: false }],
    ['DELETE', `/v1/endpoints/${ep.id}`],
    ['GET', `/v1/endpoints/${ep.id}/secret`],
    ['POST', `/v1/endpoints/${ep.id}/secret/rotate`],
    ['POST', `/v1/endpoints/${ep.id}/test`, {}],
    ['POST', `/v1/endpoints/${ep.id}/recover`, { since: new Date(0).toISOString() }],
    ['GET', `/v1/deliveries/${dlv}`],
    ['POST', `/v1/deliveries/${dlv}/resend`],
  ];
  for (const [method, path, body] of probes) {
    const res = await h.call(method, path, { token: b.apiKey, body });
    expect([method, path, res.status, res.body.code]).toEqual([method, path, 404, 'not_found']);
  }
  expect((await h.call('GET', `/v1/deliveries?endpointId=${ep.id}`, { token: b.apiKey })).body.data).toEqual([]);
  expect((await h.call('GET', `/v1/deliveries?accountId=${a.id}`, { token: b.apiKey })).body.data).toEqual([]); // accountId is for the admin only
  for (const [method, path] of [
    ['GET', `/v1/accounts/${a.id}`],
    ['PATCH', `/v1/accounts/${a.id}`],
    ['POST', '/v1/accounts'],
    ['POST', '/v1/events'],
  ]) {
    expect((await h.call(method, path, { token: b.apiKey, body: method === 'GET' ? undefined : {} })).status).toBe(403);
  }
  // Nothing of A changed.
  const after = await h.call('GET', `/v1/endpoints/${ep.id}`, { token: a.apiKey });
  expect(after.body.enabled).toBe(true);
  expect((await h.call('GET', `/v1/endpoints/${ep.id}/secret`, { token: a.apiKey })).body.secret).toBe(ep.secret);
  expect(receiver.requests).toHaveLength(1);
});
