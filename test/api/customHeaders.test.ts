import { Webhook } from 'standardwebhooks';
import { sealHeaders } from '../../src/db/endpointSecrets';
import { createLogger } from '../../src/logger';
import { newAccount, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor } from '../helpers/receiver';

// Custom headers per endpoint (issue 15): sent with every attempt by a real worker to a real
// receiver, never in place of the service's own headers, sealed at rest and never logged.
const logLines: string[] = [];
let h: Harness;
let receiver: Receiver;

beforeAll(async () => {
  h = await startHarness({ LOG_LEVEL: 'debug' }, { log: createLogger('debug', (l) => logLines.push(l)) });
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

const CREDENTIAL = 'Bearer gw_s3cr3t_7Hq2xY';
const publish = (accountId: string, n = 1) => h.call('POST', '/v1/events', { body: { accountId, eventType: 'referrer_added', data: participant(n) } });
const finished = (token: string, id: string) =>
  waitFor(async () => {
    const r = await h.call('GET', `/v1/deliveries/${id}`, { token });
    return r.body.status !== 'pending' ? r.body : undefined;
  }, `delivery ${id}`);

test('when an endpoint has custom headers, then every attempt carries them beside valid signature headers, and they are sealed at rest and never logged', async () => {
  const account = await newAccount(h);
  const created = await h.call('POST', '/v1/endpoints', {
    token: account.apiKey,
    body: { url: receiver.url, eventTypes: ['referrer_added'], headers: { Authorization: CREDENTIAL, 'X-Tenant': 'acme' } },
  });
  expect(created.status).toBe(201);
  expect(created.body.headers).toEqual({ Authorization: CREDENTIAL, 'X-Tenant': 'acme' });
  expect((await h.call('GET', `/v1/endpoints/${created.body.id}`, { token: account.apiKey })).body.headers).toEqual({ Authorization: CREDENTIAL, 'X-Tenant': 'acme' });

  receiver.respond = (_r, n) => (n === 1 ? { status: 503 } : { status: 200 });
  const pub = await publish(account.id);
  const detail = await finished(account.apiKey, pub.body.deliveries[0].id);
  expect([detail.status, detail.attemptCount]).toEqual(['delivered', 2]);
  expect(receiver.requests).toHaveLength(2);
  for (const req of receiver.requests) {
    expect(req.headers.authorization).toBe(CREDENTIAL);
    expect(req.headers['x-tenant']).toBe('acme');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['user-agent']).toMatch(/^rr-webhooks\//);
    expect(req.headers['webhook-id']).toBe(detail.id);
    new Webhook(created.body.secret).verify(req.body, {
      'webhook-id': req.headers['webhook-id'] as string,
      'webhook-timestamp': req.headers['webhook-timestamp'] as string,
      'webhook-signature': req.headers['webhook-signature'] as string,
    });
  }

  const [raw] = await h.db.query<{ headers: string }>('select headers from endpoints where id = $1', [created.body.id]);
  expect(raw.headers).toMatch(/^enc:v1:/);
  expect(raw.headers).not.toContain('gw_s3cr3t');
  expect(logLines.join('\n')).not.toContain('gw_s3cr3t');
  expect(logLines.some((l) => l.includes('delivery.attempted'))).toBe(true);

  // The real write path also fed the endpoint's stats.
  const stats = (await h.call('GET', `/v1/endpoints/${created.body.id}/stats?window=1h`, { token: account.apiKey })).body;
  expect(stats.totals).toMatchObject({ attempts: 2, succeeded: 1, failed: 1, failedBy: expect.objectContaining({ '5xx': 1 }), successRate: 0.5 });
});

test('when custom headers try to replace signature, content or connection headers, or are malformed, then the request is 400 naming each one and nothing is stored', async () => {
  const account = await newAccount(h);
  const body = {
    url: receiver.url,
    eventTypes: ['referrer_added'],
    headers: {
      'webhook-signature': 'v1,forged',
      'Content-Type': 'text/plain',
      Host: 'evil.example',
      'Transfer-Encoding': 'chunked',
      'X-RR-Signature': 'x',
      'Bad Name': 'x',
      'X-Split': 'a\r\nX-Injected: 1',
      'X-Trailing': 'a ',
    },
  };
  const res = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body });
  expect(res.status).toBe(400);
  expect(res.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(
    [
      'headers.Bad Name',
      'headers.Content-Type',
      'headers.Host',
      'headers.Transfer-Encoding',
      'headers.X-RR-Signature',
      'headers.X-Split',
      'headers.X-Trailing',
      'headers.webhook-signature',
    ].sort(),
  );
  expect((await h.call('GET', '/v1/endpoints', { token: account.apiKey })).body.data).toEqual([]);

  const many = Object.fromEntries(Array.from({ length: 11 }, (_v, i) => [`X-H${i}`, 'v']));
  expect((await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'], headers: many } })).body.errors).toEqual([
    { path: 'headers', message: 'at most 10 custom headers' },
  ]);
  const dup = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'], headers: { 'X-A': '1', 'x-a': '2' } } });
  expect(dup.body.errors).toEqual([{ path: 'headers.x-a', message: expect.stringMatching(/twice/) }]);
});

test('when custom headers are replaced or removed with PATCH, then the next webhook carries the new set', async () => {
  const account = await newAccount(h);
  const created = (await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'], headers: { 'X-Old': '1' } } })).body;
  const patched = await h.call('PATCH', `/v1/endpoints/${created.id}`, { token: account.apiKey, body: { headers: { 'X-New': '2' } } });
  expect(patched.body.headers).toEqual({ 'X-New': '2' });
  await finished(account.apiKey, (await publish(account.id, 1)).body.deliveries[0].id);
  expect([receiver.requests[0].headers['x-old'], receiver.requests[0].headers['x-new']]).toEqual([undefined, '2']);

  const other = await h.call('PATCH', `/v1/endpoints/${created.id}`, { token: account.apiKey, body: { description: 'kept' } });
  expect(other.body.headers).toEqual({ 'X-New': '2' }); // untouched when not in the patch
  expect((await h.call('PATCH', `/v1/endpoints/${created.id}`, { token: account.apiKey, body: { headers: null } })).body.headers).toEqual({});
  expect((await h.db.query<{ headers: string | null }>('select headers from endpoints where id = $1', [created.id]))[0].headers).toBeNull();
  await finished(account.apiKey, (await publish(account.id, 2)).body.deliveries[0].id);
  expect(receiver.requests[1].headers['x-new']).toBeUndefined();
});

test("when a stored header set holds a service header (written before a rule existed), then the service's own header is what goes out", async () => {
  const account = await newAccount(h);
  const created = (await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } })).body;
  await h.db.query('update endpoints set headers = $2 where id = $1', [
    created.id,
    sealHeaders(created.id, { 'Webhook-Signature': 'v1,forged', 'Content-Type': 'text/plain', 'X-Fine': 'yes' }),
  ]);
  const detail = await finished(account.apiKey, (await publish(account.id)).body.deliveries[0].id);
  expect(detail.status).toBe('delivered');
  const req = receiver.requests[0];
  expect(req.headers['content-type']).toBe('application/json');
  expect(req.headers['webhook-signature']).toMatch(/^v1,/);
  expect(req.headers['webhook-signature']).not.toContain('forged');
  expect(req.headers['x-fine']).toBe('yes');
});
