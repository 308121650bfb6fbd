import { autoDisableIfDue } from '../../src/db/endpointHealth';
import { newAccount, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor } from '../helpers/receiver';

// Runs once on PGlite and once on a real Postgres (the api:pglite and api:postgres projects).
let h: Harness;
let receiver: Receiver;
beforeAll(async () => {
  h = await startHarness();
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

const reward = { id: 'rw_1', amount: 10, currency: 'USD', type: 'cash', side: 'referrer' };
const publish = (accountId: string, eventType: string, n: number) =>
  h.call('POST', '/v1/events', { body: { accountId, eventType, data: eventType === 'reward_unlocked' ? { ...participant(n), reward } : participant(n) } });
const status = async (token: string, id: string) => (await h.call('GET', `/v1/deliveries/${id}`, { token })).body;
const until = (token: string, id: string, want: (d: any) => boolean, what: string) =>
  waitFor(async () => {
    const d = await status(token, id);
    return want(d) ? d : undefined;
  }, `${id} ${what}`);
const eventsOf = async (accountId: string) => h.db.query<{ id: string; event_type: string }>('select id, event_type from events where account_id = $1 order by id', [accountId]);

test('when an endpoint was disabled with a delivery pending and events were published meanwhile, then recover resends the cancelled delivery and delivers the missing events of its types, at most `limit` per call, and a repeated call brings back nothing twice', async () => {
  const account = await newAccount(h);
  const since = new Date(Date.now() - 1000).toISOString();
  await publish(account.id, 'referrer_added', 0); // before the endpoint existed: never "missing"
  const ep = (await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added', 'referee_added'] } })).body;

  const delivered = (await publish(account.id, 'referrer_added', 1)).body.deliveries[0].id;
  await until(account.apiKey, delivered, (d) => d.status === 'delivered', 'delivered');
  receiver.respond = () => ({ status: 503 });
  const pending = (await publish(account.id, 'referrer_added', 2)).body.deliveries[0].id;
  await until(account.apiKey, pending, (d) => d.attemptCount >= 1, 'attempted');
  expect((await h.call('PATCH', `/v1/endpoints/${ep.id}`, { token: account.apiKey, body: { enabled: false } })).status).toBe(200);
  expect((await status(account.apiKey, pending)).status).toBe('cancelled');

  // While disabled: two events of its types, one of another type. None gets a delivery.
  const c = await publish(account.id, 'referrer_added', 3);
  const d = await publish(account.id, 'referee_added', 4);
  await publish(account.id, 'reward_unlocked', 5);
  expect(c.body.deliveries).toEqual([]);
  expect((await h.call('POST', `/v1/endpoints/${ep.id}/recover`, { token: account.apiKey, body: { since } })).status).toBe(409); // enable it first

  receiver.respond = () => ({ status: 200 });
  await h.call('PATCH', `/v1/endpoints/${ep.id}`, { token: account.apiKey, body: { enabled: true } });
  const first = await h.call('POST', `/v1/endpoints/${ep.id}/recover`, { token: account.apiKey, body: { since, limit: 2 } });
  expect(first.status).toBe(202);
  expect(first.body).toMatchObject({ recovered: { undeliverable: 0, cancelled: 1, missing: 1 }, more: true });
  expect(first.body.deliveryIds[0]).toBe(pending);
  const second = await h.call('POST', `/v1/endpoints/${ep.id}/recover`, { token: account.apiKey, body: { since } });
  expect(second.body).toMatchObject({ recovered: { undeliverable: 0, cancelled: 0, missing: 1 }, more: false });
  const third = await h.call('POST', `/v1/endpoints/${ep.id}/recover`, { token: account.apiKey, body: { since } });
  expect(third.body).toEqual({ deliveryIds: [], recovered: { undeliverable: 0, cancelled: 0, missing: 0 }, more: false });

  const created = [first.body.deliveryIds[1], second.body.deliveryIds[0]];
  for (const id of [pending, ...created]) await until(account.apiKey, id, (x) => x.status === 'delivered', 'delivered');
  const byId = await Promise.all(created.map((id) => status(account.apiKey, id)));
  expect(byId.map((x) => x.eventId)).toEqual([c.body.id, d.body.id]); // oldest first
  expect(byId.map((x) => x.eventType)).toEqual(['referrer_added', 'referee_added']);
  const ok = receiver.requests.filter((r) => r.headers['webhook-id'] !== undefined);
  expect(ok.filter((r) => r.headers['webhook-id'] === pending).length).toBeGreaterThanOrEqual(2); // failed before, resent with the same webhook-id
  for (const id of created) expect(receiver.byWebhookId(id)).toHaveLength(1);
  const bodies = receiver.requests.map((r) => JSON.parse(r.body).eventType);
  expect(bodies).not.toContain('reward_unlocked');
  expect((await eventsOf(account.id)).length).toBe(6);
});

test("when auto-disable cancelled an endpoint's held deliveries, then after re-enabling, recover resends them (only `cancelled` when asked) and each is delivered once more", async () => {
  const account = await newAccount(h);
  const since = new Date(Date.now() - 1000).toISOString();
  const ep = (await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } })).body;
  receiver.respond = () => ({ status: 503 });
  const ids: string[] = [];
  for (let i = 1; i <= 3; i++) ids.push((await publish(account.id, 'referrer_added', i)).body.deliveries[0].id);
  for (const id of ids) await until(account.apiKey, id, (x) => x.attemptCount >= 1, 'attempted');

  // The failure streak has lasted the auto-disable period (what the activity finds after a failed attempt).
  expect(await autoDisableIfDue(h.db, ep.id, new Date(Date.now() - 6 * 86_400_000), new Date(), 5 * 86_400_000)).toBe(true);
  for (const id of ids) expect((await status(account.apiKey, id)).finishedReason).toBe('endpoint auto-disabled after failing for too long');

  receiver.respond = () => ({ status: 200 });
  await h.call('PATCH', `/v1/endpoints/${ep.id}`, { token: account.apiKey, body: { enabled: true } });
  const res = await h.call('POST', `/v1/endpoints/${ep.id}/recover`, { token: account.apiKey, body: { since, include: ['cancelled'] } });
  expect(res.body).toMatchObject({ recovered: { undeliverable: 0, cancelled: 3, missing: 0 }, more: false });
  expect(res.body.deliveryIds).toEqual(ids);
  for (const id of ids) await until(account.apiKey, id, (x) => x.status === 'delivered', 'delivered');
  for (const id of ids) expect(receiver.byWebhookId(id).length).toBeGreaterThanOrEqual(2); // failed before, resent with the same webhook-id
});

test('when a filtered set of undeliverable deliveries is resent in bulk, then only the matching ones are resent, at most `limit` per call, each once, through the normal path', async () => {
  const account = await newAccount(h);
  const ep = (await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added', 'referee_added'] } })).body;
  const ids: string[] = [];
  for (let i = 1; i <= 4; i++) ids.push((await publish(account.id, i === 4 ? 'referee_added' : 'referrer_added', i)).body.deliveries[0].id);
  for (const id of ids) await until(account.apiKey, id, (x) => x.status === 'delivered', 'delivered');
  // As if their window had closed: undeliverable.
  await h.db.query(`update deliveries set status = 'undeliverable', final_reason = 'retry window exhausted', finished_at = now() where id = any($1::text[])`, [ids]);
  const before = receiver.requests.length;

  const filter = { status: 'undeliverable', endpointId: ep.id, eventType: 'referrer_added' };
  const other = await newAccount(h);
  expect((await h.call('POST', '/v1/delivery-resends', { token: other.apiKey, body: filter })).body).toEqual({ deliveryIds: [], more: false }); // another account's: none
  const first = await h.call('POST', '/v1/delivery-resends', { token: account.apiKey, body: { ...filter, limit: 2 } });
  expect(first.status).toBe(202);
  expect(first.body).toEqual({ deliveryIds: ids.slice(0, 2), more: true });
  const second = await h.call('POST', '/v1/delivery-resends', { token: account.apiKey, body: filter });
  expect(second.body).toEqual({ deliveryIds: [ids[2]], more: false });
  expect((await h.call('POST', '/v1/delivery-resends', { token: account.apiKey, body: filter })).body.deliveryIds).toEqual([]);

  for (const id of ids.slice(0, 3)) await until(account.apiKey, id, (x) => x.status === 'delivered', 'delivered again');
  expect(
    receiver.requests
      .slice(before)
      .map((r) => r.headers['webhook-id'])
      .sort(),
  ).toEqual(ids.slice(0, 3).sort());
  expect((await status(account.apiKey, ids[3])).status).toBe('undeliverable'); // another event type
  expect((await h.call('POST', '/v1/delivery-resends', { token: account.apiKey, body: { status: 'delivered' } })).status).toBe(400);
});
