import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { reencryptSecrets, useSecretKeyRing } from '../../src/db/endpointSecrets';
import { keyId, keyRing, parseKeyList } from '../../src/domain/secretBox';
import { createLogger } from '../../src/logger';
import { newAccount, participant, startHarness, type Harness } from '../helpers/apiHarness';
import { historyToJson, readableText } from '../helpers/historyJson';
import { Receiver, waitFor } from '../helpers/receiver';
import { TEST_SECRET_KEYS } from '../helpers/secretKeys';

// Endpoint signing secrets at rest (issue 13): encrypted in the table, and never in the log,
// the workflow histories, search attributes or metrics of a full run.
const logLines: string[] = [];
let h: Harness;
let receiver: Receiver;
const testKey = parseKeyList(TEST_SECRET_KEYS)![0];
beforeAll(async () => {
  h = await startHarness({ SECRET_ROTATION_OVERLAP: '1h', DELIVERY_WINDOW: '20s', LOG_LEVEL: 'debug' }, { log: createLogger('debug', (l) => logLines.push(l)) });
});
afterAll(async () => {
  await h?.close();
});
beforeEach(async () => {
  receiver = await new Receiver().start();
});
afterEach(async () => {
  await receiver.stop();
  useSecretKeyRing(keyRing([testKey]));
});

const publish = (accountId: string, n = 1) => h.call('POST', '/v1/events', { body: { accountId, eventType: 'referrer_added', data: participant(n) } });
const finished = (token: string, id: string) =>
  waitFor(async () => {
    const r = await h.call('GET', `/v1/deliveries/${id}`, { token });
    return r.body.status !== 'pending' ? r.body : undefined;
  }, `delivery ${id}`);
const rawEndpoints = () => h.db.query<{ id: string; secret: string; previous_secret: string | null }>('select * from endpoints');

test('when a full run happens (publish, a failing attempt, a rotation, a resend, a test event), then no signing secret is in the raw table, the log, the workflow histories, the search attributes or the metrics', async () => {
  const account = await newAccount(h);
  const created = await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } });
  expect(created.status).toBe(201);
  const ep = created.body as { id: string; secret: string };
  const secrets = [ep.secret];

  // A failing first attempt, then a success on retry.
  let calls = 0;
  receiver.respond = () => ({ status: ++calls === 1 ? 500 : 200 });
  const first = (await publish(account.id, 1)).body.deliveries[0].id;
  expect((await finished(account.apiKey, first)).status).toBe('delivered');
  expect(calls).toBe(2);

  const rotated = await h.call('POST', `/v1/endpoints/${ep.id}/secret/rotate`, { token: account.apiKey });
  expect(rotated.status).toBe(200);
  secrets.push(rotated.body.secret);
  expect((await h.call('GET', `/v1/endpoints/${ep.id}/secret`, { token: account.apiKey })).body.secret).toBe(rotated.body.secret);

  // Signed with both secrets during the overlap: the delivery activity decrypted both.
  const second = (await publish(account.id, 2)).body.deliveries[0].id;
  expect((await finished(account.apiKey, second)).status).toBe('delivered');
  const last = receiver.requests[receiver.requests.length - 1];
  const headers = {
    'webhook-id': String(last.headers['webhook-id']),
    'webhook-timestamp': String(last.headers['webhook-timestamp']),
    'webhook-signature': String(last.headers['webhook-signature']),
  };
  for (const s of secrets) expect(new Webhook(s).verify(last.body, headers)).toBeTruthy();

  const resent = await h.call('POST', `/v1/deliveries/${first}/resend`, { token: account.apiKey });
  expect(resent.status).toBeLessThan(300);
  await waitFor(
    async () => ((await h.call('GET', `/v1/deliveries/${first}`, { token: account.apiKey })).body.status === 'delivered' && receiver.requests.length >= 4 ? true : undefined),
    'resend',
  );
  expect((await h.call('POST', `/v1/endpoints/${ep.id}/test`, { token: account.apiKey, body: { eventType: 'referrer_added' } })).status).toBeLessThan(300);
  await waitFor(async () => (receiver.requests.length >= 5 ? true : undefined), 'test event');

  // The raw table holds envelopes only.
  const [row] = (await rawEndpoints()).filter((r) => r.id === ep.id);
  expect(row.secret).toMatch(new RegExp(`^enc:v1:${keyId(testKey)}:`));
  expect(row.previous_secret).toMatch(new RegExp(`^enc:v1:${keyId(testKey)}:`));
  const table = JSON.stringify(await h.db.query('select * from endpoints'));

  // Every workflow of this run (its own task queue), history and description.
  const histories: string[] = [];
  await waitFor(async () => {
    histories.length = 0;
    for await (const wf of h.client.workflow.list({ query: `TaskQueue = "${h.cfg.TEMPORAL_TASK_QUEUE}"` })) {
      const handle = h.client.workflow.getHandle(wf.workflowId, wf.runId);
      histories.push(readableText(historyToJson(await handle.fetchHistory())));
      const d = await handle.describe();
      histories.push(JSON.stringify({ sa: d.searchAttributes, typed: d.typedSearchAttributes, memo: d.memo }, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
    }
    // ≥ 2 workflows: the first delivery's retry and its resend (first attempts that succeed are sent from the process)
    return histories.length >= 4 ? true : undefined;
  }, 'workflow histories');
  const metrics = (await h.call('GET', '/metrics')).body as string;
  const log = logLines.join('\n');
  expect(logLines.length).toBeGreaterThan(0);

  for (const [where, text] of Object.entries({ table, log, histories: histories.join('\n'), metrics })) {
    for (const s of secrets) expect([where, text.includes(s)]).toEqual([where, false]);
    expect([where, /whsec_/.test(text)]).toEqual([where, false]);
  }
});

test('when a row still holds a plaintext secret from before encryption, then it keeps working, and the re-encryption moves every secret under the newest key, idempotently, with an old key still reading until then', async () => {
  const account = await newAccount(h);
  const eps: { id: string; secret: string }[] = [];
  for (let i = 0; i < 3; i++)
    eps.push(
      (await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: `${receiver.url}/${i}`, eventTypes: ['referrer_added'] } })).body as {
        id: string;
        secret: string;
      },
    );
  const legacy = `whsec_${randomBytes(24).toString('base64')}`;
  await h.db.query('update endpoints set secret = $2 where id = $1', [eps[0].id, legacy]);
  await h.call('POST', `/v1/endpoints/${eps[1].id}/secret/rotate`, { token: account.apiKey });
  expect((await h.call('GET', `/v1/endpoints/${eps[0].id}/secret`, { token: account.apiKey })).body.secret).toBe(legacy);
  const delivered = (await publish(account.id)).body.deliveries;
  for (const d of delivered) expect((await finished(account.apiKey, d.id)).status).toBe('delivered');
  const toLegacy = receiver.requests.find((r) => r.path.endsWith('/0'))!;
  expect(
    new Webhook(legacy).verify(toLegacy.body, {
      'webhook-id': String(toLegacy.headers['webhook-id']),
      'webhook-timestamp': String(toLegacy.headers['webhook-timestamp']),
      'webhook-signature': String(toLegacy.headers['webhook-signature']),
    }),
  ).toBeTruthy();
  const before = new Map((await h.call('GET', '/v1/endpoints', { token: account.apiKey })).body.data.map((e: { id: string }) => [e.id, e]));
  expect(before.size).toBe(3);
  const revealed = async () => Promise.all(eps.map(async (e) => (await h.call('GET', `/v1/endpoints/${e.id}/secret`, { token: account.apiKey })).body.secret as string));
  const plain = await revealed();

  // A new key first; the old one still decrypts.
  const newKey = randomBytes(32);
  const ring = keyRing([newKey, testKey]);
  useSecretKeyRing(ring);
  expect(await revealed()).toEqual(plain);
  const counts = await reencryptSecrets(h.db, ring, { batchSize: 2 });
  expect(counts.reencrypted).toBeGreaterThanOrEqual(3);
  expect(counts.skipped).toBe(0);
  for (const r of await rawEndpoints()) {
    expect(r.secret).toMatch(new RegExp(`^enc:v1:${keyId(newKey)}:`));
    if (r.previous_secret !== null) expect(r.previous_secret).toMatch(new RegExp(`^enc:v1:${keyId(newKey)}:`));
  }
  const again = await reencryptSecrets(h.db, ring);
  expect(again).toEqual({ endpoints: counts.endpoints, reencrypted: 0, alreadyCurrent: counts.endpoints, skipped: 0 });

  // The old key dropped: everything still reads. Without the new key: nothing does, and the error body names no secret.
  useSecretKeyRing(keyRing([newKey]));
  expect(await revealed()).toEqual(plain);
  useSecretKeyRing(keyRing([testKey]));
  const refused = await h.call('GET', `/v1/endpoints/${eps[0].id}/secret`, { token: account.apiKey });
  expect(refused.status).toBe(500);
  expect(JSON.stringify(refused.body)).not.toMatch(/whsec_|enc:v1/);
  // And back under the test key, for the next test.
  expect((await reencryptSecrets(h.db, keyRing([testKey, newKey]))).reencrypted).toBe(counts.endpoints);
});

test('when `npm run secrets:reencrypt` runs against the database, then it prints its counts and re-encrypts under the newest key', async () => {
  if (!h.dbUrl) return; // the command opens the database itself: Postgres project only (PGlite is in-process here)
  const account = await newAccount(h);
  const ep = (await h.call('POST', '/v1/endpoints', { token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } })).body as { id: string; secret: string };
  const newKey = randomBytes(32);
  const env = { ...process.env, NODE_OPTIONS: '', DATABASE_URL: h.dbUrl, SECRET_ENCRYPTION_KEYS: `${newKey.toString('base64')},${TEST_SECRET_KEYS}` };
  const run = () => promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/reencrypt-secrets.ts'], { env, cwd: `${__dirname}/../..` });
  const out = (await run()).stdout;
  expect(out).toMatch(/Done: \d+ endpoints, [1-9]\d* re-encrypted/);
  expect(out).not.toContain(ep.secret);
  expect((await rawEndpoints()).every((r) => r.secret.startsWith(`enc:v1:${keyId(newKey)}:`))).toBe(true);
  expect((await run()).stdout).toMatch(/Done: (\d+) endpoints, 0 re-encrypted, \1 already under the newest key/);
  useSecretKeyRing(keyRing([newKey]));
  expect((await h.call('GET', `/v1/endpoints/${ep.id}/secret`, { token: account.apiKey })).body.secret).toBe(ep.secret);
});
