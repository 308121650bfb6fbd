import { newId } from '../../src/domain/ids';
import { EVENT_TYPES } from '../../src/domain/eventCatalog';
import { newAccount, startHarness, type Harness } from '../helpers/apiHarness';

// The settings page's delivery log (issue 15): date range, id search, test marker, the bulk
// resend's preview, and the event catalog's schemas. Runs on PGlite and on a real Postgres.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({}, { worker: false });
});
afterAll(async () => {
  await h?.close();
});

const HOUR = 3_600_000;
/** The fields a 400 names (a field may have several messages). */
const paths = (errors: { path: string }[]) => [...new Set(errors.map((e) => e.path))].sort();

/** A delivery (and its event) created `hoursAgo`, with a status, stored directly: nothing is sent. */
async function seed(accountId: string, endpointId: string, hoursAgo: number, status: string, opts: { test?: boolean; eventType?: string } = {}) {
  const at = Date.now() - hoursAgo * HOUR;
  const eventId = newId('evt', at);
  const id = newId('dlv', at);
  const eventType = opts.eventType ?? 'referrer_added';
  await h.db.query(`insert into events (id, account_id, event_type, body, is_test, created_at) values ($1, $2, $3, '{}', $4, $5)`, [
    eventId,
    accountId,
    eventType,
    opts.test ?? false,
    new Date(at),
  ]);
  await h.db.query(`insert into deliveries (id, account_id, event_id, endpoint_id, event_type, status, dispatched_series, created_at) values ($1, $2, $3, $4, $5, $6, 1, $7)`, [
    id,
    accountId,
    eventId,
    endpointId,
    eventType,
    status,
    new Date(at),
  ]);
  return { id, eventId, createdAt: new Date(at).toISOString() };
}

async function setup() {
  const account = await newAccount(h);
  const ep = (await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: 'http://127.0.0.1:9/hook', eventTypes: ['referrer_added'] } })).body;
  const list = async (query: string) => h.call('GET', `/v1/deliveries?${query}`, { token: account.apiKey });
  return { account, ep, list };
}

test('when the log is filtered by a creation time range, then only deliveries created in [since, until) come back, newest first, and paging keeps the range', async () => {
  const { account, ep, list } = await setup();
  const old = await seed(account.id, ep.id, 50, 'delivered');
  const a = await seed(account.id, ep.id, 30, 'undeliverable');
  const b = await seed(account.id, ep.id, 20, 'delivered');
  const c = await seed(account.id, ep.id, 10, 'cancelled');
  const recent = await seed(account.id, ep.id, 1, 'delivered');
  const since = new Date(Date.now() - 40 * HOUR).toISOString();
  const until = new Date(Date.now() - 5 * HOUR).toISOString();

  const res = await list(`since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}`);
  expect(res.status).toBe(200);
  expect(res.body.data.map((d: any) => d.id)).toEqual([c.id, b.id, a.id]);
  // `since` is inclusive, `until` exclusive, and both combine with the other filters and the pages.
  expect((await list(`since=${encodeURIComponent(a.createdAt)}&until=${encodeURIComponent(c.createdAt)}`)).body.data.map((d: any) => d.id)).toEqual([b.id, a.id]);
  expect((await list(`status=delivered&since=${encodeURIComponent(since)}`)).body.data.map((d: any) => d.id)).toEqual([recent.id, b.id]);
  const page1 = await list(`limit=2&since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}`);
  expect(page1.body.data.map((d: any) => d.id)).toEqual([c.id, b.id]);
  const page2 = await list(`limit=2&since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}&cursor=${page1.body.nextCursor}`);
  expect([page2.body.data.map((d: any) => d.id), page2.body.nextCursor]).toEqual([[a.id], null]);
  // An offset other than Z means the same instant.
  const plusOne = new Date(Date.parse(since) + HOUR).toISOString().replace('Z', '+01:00');
  expect((await list(`since=${encodeURIComponent(plusOne)}`)).body.data.map((d: any) => d.id)).toEqual([recent.id, c.id, b.id, a.id]);
  expect((await list('')).body.data.map((d: any) => d.id)).toContain(old.id);
});

test('when the log is searched by an event id or a delivery id, then exactly those deliveries come back, and an unknown or foreign id finds nothing', async () => {
  const { account, ep, list } = await setup();
  const second = (await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: 'http://127.0.0.1:9/other', eventTypes: ['referrer_added'] } })).body;
  const one = await seed(account.id, ep.id, 2, 'delivered');
  // A second delivery of the same event, to the other endpoint.
  const twinId = newId('dlv');
  await h.db.query(`insert into deliveries (id, account_id, event_id, endpoint_id, event_type, status) values ($1, $2, $3, $4, 'referrer_added', 'delivered')`, [
    twinId,
    account.id,
    one.eventId,
    second.id,
  ]);
  await seed(account.id, ep.id, 1, 'delivered');

  expect((await list(`eventId=${one.eventId}`)).body.data.map((d: any) => d.id).sort()).toEqual([one.id, twinId].sort());
  expect((await list(`deliveryId=${one.id}`)).body.data.map((d: any) => [d.id, d.eventId])).toEqual([[one.id, one.eventId]]);
  // Exactly an id: capitals or white space around are the page's to clean up, not the API's.
  expect((await list(`deliveryId=${one.id.toUpperCase()}`)).status).toBe(400);
  expect((await list(`eventId=${one.eventId}&endpointId=${second.id}`)).body.data.map((d: any) => d.id)).toEqual([twinId]);
  expect((await list(`deliveryId=${newId('dlv')}`)).body).toEqual({ data: [], nextCursor: null });

  const other = await newAccount(h);
  const otherEp = (await h.call('POST', '/v1/endpoints', { token: other.apiKey, body: { url: 'http://127.0.0.1:9/x', eventTypes: ['referrer_added'] } })).body;
  const foreign = await seed(other.id, otherEp.id, 1, 'delivered');
  expect((await list(`deliveryId=${foreign.id}`)).body.data).toEqual([]);
  expect((await list(`eventId=${foreign.eventId}`)).body.data).toEqual([]);
});

test('when the log query is bad, then the answer is 400 naming every bad parameter, and nothing else', async () => {
  const { list } = await setup();
  const res = await list('since=yesterday&until=2026-01-01T00:00:00&eventId=dlv_01jm6z5b2c4v6b8n0m2q4w6e8r&deliveryId=123&test=maybe');
  expect(res.status).toBe(400);
  expect(res.body.code).toBe('validation_failed');
  expect(paths(res.body.errors)).toEqual(['query.deliveryId', 'query.eventId', 'query.since', 'query.test', 'query.until']);
  expect(res.body.errors.find((e: any) => e.path === 'query.eventId').message).toMatch(/evt_/);

  // An empty range is not an error (the OpenAPI document cannot say it is): it finds nothing.
  const backwards = await list('since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z');
  expect([backwards.status, backwards.body.data]).toEqual([200, []]);
  const nul = await list('deliveryId=%00');
  expect([nul.status, nul.body.errors[0].path]).toEqual([400, 'query.deliveryId']);
});

test('when a test event is sent, then its delivery is marked test in the log and the details, real ones are not, and the log can show either', async () => {
  const { account, ep, list } = await setup();
  const real = await seed(account.id, ep.id, 1, 'delivered');
  const sent = await h.call('POST', `/v1/endpoints/${ep.id}/test`, { token: account.apiKey, body: { eventType: 'reward_unlocked' } });
  expect(sent.status).toBe(202);

  const all = (await list('')).body.data;
  expect(all.map((d: any) => [d.id, d.test])).toEqual([
    [sent.body.deliveryId, true],
    [real.id, false],
  ]);
  expect((await h.call('GET', `/v1/deliveries/${sent.body.deliveryId}`, { token: account.apiKey })).body.test).toBe(true);
  expect((await h.call('GET', `/v1/deliveries/${real.id}`, { token: account.apiKey })).body.test).toBe(false);
  expect((await list('test=true')).body.data.map((d: any) => d.id)).toEqual([sent.body.deliveryId]);
  expect((await list('test=false')).body.data.map((d: any) => d.id)).toEqual([real.id]);
});

test('when a bulk resend is previewed, then it counts what the resend would take and what it would leave out, changes nothing, and the resend then takes exactly that many', async () => {
  const { account, ep, list } = await setup();
  const disabled = (await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: 'http://127.0.0.1:9/off', eventTypes: ['referrer_added'] } })).body;
  const inRange = [await seed(account.id, ep.id, 30, 'undeliverable'), await seed(account.id, ep.id, 20, 'undeliverable')];
  await seed(account.id, ep.id, 60, 'undeliverable'); // before the range
  await seed(account.id, ep.id, 25, 'cancelled'); // another status
  await seed(account.id, ep.id, 22, 'undeliverable', { eventType: 'referee_added' });
  const purged = await seed(account.id, ep.id, 21, 'undeliverable');
  await h.db.query('update events set purged_at = now() where id = $1', [purged.eventId]);
  await seed(account.id, disabled.id, 24, 'undeliverable');
  await h.call('PATCH', `/v1/endpoints/${disabled.id}`, { token: account.apiKey, body: { enabled: false } });

  const since = new Date(Date.now() - 40 * HOUR).toISOString();
  const filter = `status=undeliverable&eventType=referrer_added&since=${encodeURIComponent(since)}`;
  const preview = await h.call('GET', `/v1/delivery-resends/preview?${filter}`, { token: account.apiKey });
  expect([preview.status, preview.body]).toEqual([200, { count: 2, skipped: 2 }]);
  expect((await h.call('GET', `/v1/delivery-resends/preview?${filter}&endpointId=${ep.id}`, { token: account.apiKey })).body).toEqual({ count: 2, skipped: 1 });
  expect((await list(`${filter}&limit=250`)).body.data.every((d: any) => d.status === 'undeliverable')).toBe(true);

  const resent = await h.call('POST', '/v1/delivery-resends', { token: account.apiKey, body: { status: 'undeliverable', eventType: 'referrer_added', since } });
  expect(resent.status).toBe(202);
  expect(resent.body.deliveryIds.sort()).toEqual(inRange.map((d) => d.id).sort());
  expect((await h.call('GET', `/v1/delivery-resends/preview?${filter}`, { token: account.apiKey })).body).toEqual({ count: 0, skipped: 2 });

  const bad = await h.call('GET', '/v1/delivery-resends/preview?status=delivered&since=soon', { token: account.apiKey });
  expect([bad.status, paths(bad.body.errors)]).toEqual([400, ['query.since', 'query.status']]);
  const backwards = await h.call('GET', '/v1/delivery-resends/preview?status=cancelled&since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z', { token: account.apiKey });
  expect([backwards.status, backwards.body]).toEqual([200, { count: 0, skipped: 0 }]);
});

test('when the event catalog is read, then each type carries the JSON Schema of its webhook body, and one type can be read alone', async () => {
  const account = await newAccount(h);
  const res = await h.call('GET', '/v1/event-types', { token: account.apiKey });
  expect(res.status).toBe(200);
  expect(res.body.data.map((t: any) => t.type)).toEqual(EVENT_TYPES);
  for (const t of res.body.data) {
    expect(t.schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(t.schema.properties.eventType).toEqual({ const: t.type });
    expect(t.schema.properties.data.required).toEqual(expect.arrayContaining(['participantId', 'email', 'code', 'campaignId']));
    expect(Object.keys(t.example)).toEqual(expect.arrayContaining(['participantId', 'email']));
  }
  const one = await h.call('GET', '/v1/event-types/reward_unlocked', { token: account.apiKey });
  expect(one.status).toBe(200);
  expect(one.body).toEqual(res.body.data.find((t: any) => t.type === 'reward_unlocked'));
  expect(one.body.schema.properties.data.properties.reward.required).toEqual(expect.arrayContaining(['id', 'amount', 'currency', 'type']));
  const unknown = await h.call('GET', '/v1/event-types/order_paid', { token: account.apiKey });
  expect([unknown.status, unknown.body.code]).toEqual([404, 'not_found']);
  expect(unknown.body.detail).toMatch(/referrer_added/);
});
