import { request } from 'node:http';
import { MAX_JSON_DEPTH } from '../../src/api/jsonBody';
import { newAccount, participant, startHarness, type Harness } from '../helpers/apiHarness';

/**
 * Hostile input found by outside fuzzing and a hand-made list: each gets a 4xx with the JSON
 * error body naming the field, and nothing is stored (never a 500 from the database).
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({}, { worker: false });
});
afterAll(async () => {
  await h?.close();
});

const NUL = '\u0000';
const count = async (table: string) => Number((await h.db.query<{ n: string }>(`select count(*) as n from ${table}`))[0].n);
const counts = async () => Promise.all(['accounts', 'endpoints', 'events', 'deliveries'].map(count));

/** A raw request: bytes exactly as given (fetch would re-encode a JS string). */
async function rawCall(method: string, path: string, body: Uint8Array | string | undefined, token = h.adminToken) {
  const res = await fetch(h.baseUrl + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

test('when a NUL character is in any field, query parameter or path id, then 400 validation_failed names it and nothing is stored', async () => {
  const a = await newAccount(h);
  const ep = await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'https://127.0.0.1/hook', eventTypes: ['referrer_added'] } });
  const before = await counts();
  const cases: [string, string, unknown, string][] = [
    ['POST', '/v1/accounts', { name: `Acme${NUL}`, plan: 'paid' }, 'name'],
    ['PATCH', `/v1/accounts/${a.id}`, { name: `x${NUL}` }, 'name'],
    ['POST', `/v1/endpoints?accountId=${a.id}`, { url: `https://127.0.0.1/x${NUL}`, eventTypes: ['referrer_added'] }, 'url'],
    ['POST', `/v1/endpoints?accountId=${a.id}`, { url: 'https://127.0.0.1/x', eventTypes: ['referrer_added'], description: `d${NUL}` }, 'description'],
    ['PATCH', `/v1/endpoints/${ep.body.id}?accountId=${a.id}`, { description: `d${NUL}` }, 'description'],
    ['POST', '/v1/events', { accountId: a.id, eventType: 'referrer_added', data: participant(), idempotencyKey: `k${NUL}` }, 'idempotencyKey'],
    ['POST', '/v1/events', { accountId: `${a.id}${NUL}`, eventType: 'referrer_added', data: participant() }, 'accountId'],
    ['GET', `/v1/accounts/acc${NUL}1`, undefined, 'path.id'],
    ['GET', `/v1/endpoints/ep${NUL}1?accountId=${a.id}`, undefined, 'path.id'],
    ['POST', `/v1/deliveries/dlv${NUL}1/resend?accountId=${a.id}`, undefined, 'path.id'],
    ['GET', `/v1/deliveries?accountId=${a.id}&cursor=x${NUL}`, undefined, 'query.cursor'],
    ['GET', `/v1/deliveries?accountId=${a.id}&eventType=x${NUL}`, undefined, 'query.eventType'],
    ['GET', `/v1/deliveries?accountId=${a.id}&endpointId=x${NUL}`, undefined, 'query.endpointId'],
    ['GET', `/v1/deliveries?accountId=a${NUL}`, undefined, 'query.accountId'],
    ['GET', `/v1/endpoints?accountId=a${NUL}`, undefined, 'query.accountId'],
  ];
  for (const [method, path, body, field] of cases) {
    const res = await h.call(method, path.replace(NUL, '%00'), { body });
    expect([method, path, res.status, res.body.code, res.body.errors?.map((e: { path: string }) => e.path)]).toEqual([
      method,
      path,
      400,
      'validation_failed',
      expect.arrayContaining([field]),
    ]);
  }
  expect(await counts()).toEqual(before);
  // In event data a NUL is JSON text (escaped), stored and delivered verbatim.
  const inData = await h.call('POST', '/v1/events', { body: { accountId: a.id, eventType: 'referrer_added', data: { ...participant(), firstName: `A${NUL}B` } } });
  expect(inData.status).toBe(202);
});

test(`when data nests deeper than ${MAX_JSON_DEPTH} levels (here 10,000), then 400 too_deeply_nested and nothing is stored`, async () => {
  const a = await newAccount(h);
  const before = await counts();
  const deep = '{"x":'.repeat(10_000) + '1' + '}'.repeat(10_000);
  const res = await rawCall('POST', '/v1/events', `{"accountId":"${a.id}","eventType":"referrer_added","data":${deep}}`);
  expect([res.status, res.body.code]).toEqual([400, 'too_deeply_nested']);
  const justInside = '{"x":'.repeat(MAX_JSON_DEPTH - 2) + '1' + '}'.repeat(MAX_JSON_DEPTH - 2);
  const ok = await rawCall(
    'POST',
    '/v1/events',
    `{"accountId":"${a.id}","eventType":"referrer_added","data":${JSON.stringify(participant()).slice(0, -1)},"extra":${justInside}}}`,
  );
  expect(ok.status).toBe(202);
  expect((await counts())[2]).toBe(before[2] + 1);
});

test('when recover is asked for a time Postgres cannot hold (year 0000) or nonsense, then 400 naming since', async () => {
  const a = await newAccount(h);
  const ep = await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'https://127.0.0.1/hook', eventTypes: ['referrer_added'] } });
  for (const since of ['0000-01-01T00:00:00Z', '1969-12-31T23:59:59Z', 'yesterday', '2026-13-01T00:00:00Z']) {
    const res = await h.call('POST', `/v1/endpoints/${ep.body.id}/recover`, { token: a.apiKey, body: { since } });
    expect([since, res.status, res.body.errors?.[0]?.path]).toEqual([since, 400, 'since']);
  }
  expect((await h.call('POST', `/v1/endpoints/${ep.body.id}/recover`, { token: a.apiKey, body: { since: '2020-01-01T00:00:00Z' } })).status).toBe(202);
});

/** Any method, TRACE included (fetch refuses to send TRACE). */
function httpCall(method: string, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(h.baseUrl + path, { method, headers: { authorization: `Bearer ${h.adminToken}` } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('when a method is not allowed on a path (PUT, TRACE, DELETE on a collection), then 405 method_not_allowed as JSON with Allow', async () => {
  for (const [method, path, allow] of [
    ['PUT', '/v1/endpoints', /GET.*POST|POST.*GET/],
    ['TRACE', '/v1/events', /POST/],
    ['DELETE', '/v1/deliveries', /GET/],
    ['PUT', '/healthz', /GET/],
    ['POST', '/openapi.json', /GET/],
  ] as const) {
    const res = await httpCall(method, path);
    expect([method, path, res.status, res.headers['content-type']]).toEqual([method, path, 405, expect.stringContaining('application/json')]);
    expect(res.headers.allow).toMatch(allow);
    expect(JSON.parse(res.body)).toEqual({ code: 'method_not_allowed', detail: expect.stringContaining(method) });
  }
  const unknown = await httpCall('TRACE', '/v1/nothing-here');
  expect([unknown.status, JSON.parse(unknown.body).code]).toEqual([404, 'not_found']);
});

test('when endpoint URLs are typed with spaces around, or in forms that parse as something else, then the normalised href is stored or 400', async () => {
  const a = await newAccount(h);
  const create = (url: string) => h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url, eventTypes: ['referrer_added'] } });
  const spaced = await create('  https://127.0.0.1:8443/x/../hooks?a=1  ');
  expect([spaced.status, spaced.body.url]).toEqual([201, 'https://127.0.0.1:8443/hooks?a=1']);
  expect((await h.call('GET', `/v1/endpoints/${spaced.body.id}`, { token: a.apiKey })).body.url).toBe('https://127.0.0.1:8443/hooks?a=1');
  const patched = await h.call('PATCH', `/v1/endpoints/${spaced.body.id}`, { token: a.apiKey, body: { url: ' HTTPS://127.0.0.1:443/Y ' } });
  expect([patched.status, patched.body.url]).toEqual([200, 'https://127.0.0.1/Y']);
  const before = await count('endpoints');
  for (const url of [
    'http://127.0.0.1:3960\\@evil.example/x',
    'https://127.0.0.1/a\tb',
    'https://127.0.0.1/a\nb',
    'https://127.0.0.1/a b',
    'https://ｅｘａｍｐｌｅ.com/x',
    'https://１２７.0.0.1/x',
  ]) {
    const res = await create(url);
    expect([url, res.status, res.body.errors?.map((e: { path: string }) => e.path)]).toEqual([url, 400, ['url']]);
  }
  expect(await count('endpoints')).toBe(before);
});

test('when the body is not UTF-8 or has lone surrogates, then 400; a UTF-8 byte-order mark is tolerated', async () => {
  const a = await newAccount(h);
  const before = await counts();
  const json = (name: string) => `{"name":"${name}","plan":"paid"}`;
  const invalid = Buffer.concat([Buffer.from('{"name":"Ac'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('me","plan":"paid"}')]);
  const bad = await rawCall('POST', '/v1/accounts', invalid);
  expect([bad.status, bad.body.code]).toEqual([400, 'invalid_utf8']);
  const surrogate = await rawCall('POST', '/v1/accounts', json('Acme \\ud800'));
  expect([surrogate.status, surrogate.body.code, surrogate.body.errors[0].path]).toEqual([400, 'validation_failed', 'name']);
  const inData = await rawCall(
    'POST',
    '/v1/events',
    `{"accountId":"${a.id}","eventType":"referrer_added","data":${JSON.stringify(participant()).slice(0, -1)},"note\\udc00":"x"}}`,
  );
  expect([inData.status, inData.body.errors?.[0].path]).toEqual([400, 'data.note\udc00']);
  expect(await counts()).toEqual(before);
  const blank = await rawCall('POST', '/v1/accounts', '\r\n');
  expect([blank.status, blank.body.code]).toEqual([400, 'invalid_json']); // only no bytes at all is "no body"
  const bom = await rawCall('POST', '/v1/accounts', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json('Bom Ltd'))]));
  expect([bom.status, bom.body.name]).toEqual([201, 'Bom Ltd']);
});

test('when an endpoint has several bad fields (url and eventTypes), then one 400 lists every one', async () => {
  const a = await newAccount(h);
  const res = await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'not a url', eventTypes: ['no_such_event'] } });
  expect(res.status).toBe(400);
  expect(res.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['eventTypes.0', 'url']);
  const privateAndBad = await h.call('POST', '/v1/endpoints', { token: a.apiKey, body: { url: 'https://10.0.0.1/x', eventTypes: ['no_such_event'], description: 5 } });
  expect(privateAndBad.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['description', 'eventTypes.0', 'url']);
});
