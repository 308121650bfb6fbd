import { startHarness, newAccount, participant, type Harness } from '../helpers/apiHarness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ MAX_PAYLOAD_BYTES: '4096' }, { worker: false });
});
afterAll(async () => {
  await h?.close();
});

const count = async (table: string) => Number((await h.db.query<{ n: string }>(`select count(*) as n from ${table}`))[0].n);
const errorBody = (code: string) => ({ code, detail: expect.any(String) });

test('when no or a wrong token is sent, then 401 with the documented error body', async () => {
  for (const token of [null, 'not-a-real-key']) {
    const res = await h.call('GET', '/v1/endpoints', { token });
    expect(res.status).toBe(401);
    expect(res.body).toEqual(errorBody('unauthorized'));
  }
});

test('when an account key calls an admin route, then 403, and admin routes never leak through', async () => {
  const a = await newAccount(h);
  const res = await h.call('POST', '/v1/accounts', { token: a.apiKey, body: { name: 'x', plan: 'paid' } });
  expect(res.status).toBe(403);
  expect((await h.call('POST', '/v1/events', { token: a.apiKey, body: { accountId: a.id, eventType: 'referrer_added', data: participant() } })).status).toBe(403);
});

test("when an account asks for another account's resources, then 404 as if they did not exist", async () => {
  const a = await newAccount(h);
  const b = await newAccount(h);
  const ep = await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'https://127.0.0.1/hook', eventTypes: ['referrer_added'] } });
  expect(ep.status).toBe(201);
  for (const [method, path] of [
    ['GET', `/v1/endpoints/${ep.body.id}`],
    ['GET', `/v1/endpoints/${ep.body.id}/secret`],
    ['PATCH', `/v1/endpoints/${ep.body.id}`],
    ['DELETE', `/v1/endpoints/${ep.body.id}`],
    ['POST', `/v1/endpoints/${ep.body.id}/secret/rotate`],
  ] as const) {
    const res = await h.call(method, path, { token: b.apiKey, body: method === 'PATCH' ? { description: 'mine now' } : undefined });
    expect([method, path, res.status, res.body]).toEqual([method, path, 404, errorBody('not_found')]);
  }
  expect((await h.call('GET', '/v1/endpoints', { token: b.apiKey })).body.data).toEqual([]);
  expect((await h.call('GET', `/v1/endpoints/${ep.body.id}`, { token: a.apiKey })).status).toBe(200);
  expect((await h.call('GET', '/v1/accounts/acc_doesnotexist')).status).toBe(404);
});

test('when a free-plan account sets up a webhook, then 402 plan_required and nothing is stored', async () => {
  const free = await newAccount(h, 'free');
  const before = await count('endpoints');
  const res = await h.call('POST', '/v1/endpoints', { token: free.apiKey, body: { url: 'https://127.0.0.1/hook', eventTypes: ['referrer_added'] } });
  expect(res.status).toBe(402);
  expect(res.body).toEqual(errorBody('plan_required'));
  expect(await count('endpoints')).toBe(before);
});

test('when endpoint input is bad, then 400 lists every bad field and nothing is stored', async () => {
  const a = await newAccount(h);
  const before = await count('endpoints');
  const res = await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 42, eventTypes: ['referrer_added', 'bogus'], enabled: 'yes', extra: 1 } });
  expect(res.status).toBe(400);
  expect(res.body.code).toBe('validation_failed');
  expect(res.body.errors.map((e: any) => e.path).sort()).toEqual(['(body)', 'enabled', 'eventTypes.1', 'url']);
  const badUrl = await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'ftp://example.com/x', eventTypes: ['referrer_added'] } });
  expect(badUrl.status).toBe(400);
  expect(badUrl.body.errors).toEqual([{ path: 'url', message: 'must use https' }]);
  const privateUrl = await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'https://10.1.2.3/hook', eventTypes: ['referrer_added'] } });
  expect(privateUrl.status).toBe(400);
  expect(privateUrl.body.errors[0]).toEqual({ path: 'url', message: expect.stringMatching(/private or reserved/) });
  const empty = await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'https://127.0.0.1/x', eventTypes: [] } });
  expect(empty.body.errors).toEqual([{ path: 'eventTypes', message: 'select at least one event type' }]);
  expect(await count('endpoints')).toBe(before);
});

test('when an event is malformed, then 400 names each bad field (unknown type, payload fields) and nothing is stored', async () => {
  const a = await newAccount(h);
  const before = await count('events');
  const unknown = await h.call('POST', '/v1/events', { body: { accountId: a.id, eventType: 'referrer_deleted', data: participant() } });
  expect(unknown.status).toBe(400);
  expect(unknown.body.errors).toEqual([{ path: 'eventType', message: expect.stringContaining('unknown event type') }]);
  const badData = await h.call('POST', '/v1/events', { body: { accountId: a.id, eventType: 'reward_unlocked', data: { participantId: -1, email: 'nope', campaignId: 'c' } } });
  expect(badData.status).toBe(400);
  expect(badData.body.errors.map((e: any) => e.path).sort()).toEqual(['data.code', 'data.email', 'data.participantId', 'data.reward']);
  const missing = await h.call('POST', '/v1/events', { body: { eventType: 'referrer_added' } });
  expect(missing.body.errors.map((e: any) => e.path).sort()).toEqual(['accountId', 'data']);
  const notJson = await h.call('POST', '/v1/events', { rawBody: '{"accountId":', headers: { 'content-type': 'application/json' } });
  expect(notJson.status).toBe(400);
  expect(notJson.body.code).toBe('invalid_json');
  const noAccount = await h.call('POST', '/v1/events', { body: { accountId: 'acc_missing', eventType: 'referrer_added', data: participant() } });
  expect(noAccount.status).toBe(404);
  expect(await count('events')).toBe(before);
});

test('when the body is larger than MAX_PAYLOAD_BYTES, then 413 payload_too_large and nothing is stored', async () => {
  const a = await newAccount(h);
  const before = await count('events');
  const res = await h.call('POST', '/v1/events', { body: { accountId: a.id, eventType: 'referrer_added', data: { ...participant(), firstName: 'x'.repeat(5000) } } });
  expect(res.status).toBe(413);
  expect(res.body).toEqual(errorBody('payload_too_large'));
  expect(await count('events')).toBe(before);
});

test('when the OpenAPI document is fetched, then it describes every route of the contract from the same schemas', async () => {
  const res = await h.call('GET', '/openapi.json', { token: null });
  expect(res.status).toBe(200);
  expect(res.body.openapi).toBe('3.1.0');
  const routes = Object.entries(res.body.paths).flatMap(([p, ops]: [string, any]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
  expect(routes).toEqual(
    expect.arrayContaining([
      'POST /v1/accounts',
      'GET /v1/accounts/{id}',
      'PATCH /v1/accounts/{id}',
      'GET /v1/event-types',
      'POST /v1/endpoints',
      'GET /v1/endpoints',
      'GET /v1/endpoints/{id}',
      'PATCH /v1/endpoints/{id}',
      'DELETE /v1/endpoints/{id}',
      'GET /v1/endpoints/{id}/secret',
      'POST /v1/endpoints/{id}/secret/rotate',
      'POST /v1/endpoints/{id}/test',
      'POST /v1/endpoints/{id}/recover',
      'POST /v1/events',
      'GET /v1/deliveries',
      'GET /v1/deliveries/{id}',
      'POST /v1/deliveries/{id}/resend',
    ]),
  );
  const resolve = (o: any): any =>
    o?.$ref
      ? resolve(
          o.$ref
            .slice(2)
            .split('/')
            .reduce((x: any, k: string) => x[k], res.body),
        )
      : o;
  expect(resolve(res.body.paths['/v1/endpoints'].post.requestBody.content['application/json'].schema).required).toEqual(['url', 'eventTypes']);
  expect(
    resolve(resolve(resolve(res.body.paths['/v1/endpoints'].get.responses['200'].content['application/json'].schema).properties.data.items)).properties.secret,
  ).toBeUndefined();
});

test('when endpoints are listed, then secrets are not included, and event types are public to any token', async () => {
  const a = await newAccount(h);
  await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'https://127.0.0.1/x', eventTypes: ['referee_added'] } });
  const list = await h.call('GET', '/v1/endpoints', { token: a.apiKey });
  expect(list.body.data).toHaveLength(1);
  expect(JSON.stringify(list.body)).not.toMatch(/whsec_/);
  const types = await h.call('GET', '/v1/event-types', { token: a.apiKey });
  expect(types.body.data.map((t: any) => t.type)).toEqual(['referrer_added', 'referee_added', 'reward_unlocked']);
  const keys = await h.db.query<{ key_hash: string }>('select key_hash from api_keys join accounts on accounts.id = api_keys.account_id where accounts.id = $1', [a.id]);
  expect(keys[0].key_hash).toMatch(/^[0-9a-f]{64}$/);
  expect(keys[0].key_hash).not.toContain(a.apiKey);
});
