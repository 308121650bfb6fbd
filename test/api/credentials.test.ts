import { randomBytes } from 'node:crypto';
import { newAccount, startHarness, type Harness } from '../helpers/apiHarness';

/** Credentials split by job: admin tokens that rotate with an overlap, a metrics-only token, revocable and read-only portal links. */
let h: Harness;
const previousAdmin = `old_admin_${randomBytes(8).toString('hex')}`;
const metricsToken = `metrics_${randomBytes(12).toString('hex')}`;
beforeAll(async () => {
  h = await startHarness({ ADMIN_TOKENS_PREVIOUS: previousAdmin, METRICS_TOKEN: metricsToken, PORTAL_LINK_MAX_TTL: '2h' }, { worker: false });
});
afterAll(async () => {
  await h?.close();
});

const tokenOf = (url: string) => new URL(url).hash.replace('#token=', '');

test('when the admin token rotates, then the previous one keeps working during the overlap', async () => {
  expect((await h.call('POST', '/v1/accounts', { token: previousAdmin, body: { name: 'Old token Ltd', plan: 'paid' } })).status).toBe(201);
  expect((await h.call('POST', '/v1/accounts', { body: { name: 'New token Ltd', plan: 'paid' } })).status).toBe(201);
  expect((await h.call('POST', '/v1/accounts', { token: 'not_an_admin_token_at_all', body: { name: 'x', plan: 'paid' } })).status).toBe(401);
});

test('when a scraper holds the metrics token, then it reads /metrics and nothing else', async () => {
  const m = await h.call('GET', '/metrics', { token: metricsToken });
  expect(m.status).toBe(200);
  for (const [method, path] of [
    ['GET', '/v1/endpoints'],
    ['GET', '/v1/event-types'],
    ['POST', '/v1/accounts'],
    ['GET', '/v1/deliveries'],
  ] as const) {
    const res = await h.call(method, path, { token: metricsToken, body: method === 'POST' ? { name: 'x', plan: 'paid' } : undefined });
    expect([method, path, res.status]).toEqual([method, path, 403]);
  }
});

test("when one portal link is revoked, then it answers 401 at once and the account's other links keep working", async () => {
  const a = await newAccount(h);
  const one = (await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: {} })).body;
  const two = (await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: {} })).body;
  expect(one.id).toMatch(/^pl_/);
  expect((await h.call('GET', '/v1/account', { token: tokenOf(one.url) })).status).toBe(200);
  expect((await h.call('DELETE', `/v1/accounts/${a.id}/portal-links/${one.id}`)).status).toBe(204);
  const revoked = await h.call('GET', '/v1/account', { token: tokenOf(one.url) });
  expect([revoked.status, revoked.body.detail]).toEqual([401, expect.stringMatching(/revoked/)]);
  expect((await h.call('GET', '/v1/account', { token: tokenOf(two.url) })).status).toBe(200);
  // Another account's admin call cannot revoke this account's link by naming it.
  const b = await newAccount(h);
  await h.call('DELETE', `/v1/accounts/${b.id}/portal-links/${two.id}`);
  expect((await h.call('GET', '/v1/account', { token: tokenOf(two.url) })).status).toBe(200);
});

test('when all links of an account are revoked, then every earlier one answers 401 and a link made afterwards works', async () => {
  const a = await newAccount(h);
  const b = await newAccount(h);
  const before = await Promise.all([1, 2, 3].map(async () => (await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: { scope: 'read' } })).body));
  const other = (await h.call('POST', `/v1/accounts/${b.id}/portal-links`, { body: {} })).body;
  expect((await h.call('DELETE', `/v1/accounts/${a.id}/portal-links`)).status).toBe(204);
  for (const link of before) expect((await h.call('GET', '/v1/account', { token: tokenOf(link.url) })).status).toBe(401);
  expect((await h.call('GET', '/v1/account', { token: tokenOf(other.url) })).status).toBe(200);
  const after = (await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: {} })).body;
  expect((await h.call('GET', '/v1/account', { token: tokenOf(after.url) })).status).toBe(200);
  expect((await h.call('DELETE', '/v1/accounts/acc_nope/portal-links')).status).toBe(404);
  expect((await h.call('DELETE', '/v1/accounts/acc_nope/portal-links', { token: a.apiKey })).status).toBe(403);
});

test('when a link is read-only, then it reads everything and every change is 403 read_only', async () => {
  const a = await newAccount(h);
  const ep = await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'https://127.0.0.1/hook', eventTypes: ['referrer_added'] } });
  const link = (await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: { scope: 'read' } })).body;
  expect(link.scope).toBe('read');
  const token = tokenOf(link.url);
  expect((await h.call('GET', '/v1/account', { token })).body.access).toBe('read');
  for (const path of ['/v1/endpoints', `/v1/endpoints/${ep.body.id}`, '/v1/deliveries', '/v1/event-types'])
    expect([path, (await h.call('GET', path, { token })).status]).toEqual([path, 200]);
  for (const [method, path, body] of [
    ['POST', '/v1/endpoints', { url: 'https://127.0.0.1/x', eventTypes: ['referrer_added'] }],
    ['PATCH', `/v1/endpoints/${ep.body.id}`, { enabled: false }],
    ['DELETE', `/v1/endpoints/${ep.body.id}`, undefined],
    ['POST', `/v1/endpoints/${ep.body.id}/secret/rotate`, undefined],
    ['POST', '/v1/api-keys', { name: 'x' }],
  ] as const) {
    const res = await h.call(method, path, { token, body });
    expect([method, path, res.status, res.body.code]).toEqual([method, path, 403, 'read_only']);
  }
  expect((await h.call('GET', `/v1/endpoints/${ep.body.id}`, { token: a.apiKey })).body.enabled).toBe(true);
  expect((await h.call('GET', '/v1/account', { token: tokenOf((await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: {} })).body.url) })).body.access).toBe('manage');
});

test('when a link is asked for longer than PORTAL_LINK_MAX_TTL, then it lives only that long', async () => {
  const a = await newAccount(h);
  const res = await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: { ttlSeconds: 7 * 86_400 } });
  expect(res.status).toBe(201);
  const lifetime = Date.parse(res.body.expiresAt) - Date.now();
  expect(lifetime).toBeLessThanOrEqual(2 * 3600_000);
  expect(lifetime).toBeGreaterThan(2 * 3600_000 - 60_000);
});
