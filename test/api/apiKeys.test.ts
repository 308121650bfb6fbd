import { newAccount, startHarness, type Harness } from '../helpers/apiHarness';

/** Account API keys: several per account, named, listed by prefix only, revocable at once, stored hashed. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({}, { worker: false });
});
afterAll(async () => {
  await h?.close();
});

test('when an account issues a second key, then both work, the list shows names and prefixes but never a key, and only hashes are stored', async () => {
  const a = await newAccount(h);
  const created = await h.call('POST', '/v1/api-keys', { token: a.apiKey, body: { name: '  CRM sync ' } });
  expect(created.status).toBe(201);
  expect(created.body).toEqual({
    id: expect.stringMatching(/^key_/),
    name: 'CRM sync',
    prefix: created.body.key.slice(0, 12),
    createdAt: expect.any(String),
    lastUsedAt: null,
    key: expect.stringMatching(/^rrk_/),
  });

  expect((await h.call('GET', '/v1/endpoints', { token: created.body.key })).status).toBe(200);
  const list = await h.call('GET', '/v1/api-keys', { token: a.apiKey });
  expect(list.body.data.map((k: { name: string }) => k.name)).toEqual(['default', 'CRM sync']);
  const text = JSON.stringify(list.body);
  for (const key of [a.apiKey, created.body.key]) expect(text).not.toContain(key);
  expect(list.body.data.find((k: { id: string }) => k.id === created.body.id).lastUsedAt).toEqual(expect.any(String));

  const stored = await h.db.query<Record<string, unknown>>('select * from api_keys where account_id = $1', [a.id]);
  const raw = JSON.stringify(stored);
  for (const key of [a.apiKey, created.body.key]) expect(raw).not.toContain(key);
});

test('when a key is revoked, then it answers 401 at once and leaves the list; the other key keeps working', async () => {
  const a = await newAccount(h);
  const second = await h.call('POST', '/v1/api-keys', { token: a.apiKey, body: { name: 'ci' } });
  expect((await h.call('GET', '/v1/account', { token: second.body.key })).status).toBe(200);
  const revoked = await h.call('DELETE', `/v1/api-keys/${second.body.id}`, { token: a.apiKey });
  expect(revoked.status).toBe(204);
  const after = await h.call('GET', '/v1/account', { token: second.body.key });
  expect([after.status, after.body.code]).toEqual([401, 'unauthorized']);
  expect((await h.call('GET', '/v1/api-keys', { token: a.apiKey })).body.data.map((k: { id: string }) => k.id)).not.toContain(second.body.id);
  expect((await h.call('DELETE', `/v1/api-keys/${second.body.id}`, { token: a.apiKey })).status).toBe(404);
  // A key may revoke itself.
  const own = (await h.call('GET', '/v1/api-keys', { token: a.apiKey })).body.data[0];
  expect((await h.call('DELETE', `/v1/api-keys/${own.id}`, { token: a.apiKey })).status).toBe(204);
  expect((await h.call('GET', '/v1/api-keys', { token: a.apiKey })).status).toBe(401);
});

test('when another account names a key, then 404 as if it did not exist; the admin manages keys with ?accountId=', async () => {
  const a = await newAccount(h);
  const b = await newAccount(h);
  const aKey = (await h.call('POST', '/v1/api-keys', { token: a.apiKey, body: { name: 'a-only' } })).body;
  expect((await h.call('DELETE', `/v1/api-keys/${aKey.id}`, { token: b.apiKey })).status).toBe(404);
  expect((await h.call('GET', '/v1/api-keys', { token: b.apiKey })).body.data.map((k: { name: string }) => k.name)).toEqual(['default']);
  expect((await h.call('GET', '/v1/account', { token: aKey.key })).status).toBe(200);

  const byAdmin = await h.call('POST', `/v1/api-keys?accountId=${b.id}`, { body: { name: 'issued by the platform' } });
  expect(byAdmin.status).toBe(201);
  expect((await h.call('GET', '/v1/account', { token: byAdmin.body.key })).body.id).toBe(b.id);
  expect((await h.call('GET', `/v1/api-keys?accountId=${b.id}`)).body.data).toHaveLength(2);
  const blank = await h.call('POST', '/v1/api-keys', { token: a.apiKey, body: { name: '   ' } });
  expect([blank.status, blank.body.errors?.[0]?.path]).toEqual([400, 'name']);
});
