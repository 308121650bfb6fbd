import { request } from 'node:http';
import { portalSigningKey, signPortalToken } from '../../src/domain/portalToken';
import { newAccount, startHarness, type Harness } from '../helpers/apiHarness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({}, { worker: false });
});
afterAll(async () => {
  await h?.close();
});

const tokenOf = (url: string) => new URL(url).hash.replace(/^#token=/, '');

test('when the platform asks for a portal link, then it opens the settings page and acts as that account only', async () => {
  const a = await newAccount(h);
  const b = await newAccount(h);
  await h.call('POST', '/v1/endpoints', { token: b.apiKey, body: { url: 'https://127.0.0.1/b', eventTypes: ['referrer_added'] } });

  const link = await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: { ttlSeconds: 600 } });

  expect(link.status).toBe(201);
  const url = new URL(link.body.url);
  expect(url.origin + url.pathname).toBe(`${h.baseUrl}/portal`);
  expect(url.search).toBe(''); // the token rides in the fragment, never sent to a server or logged
  expect(Date.parse(link.body.expiresAt) - Date.now()).toBeGreaterThan(590_000);
  const token = tokenOf(link.body.url);
  expect((await h.call('GET', '/v1/account', { token })).body).toEqual({ id: a.id, name: expect.any(String), plan: 'paid', access: 'manage' });
  expect((await h.call('GET', '/v1/endpoints', { token })).body.data).toEqual([]);
  expect((await h.call('GET', `/v1/deliveries?accountId=${b.id}`, { token })).body.data).toEqual([]);
  expect((await h.call('POST', '/v1/events', { token, body: {} })).status).toBe(403);
  expect((await h.call('POST', `/v1/accounts/${b.id}/portal-links`, { token, body: {} })).status).toBe(403);

  const page = await fetch(`${h.baseUrl}/portal`);
  expect(page.status).toBe(200);
  expect(page.headers.get('content-type')).toMatch(/text\/html/);
  expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
});

test('when a portal link is expired or tampered with, then the API refuses it with 401', async () => {
  const a = await newAccount(h);
  const key = portalSigningKey(h.adminToken);
  const { token: expired } = signPortalToken(key, a.id, Date.now() - 1_000);
  const res = await h.call('GET', '/v1/account', { token: expired });
  expect(res.status).toBe(401);
  expect(res.body.detail).toMatch(/expired/);
  const valid = tokenOf((await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: {} })).body.url);
  const tampered = valid.slice(0, -3) + (valid.endsWith('AAA') ? 'BBB' : 'AAA');
  expect((await h.call('GET', '/v1/account', { token: tampered })).status).toBe(401);
  expect((await h.call('POST', '/v1/accounts/acc_nope/portal-links', { body: {} })).status).toBe(404);
  expect((await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: { ttlSeconds: 5 } })).body.errors[0].path).toBe('ttlSeconds');
});

/** POST with hand-set headers (fetch would not send a forged Host). */
function postRaw(url: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; body: any }> {
  return new Promise((ok, fail) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => ok({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', fail);
    req.end(JSON.stringify(body));
  });
}

test('when the request carries a forged Host or X-Forwarded-* header and PUBLIC_URL is unset, then the link still points at the API itself', async () => {
  const a = await newAccount(h);
  expect(h.cfg.PUBLIC_URL).toBeUndefined();
  const res = await postRaw(
    `${h.baseUrl}/v1/accounts/${a.id}/portal-links`,
    {
      authorization: `Bearer ${h.adminToken}`,
      host: 'evil.example',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'https',
    },
    {},
  );
  expect(res.status).toBe(201);
  expect(res.body.url).toMatch(new RegExp(`^${h.baseUrl.replace(/\./g, '\\.')}/portal#token=`));
  expect(res.body.url).not.toMatch(/evil/);
});
