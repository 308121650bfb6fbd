import type { IncomingHttpHeaders } from 'node:http';
import { recordEndpointFailures } from '../../src/db/endpointHealth';
import { MAX_RESPONSE_HEADER_VALUE_CHARS, MAX_RESPONSE_HEADERS, MAX_RESPONSE_HEADERS_CHARS } from '../../src/domain/attemptHeaders';
import { newAccount, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { Receiver, waitFor, type ReceivedRequest } from '../helpers/receiver';

// Request and response headers per attempt in the delivery log (issue 15), from a real worker
// sending to a real receiver, on each path that records attempts: the first-attempt batch, the
// retry workflow and the endpoint's drain (retry now). Runs on PGlite and on Postgres.
let h: Harness;
let receiver: Receiver;

beforeAll(async () => {
  h = await startHarness({ RETRY_INITIAL_INTERVAL: '1s', RETRY_JITTER: '0', CIRCUIT_OPEN_AFTER: '3' });
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
const CUSTOM = { Authorization: CREDENTIAL, 'X-Tenant': 'acme', Accept: 'application/json' };

async function endpointWithCustomHeaders() {
  const account = await newAccount(h);
  const ep = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'], headers: CUSTOM } });
  expect(ep.status).toBe(201);
  return { account, endpointId: ep.body.id as string };
}

const finished = (token: string, id: string) =>
  waitFor(async () => {
    const r = await h.call('GET', `/v1/deliveries/${id}`, { token });
    return r.body.status !== 'pending' ? r.body : undefined;
  }, `delivery ${id} to finish`);

/** The recorded request headers are what the receiver got, custom values redacted; only Host and Connection (added by Node) are not recorded. */
function expectSentAsRecorded(recorded: Record<string, string>, got: ReceivedRequest) {
  const seen: IncomingHttpHeaders = got.headers;
  expect(
    Object.keys(recorded)
      .map((n) => n.toLowerCase())
      .sort(),
  ).toEqual(
    Object.keys(seen)
      .filter((n) => n !== 'host' && n !== 'connection')
      .sort(),
  );
  for (const name of ['content-type', 'user-agent', 'content-length', 'webhook-id', 'webhook-timestamp', 'webhook-signature', 'x-rr-signature', 'accept'])
    expect([name, recorded[Object.keys(recorded).find((n) => n.toLowerCase() === name)!]]).toEqual([name, seen[name]]);
  expect(seen.authorization).toBe(CREDENTIAL);
  expect(recorded.Authorization).toBe('••••q2xY');
  expect(seen['x-tenant']).toBe('acme');
  expect(recorded['X-Tenant']).toBe('••••');
  expect(JSON.stringify(recorded)).not.toContain('gw_s3cr3t');
}

test('when attempts are made, then the log returns the request headers the receiver got (custom values redacted) and a bounded subset of its response headers without cookies, for the first attempt and the retry', async () => {
  const { account } = await endpointWithCustomHeaders();
  const extra = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`X-Extra-${String(i).padStart(2, '0')}`, `value ${i}`]));
  receiver.respond = (_r, n) =>
    n === 1
      ? {
          status: 503,
          body: 'down',
          headers: { 'X-Request-Id': 'req_1', 'Set-Cookie': ['sid=s3cr3t-session; HttpOnly', 'tracking=1'], 'X-Long': 'v'.repeat(1_000), ...extra },
        }
      : { status: 200, body: 'ok', headers: { 'X-Request-Id': 'req_2', 'Set-Cookie': 'sid=s3cr3t-session' } };

  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(3) } });
  const detail = await finished(account.apiKey, pub.body.deliveries[0].id);

  expect([detail.status, detail.attempts.length, receiver.requests.length]).toEqual(['delivered', 2, 2]);
  const [first, retry] = detail.attempts;
  expectSentAsRecorded(first.requestHeaders, receiver.requests[0]);
  expectSentAsRecorded(retry.requestHeaders, receiver.requests[1]);
  expect(first.requestHeaders['webhook-id']).toBe(detail.id);

  // The first answer: its own headers first, cut to the bounds, never its cookies.
  const r1 = first.responseHeaders as Record<string, string>;
  expect(r1).toMatchObject({ 'content-type': 'text/plain', 'x-request-id': 'req_1', 'x-extra-00': 'value 0' });
  expect(r1['x-long']).toHaveLength(MAX_RESPONSE_HEADER_VALUE_CHARS);
  expect(Object.keys(r1)).toHaveLength(MAX_RESPONSE_HEADERS);
  expect(Object.entries(r1).reduce((n, [k, v]) => n + k.length + v.length, 0)).toBeLessThanOrEqual(MAX_RESPONSE_HEADERS_CHARS);
  expect(Object.keys(r1)).not.toContain('set-cookie');
  expect(JSON.stringify(detail)).not.toContain('s3cr3t-session');
  expect(retry.responseHeaders).toMatchObject({ 'x-request-id': 'req_2', 'content-type': 'text/plain' });
  expect(retry.responseHeaders['set-cookie']).toBeUndefined();

  // Stored as the API shows it: the credential is nowhere in the attempts table.
  const rows = await h.db.query<{ request_headers: unknown; response_headers: unknown }>(
    'select request_headers, response_headers from delivery_attempts where delivery_id = $1 order by attempt',
    [detail.id],
  );
  expect(rows.map((r) => r.request_headers)).toEqual([first.requestHeaders, retry.requestHeaders]);
  expect(JSON.stringify(rows)).not.toMatch(/gw_s3cr3t|s3cr3t-session/);
});

test('when a held delivery is retried now (the drain sends it) and no answer comes back, then its attempts still carry the request headers, and response headers only when there was a response', async () => {
  const { account, endpointId } = await endpointWithCustomHeaders();
  // An open circuit: the delivery is held until "retry now" sends it through the endpoint's drain.
  await recordEndpointFailures(h.db, [{ endpointId, at: new Date(Date.now() - 60_000), count: 3, error: 'HTTP 503' }], 3, 3_600_000);
  receiver.respond = () => ({ status: 200, body: 'ok', headers: { 'X-Request-Id': 'req_drain' } });
  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(4) } });
  const id = pub.body.deliveries[0].id;
  await waitFor(async () => ((await h.call('GET', `/v1/deliveries/${id}`, { token: account.apiKey })).body.held ? true : undefined), `${id} to be held`);
  expect(receiver.requests).toHaveLength(0);

  expect((await h.call('POST', `/v1/deliveries/${id}/retry`, { token: account.apiKey })).status).toBe(202);
  const detail = await finished(account.apiKey, id);

  expect([detail.status, detail.attempts.length]).toEqual(['delivered', 1]);
  // Its own workflow waits for the next probe, an hour away: the drain made this attempt.
  expect((await h.client.workflow.getHandle(`drain-${endpointId}`).describe()).type).toBe('drainEndpoint');
  expectSentAsRecorded(detail.attempts[0].requestHeaders, receiver.requests[0]);
  expect(detail.attempts[0].responseHeaders).toMatchObject({ 'x-request-id': 'req_drain' });

  // No answer (nothing listens): request headers, no response headers.
  await receiver.stop();
  const refused = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(5) } });
  const refusedId = refused.body.deliveries[0].id;
  const attempted = await waitFor(async () => {
    const d = (await h.call('GET', `/v1/deliveries/${refusedId}`, { token: account.apiKey })).body;
    return d.attempts.length > 0 ? d.attempts[0] : undefined;
  }, `${refusedId} attempted`);
  expect(attempted.error).toMatch(/ECONNREFUSED/);
  expect(attempted.requestHeaders).toMatchObject({ 'webhook-id': refusedId, Authorization: '••••q2xY', 'content-type': 'application/json' });
  expect(attempted.responseHeaders).toBeUndefined();
  receiver = await new Receiver().start(); // for afterEach
  await h.call('DELETE', `/v1/endpoints/${endpointId}`, { token: account.apiKey }); // no more retries
});

test('when a receiver answers with NUL bytes in its body, then the attempt is still recorded (Postgres text cannot hold U+0000: each becomes U+FFFD) and the delivery is sent once', async () => {
  const { account } = await endpointWithCustomHeaders();
  receiver.respond = () => ({ status: 200, body: 'ok\u0000binary\u0000tail' });

  const pub = await h.call('POST', '/v1/events', { body: { accountId: account.id, eventType: 'referrer_added', data: participant(5) } });
  const detail = await finished(account.apiKey, pub.body.deliveries[0].id);

  expect([detail.status, detail.attempts.length, receiver.requests.length]).toEqual(['delivered', 1, 1]);
  expect(detail.attempts[0].responseBody).toBe('ok\uFFFDbinary\uFFFDtail');
});
