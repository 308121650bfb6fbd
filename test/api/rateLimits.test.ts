import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/api/app';
import { addressKey, sourceAddress } from '../../src/api/rateLimits';
import { loadConfig } from '../../src/config';
import { silentLogger } from '../../src/logger';
import { newAccount, startHarness, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor } from '../helpers/receiver';

/**
 * Abuse limits (README "Abuse limits"): 429 + Retry-After + the JSON error body on each budget,
 * the failed-authentication budget per source address, and the endpoint cap under concurrency.
 * Runs on PGlite (counters in memory) and on Postgres (counters in the rate_limits table);
 * rateLimits.pg.test.ts shares them between two API processes.
 *
 * Budgets are per credential, per account or per address, so each test uses its own accounts and
 * (through TRUSTED_PROXY_HOPS=1 and X-Forwarded-For) its own source addresses.
 */
const API = { points: 15, window: 10 };
const SEND = 3;
const AUTH = 4;
const CAP = 5;

let h: Harness;
let receiver: Receiver;
beforeAll(async () => {
  receiver = await new Receiver().start();
  h = await startHarness({
    RATE_LIMIT_API: `${API.points}/${API.window}s`,
    RATE_LIMIT_SEND: `${SEND}/1m`,
    RATE_LIMIT_AUTH_FAILURES: `${AUTH}/1m`,
    TRUSTED_PROXY_HOPS: '1',
    MAX_ENDPOINTS_PER_ACCOUNT: String(CAP),
  });
});
afterAll(async () => {
  await h?.close();
  await receiver?.stop();
});

const tokenOf = (url: string) => new URL(url).hash.replace(/^#token=/, '');
let nextAddress = 1;
/** A source address of its own (TEST-NET-3), as a trusted proxy would report it. */
const address = () => ({ 'x-forwarded-for': `203.0.113.${nextAddress++}` });

function expect429(res: { status: number; body: any; headers: Headers }, setting: string) {
  expect([res.status, res.body.code]).toEqual([429, 'rate_limited']);
  expect(res.body.detail).toContain(setting);
  expect(Object.keys(res.body).sort()).toEqual(['code', 'detail']);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
  expect(res.headers.get('ratelimit-remaining')).toBe('0');
  return retryAfter;
}

test('when one API key spends its RATE_LIMIT_API budget, then it gets 429 with Retry-After, RateLimit-* headers and the JSON body, while its other key and a portal link keep theirs; after Retry-After it works again', async () => {
  const a = await newAccount(h);
  const second = (await h.call('POST', '/v1/api-keys', { token: a.apiKey, body: { name: 'second' }, headers: address() })).body.key as string;
  const headers = address();
  const remaining: string[] = [];
  for (let i = 0; i < API.points; i++) {
    const res = await h.call('GET', '/v1/endpoints', { token: second, headers });
    expect(res.status).toBe(200);
    remaining.push(res.headers.get('ratelimit-remaining')!);
    expect(res.headers.get('ratelimit-limit')).toBe(String(API.points));
    expect(res.headers.get('ratelimit-policy')).toBe(`${API.points};w=${API.window}`);
  }
  expect(remaining).toEqual(Array.from({ length: API.points }, (_, i) => String(API.points - 1 - i)));

  const refused = await h.call('GET', '/v1/endpoints', { token: second, headers });
  const retryAfter = expect429(refused, 'RATE_LIMIT_API');
  expect(retryAfter).toBeLessThanOrEqual(API.window);
  expect(refused.headers.get('ratelimit-limit')).toBe(String(API.points));
  // The same for a write, which therefore did nothing.
  const write = await h.call('POST', '/v1/endpoints', { token: second, headers, body: { url: receiver.url, eventTypes: ['referrer_added'] } });
  expect429(write, 'RATE_LIMIT_API');
  expect(await h.db.query('select 1 from endpoints where account_id = $1', [a.id])).toHaveLength(0);

  // Per credential: the account's first key and a portal link have budgets of their own.
  expect((await h.call('GET', '/v1/endpoints', { token: a.apiKey, headers })).status).toBe(200);
  const link = await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: {} });
  expect((await h.call('GET', '/v1/endpoints', { token: tokenOf(link.body.url), headers })).status).toBe(200);

  await new Promise((r) => setTimeout(r, retryAfter * 1000 + 200));
  const again = await h.call('GET', '/v1/endpoints', { token: second, headers });
  expect(again.status).toBe(200);
  expect(again.headers.get('ratelimit-remaining')).toBe(String(API.points - 1));
}, 60_000);

test('when a portal link spends its budget, then it gets 429 too (each link is a credential)', async () => {
  const a = await newAccount(h);
  const token = tokenOf((await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: {} })).body.url);
  const headers = address();
  for (let i = 0; i < API.points; i++) expect((await h.call('GET', '/v1/account', { token, headers })).status).toBe(200);
  expect429(await h.call('GET', '/v1/account', { token, headers }), 'RATE_LIMIT_API');
});

test('when an account asks for more test events, resends and retries than RATE_LIMIT_SEND, then the rest get 429 and its receiver gets only what was allowed; other accounts and the admin token are not held back', async () => {
  const a = await newAccount(h);
  const other = await newAccount(h);
  const headers = address();
  const mine = `${receiver.url}/send-${a.id}`;
  const ep = (await h.call('POST', '/v1/endpoints', { token: a.apiKey, headers, body: { url: mine, eventTypes: ['referrer_added'] } })).body;
  const otherEp = (await h.call('POST', '/v1/endpoints', { token: other.apiKey, headers, body: { url: `${receiver.url}/send-${other.id}`, eventTypes: ['referrer_added'] } })).body;
  const second = (await h.call('POST', '/v1/api-keys', { token: a.apiKey, headers, body: { name: 'second' } })).body.key as string;

  const sent: string[] = [];
  for (let i = 0; i < SEND; i++) {
    const res = await h.call('POST', `/v1/endpoints/${ep.id}/test`, { token: a.apiKey, headers, body: {} });
    expect(res.status).toBe(202);
    expect(res.headers.get('ratelimit-limit')).toBe(String(SEND)); // the tighter budget is the one reported
    expect(res.headers.get('ratelimit-remaining')).toBe(String(SEND - 1 - i));
    sent.push(res.body.deliveryId);
  }
  // Every on-demand route takes from the same budget, with any of the account's credentials.
  const delivered = await waitFor(async () => {
    const rows = await h.db.query<{ status: string }>('select status from deliveries where id = $1', [sent[0]]);
    return rows[0]?.status === 'delivered' ? true : undefined;
  }, 'the first test event to be delivered');
  expect(delivered).toBe(true);
  const link = tokenOf((await h.call('POST', `/v1/accounts/${a.id}/portal-links`, { body: {} })).body.url);
  const refused = [
    await h.call('POST', `/v1/endpoints/${ep.id}/test`, { token: a.apiKey, headers, body: {} }),
    await h.call('POST', `/v1/deliveries/${sent[0]}/resend`, { token: second, headers }),
    await h.call('POST', `/v1/deliveries/${sent[0]}/retry`, { token: link, headers }),
    await h.call('POST', `/v1/endpoints/${ep.id}/retry`, { token: a.apiKey, headers }),
    await h.call('POST', `/v1/endpoints/${ep.id}/recover`, { token: second, headers, body: { since: new Date(0).toISOString() } }),
  ];
  for (const res of refused) {
    const retryAfter = expect429(res, 'RATE_LIMIT_SEND');
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(res.body.detail).toMatch(/test events, resends and retries for this account/);
  }
  // Reads are not on-demand sends: still fine.
  expect((await h.call('GET', `/v1/deliveries/${sent[0]}`, { token: a.apiKey, headers })).status).toBe(200);
  // Another account has its own budget; the admin token (the platform) is not counted.
  expect((await h.call('POST', `/v1/endpoints/${otherEp.id}/test`, { token: other.apiKey, headers, body: {} })).status).toBe(202);
  const byAdmin = await h.call('POST', `/v1/endpoints/${ep.id}/test?accountId=${a.id}`, { headers, body: {} });
  expect(byAdmin.status).toBe(202);

  // The receiver got exactly the allowed ones (and the admin's), nothing of the refused ones.
  const expected = [...sent, byAdmin.body.deliveryId];
  await waitFor(() => (receiver.requests.filter((r) => r.path === new URL(mine).pathname).length >= expected.length ? true : undefined), 'the allowed sends to arrive');
  await new Promise((r) => setTimeout(r, 1000));
  const got = receiver.requests.filter((r) => r.path === new URL(mine).pathname).map((r) => r.headers['webhook-id']);
  expect(got.sort()).toEqual(expected.sort());
  expect(await h.db.query('select 1 from deliveries where endpoint_id = $1', [ep.id])).toHaveLength(expected.length);
}, 90_000);

test('when one address fails authentication RATE_LIMIT_AUTH_FAILURES times, then its next attempts get 429, a valid key from it too, until the window ends; other addresses are not affected', async () => {
  const a = await newAccount(h);
  const attacker = address();
  const bystander = address();
  for (let i = 0; i < AUTH; i++) {
    const res = await h.call('GET', '/v1/endpoints', { token: `rrk_guess_${i}`, headers: attacker });
    expect([res.status, res.body.code]).toEqual([401, 'unauthorized']);
    expect(res.headers.get('ratelimit-limit')).toBeNull();
  }
  const over = await h.call('GET', '/v1/endpoints', { token: 'rrk_guess_over', headers: attacker });
  const retryAfter = expect429(over, 'RATE_LIMIT_AUTH_FAILURES');
  expect(retryAfter).toBeGreaterThan(50); // the rest of the 1-minute window
  expect(over.body.detail).toMatch(/failed authentications from this address/);
  // No token at all, a valid key, and /metrics: the address is refused whatever it sends.
  expect429(await h.call('GET', '/v1/endpoints', { token: null, headers: attacker }), 'RATE_LIMIT_AUTH_FAILURES');
  expect429(await h.call('GET', '/v1/endpoints', { token: a.apiKey, headers: attacker }), 'RATE_LIMIT_AUTH_FAILURES');
  expect429(await h.call('GET', '/metrics', { token: 'nope', headers: attacker }), 'RATE_LIMIT_AUTH_FAILURES');

  // Another address: its own failures answer 401, its valid key works.
  expect((await h.call('GET', '/v1/endpoints', { token: 'rrk_wrong', headers: bystander })).status).toBe(401);
  expect((await h.call('GET', '/v1/endpoints', { token: a.apiKey, headers: bystander })).status).toBe(200);
  // Open routes stay open.
  expect((await h.call('GET', '/healthz', { token: null, headers: attacker })).status).toBe(200);
});

test('when two IPv6 addresses share a /64, then they share one failed-authentication budget', async () => {
  for (let i = 0; i < AUTH; i++) {
    const res = await h.call('GET', '/v1/account', { token: 'bad', headers: { 'x-forwarded-for': `2001:db8:7:7::${i + 1}` } });
    expect(res.status).toBe(401);
  }
  expect429(await h.call('GET', '/v1/account', { token: 'bad', headers: { 'x-forwarded-for': '2001:db8:7:7:ffff::9' } }), 'RATE_LIMIT_AUTH_FAILURES');
  expect((await h.call('GET', '/v1/account', { token: 'bad', headers: { 'x-forwarded-for': '2001:db8:7:8::1' } })).status).toBe(401);
});

test('when 12 endpoints are created at once for an account with a cap of 5, then exactly 5 exist and the others get 409 endpoint_limit_reached; after a delete one more fits', async () => {
  const a = await newAccount(h);
  const create = (n: number) => h.call('POST', `/v1/endpoints?accountId=${a.id}`, { body: { url: `${receiver.url}/cap-${n}`, eventTypes: ['referrer_added'] } });
  const results = await Promise.all(Array.from({ length: 12 }, (_, n) => create(n)));
  const statuses = results.map((r) => r.status).sort();
  expect(statuses).toEqual([...Array(CAP).fill(201), ...Array(12 - CAP).fill(409)]);
  const refused = results.find((r) => r.status === 409)!;
  expect(refused.body).toEqual({ code: 'endpoint_limit_reached', detail: expect.stringContaining(`${CAP} endpoints`) });
  expect(refused.body.detail).toContain('MAX_ENDPOINTS_PER_ACCOUNT');
  const live = await h.db.query<{ id: string }>('select id from endpoints where account_id = $1 and deleted_at is null', [a.id]);
  expect(live).toHaveLength(CAP);

  // Disabled endpoints count; deleted ones do not.
  expect((await h.call('PATCH', `/v1/endpoints/${live[0].id}?accountId=${a.id}`, { body: { enabled: false } })).status).toBe(200);
  expect((await create(100)).status).toBe(409);
  expect((await h.call('DELETE', `/v1/endpoints/${live[1].id}?accountId=${a.id}`)).status).toBe(204);
  expect((await create(101)).status).toBe(201);
  expect((await create(102)).status).toBe(409);
  // Another account has a cap of its own.
  const b = await newAccount(h);
  expect((await h.call('POST', '/v1/endpoints', { token: b.apiKey, headers: address(), body: { url: receiver.url, eventTypes: ['referrer_added'] } })).status).toBe(201);
});

test('when the admin token publishes far past RATE_LIMIT_API, then nothing is refused and no budget is reported (RATE_LIMIT_ADMIN is off by default)', async () => {
  const a = await newAccount(h);
  const results = await Promise.all(Array.from({ length: 3 * API.points }, () => h.call('GET', `/v1/endpoints?accountId=${a.id}`)));
  expect(results.map((r) => r.status)).toEqual(Array(3 * API.points).fill(200));
  expect(results[0].headers.get('ratelimit-limit')).toBeNull();
});

test('when RATE_LIMIT_ADMIN is set, then the admin token gets 429 past it (every admin token together), and the metrics token has a budget of its own', async () => {
  const adminToken = 'a'.repeat(32);
  const cfg = loadConfig({ ADMIN_TOKEN: adminToken, ADMIN_TOKENS_PREVIOUS: 'b'.repeat(32), METRICS_TOKEN: 'm'.repeat(32), RATE_LIMIT_ADMIN: '4/1m', RATE_LIMIT_API: '2/1m' });
  // Event types and /metrics need neither a database nor Temporal.
  const app = createApp({ cfg, adminToken, log: silentLogger } as never);
  const server: Server = await new Promise((ok) => {
    const s = app.listen(0, '127.0.0.1', () => ok(s));
  });
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const get = async (path: string, token: string) => {
      const res = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: await res.json().catch(() => undefined), headers: res.headers };
    };
    const statuses: number[] = [];
    for (const token of ['a', 'b', 'a', 'b', 'a']) statuses.push((await get('/v1/event-types', token.repeat(32))).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429]);
    expect429(await get('/v1/event-types', 'b'.repeat(32)), 'RATE_LIMIT_ADMIN');
    expect([(await get('/metrics', 'm'.repeat(32))).status, (await get('/metrics', 'm'.repeat(32))).status]).toEqual([200, 200]);
    expect429(await get('/metrics', 'm'.repeat(32)), 'RATE_LIMIT_API');
  } finally {
    await new Promise((ok) => server.close(ok));
  }
});

test('when the OpenAPI document is read, then every authenticated operation documents 429 with Retry-After and the on-demand send routes say they take from RATE_LIMIT_SEND', async () => {
  const doc = (await h.call('GET', '/openapi.json', { token: null })).body;
  const tooMany = doc.components.responses.TooManyRequests;
  expect(tooMany.headers['Retry-After'].required).toBe(true);
  expect(tooMany.content['application/json'].schema.$ref).toBe('#/components/schemas/Error');
  let authenticated = 0;
  const send: string[] = [];
  for (const ops of Object.values(doc.paths) as Record<string, any>[]) {
    for (const op of Object.values(ops)) {
      if (op['x-auth'] === 'none') continue;
      authenticated++;
      expect([op.operationId, op.responses['429']?.$ref]).toEqual([op.operationId, '#/components/responses/TooManyRequests']);
      if (/RATE_LIMIT_SEND/.test(op.description ?? '')) send.push(op.operationId);
    }
  }
  expect(authenticated).toBeGreaterThan(20);
  expect(send.sort()).toEqual(['recoverEndpoint', 'resendDeliveries', 'resendDelivery', 'retryDelivery', 'retryEndpoint', 'sendTestEvent']);
  expect(doc.paths['/v1/endpoints'].post.responses['409'].$ref).toBe('#/components/responses/Conflict');
});

test('when the source address is worked out, then X-Forwarded-For counts only with trusted proxy hops, IPv4-mapped IPv6 is plain IPv4 and IPv6 is cut to its /64', () => {
  const ctx = (peer: string, xff = '') => ({ socket: { remoteAddress: peer }, get: (name: string) => (name === 'x-forwarded-for' ? xff : '') }) as never;
  expect(sourceAddress(ctx('::ffff:127.0.0.1', '198.51.100.9'), 0)).toBe('127.0.0.1');
  expect(sourceAddress(ctx('10.0.0.2', '198.51.100.9'), 1)).toBe('198.51.100.9');
  expect(sourceAddress(ctx('10.0.0.2', '6.6.6.6, 198.51.100.9'), 1)).toBe('198.51.100.9'); // a spoofed entry on the left is ignored
  expect(sourceAddress(ctx('10.0.0.2', '198.51.100.9, 10.0.0.3'), 2)).toBe('198.51.100.9');
  expect(sourceAddress(ctx('10.0.0.2', ''), 1)).toBe('10.0.0.2');
  expect(sourceAddress(ctx('10.0.0.2', '198.51.100.9'), 3)).toBe('198.51.100.9');
  expect(addressKey('2001:db8:a:b:c:d:e:f')).toBe('2001:db8:a:b::/64');
  expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
  expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  expect(addressKey('::1')).toBe('0:0:0:0::/64');
});
