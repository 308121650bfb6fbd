/**
 * `npm run histories:record`: drives every path of every workflow through the running service
 * and writes each workflow's history to test/workflows/histories/<path>.json, for the replay
 * test (test/workflows/replay.test.ts).
 *
 * Everything is real: the Temporal dev server (the pinned `temporal` CLI in .tools/, i.e. the
 * real server, not the time-skipping test server), the delivery worker with today's workflow
 * code, the Koa API driven over HTTP, PGlite, and a loopback receiver that answers as each path
 * needs. Only the retry schedule is compressed (1 s × 2ⁿ, a 30 s window) so a recording takes
 * about a minute: durations are arguments of commands, not commands, so the histories exercise
 * the same command sequences as with the defaults.
 *
 * Re-record when a workflow's command sequence changed on purpose AND no execution recorded
 * under the old code can still be running (see README, "Changing workflow code").
 */
import { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { createApp } from '../src/api/app';
import { destinationGuard, webhookSender } from '../src/bootstrap';
import { loadConfig } from '../src/config';
import { openPglite } from '../src/db/database';
import { migrate } from '../src/db/migrations';
import { openSecret, useSecretKeyRing } from '../src/db/endpointSecrets';
import { keyRing } from '../src/domain/secretBox';
import { silentLogger } from '../src/logger';
import { Registry } from '../src/metrics';
import { Dispatcher } from '../src/services/dispatcher';
import { devServerExecutable, TEMPORAL_CLI_VERSION } from '../src/temporal/binaries';
import { ensureRetentionSchedule, RETENTION_SCHEDULE_ID } from '../src/temporal/retentionSchedule';
import { installTemporalRuntime } from '../src/temporal/runtime';
import { createDeliveryWorker } from '../src/temporal/worker';
import { DELIVERY_SEARCH_ATTRIBUTES } from '../src/workflows/searchAttributes';
import { historyToJson, readableText } from '../test/helpers/historyJson';

const OUT_DIR = resolve(__dirname, '..', 'test', 'workflows', 'histories');
const DAY = 86_400_000;

/** What each recorded path is; the replay test expects exactly these files. */
const PATHS = {
  'batch-delivered': 'deliverBatch: every first attempt answered 200, nothing handed over (one local activity)',
  'batch-handover': 'deliverBatch: 200, 503 and 410 in one batch; the 503 is handed over to its retry workflow (postBatch + startRetries local activities)',
  'batch-cancelled': 'deliverBatch cancelled (as from the Web UI) while its first attempts are in flight: it does not honour it, finishes and hands the 503 over',
  'retry-delivered': 'deliverWebhook started by a batch hand-over: first back-off timer, the retry activity fails (503) then succeeds server-side',
  undeliverable: 'deliverWebhook started by a hand-over: every attempt 500 until the delivery window closes (schedule-to-close timeout) → recordOutcome undeliverable',
  cancelled: 'deliverWebhook started by a hand-over: the endpoint is deleted through the API mid-retry → workflow cancelled, activity cancel requested, recordOutcome cancelled',
  superseded: 'deliverWebhook started directly (what the reconciler does) while a batch holds the claim: its first attempt finds the delivery owned by the batch → superseded',
  'gone-410': 'deliverWebhook started by a hand-over: the retry answers 410 Gone → non-retryable, recordOutcome undeliverable and the endpoint disabled',
  resend: 'deliverWebhook of a resend (POST /v1/deliveries/:id/resend, series 2): first attempt as a local activity, answered 200',
  'resend-retried': 'deliverWebhook of a resend: the local first attempt fails (503), back-off timer, the retry activity succeeds',
  'resend-gone': 'deliverWebhook of a resend whose local first attempt answers 410 Gone: no retry; recordOutcome undeliverable, endpoint disabled',
  purge: 'purgeOldData started by the retention Schedule (triggered): purges backdated attempt logs and payloads in one batch',
  'drain-recovered':
    "drainEndpoint started (signalWithStart, wake circuit-opened) when five first attempts answered 503 (Retry-After 15 s) open the endpoint's circuit: the drain is the prober (drain page, timer until the probe is due); the receiver comes back, the probe succeeds once the endpoint's Retry-After pause is over and the drain pages through what is still parked (the retries, due at the same moment, usually sent it)",
  'drain-retry-now':
    'drainEndpoint started by POST /v1/endpoints/:id/retry (wake retry-endpoint, forceProbe) after the customer fixed the receiver, circuit closed: a drain page sends the delivery its retry workflow parked for 15 s (Retry-After), the drain ends',
} as const;
export type RecordedPath = keyof typeof PATHS;

/** Answers per endpoint path: the n-th request to a path gets replies[n-1] (the last one repeats). */
const SCRIPTS: Record<string, { status: number; delayMs?: number; retryAfter?: string }[]> = {
  '/ok': [{ status: 200 }],
  '/flaky': [{ status: 503 }, { status: 503 }, { status: 200 }],
  '/gone': [{ status: 410 }],
  '/gone-later': [{ status: 503 }, { status: 410 }],
  '/down': [{ status: 500 }],
  '/down-then-deleted': [{ status: 500 }],
  '/slow': [{ status: 200, delayMs: 3_000 }],
  '/slow-ok': [{ status: 200, delayMs: 1_500 }],
  '/slow-failing': [{ status: 503, delayMs: 1_500 }, { status: 200 }],
  '/resend': [{ status: 200 }],
  '/resend-retried': [{ status: 200 }, { status: 503 }, { status: 200 }],
  '/resend-gone': [{ status: 200 }, { status: 410 }],
  // Down for maintenance, "come back in 15 s": the retries wait longer than the drain's 5 s margin,
  // so the drain (not the retry workflows) is the one to send them once the receiver is back.
  '/drain-recovered': [{ status: 503, retryAfter: '15' }],
  '/drain-retry-now': [{ status: 503, retryAfter: '15' }],
};
/** A receiver path that came back: answers this status from now on, whatever its script says. */
const RECOVERED = new Map<string, number>();
/** Stops the dev server: a failed recording must not leave it running. */
let stopDevServer: () => Promise<void> = async () => {};

async function main() {
  const started = Date.now();
  installTemporalRuntime({ level: 'ERROR' });
  const adminToken = `admin_${randomBytes(16).toString('hex')}`;
  const cfg = loadConfig({
    ADMIN_TOKEN: adminToken,
    DESTINATION_ALLOW_CIDRS: '127.0.0.0/8',
    RETRY_INITIAL_INTERVAL: '1s',
    RETRY_BACKOFF_COEFFICIENT: '2',
    RETRY_MAXIMUM_INTERVAL: '4s',
    RETRY_JITTER: '0',
    // 30 s: drain-recovered's receiver pauses the whole endpoint for its Retry-After (15 s) before the probe.
    DELIVERY_WINDOW: '30s',
    ATTEMPT_TIMEOUT: '5s',
    RETENTION: '30d',
    // The circuit breaker keeps its default CIRCUIT_OPEN_AFTER (5), so the paths above are not
    // reshaped by it; probes of an open circuit at most 3 s apart keep the drain paths short.
    CIRCUIT_PROBE_MAX_INTERVAL: '3s',
  });

  // The receiver: counts requests per path and answers from its script.
  const counts = new Map<string, number>();
  const onRequest = new Map<string, (n: number) => void>();
  const receiver: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = req.url ?? '/';
      const n = (counts.get(path) ?? 0) + 1;
      counts.set(path, n);
      const script = SCRIPTS[path] ?? [{ status: 404 }];
      const reply = RECOVERED.has(path) ? { status: RECOVERED.get(path)!, delayMs: 0, retryAfter: undefined } : script[Math.min(n, script.length) - 1];
      onRequest.get(path)?.(n);
      setTimeout(
        () => res.writeHead(reply.status, { 'content-type': 'text/plain', ...(reply.retryAfter ? { 'retry-after': reply.retryAfter } : {}) }).end('recorded'),
        reply.delayMs ?? 0,
      );
    });
  });
  await new Promise<void>((ok) => receiver.listen(0, '127.0.0.1', ok));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  console.log(`starting the Temporal dev server (temporal ${TEMPORAL_CLI_VERSION}) …`);
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: devServerExecutable(),
      ip: '127.0.0.1',
      ui: false,
      namespace: cfg.TEMPORAL_NAMESPACE,
      searchAttributes: DELIVERY_SEARCH_ATTRIBUTES,
      log: { format: 'pretty', level: 'error' },
    },
  });
  stopDevServer = () => env.teardown();
  useSecretKeyRing(keyRing([randomBytes(32)]));
  const db = await openPglite(undefined);
  await migrate(db);
  // As in `npm start`: the client shares the worker's connection and starts eagerly.
  const client = new Client({ connection: env.nativeConnection, namespace: cfg.TEMPORAL_NAMESPACE });
  const dispatcher = new Dispatcher(client, db, cfg, silentLogger, { eagerStart: true });
  const guard = destinationGuard(cfg);
  const sender = webhookSender(cfg, guard);
  console.log("bundling today's workflow code and starting the worker …");
  const worker = await createDeliveryWorker({
    connection: env.nativeConnection,
    cfg,
    activityDeps: {
      db,
      send: sender.send,
      log: silentLogger,
      autoDisableAfterMs: cfg.AUTO_DISABLE_AFTER,
      startRetryWorkflows: (r) => dispatcher.startRetryWorkflows(r),
      wakeDrain: (r) => dispatcher.wakeDrain(r),
    },
  });
  const workerRun = worker.run();
  const app = createApp({ cfg, db, dispatcher, guard, log: silentLogger, metrics: new Registry(), adminToken, temporalReady: async () => true });
  const api: Server = await new Promise((ok) => {
    const s = app.listen(0, '127.0.0.1', () => ok(s));
  });
  const apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;

  const apiKeys: string[] = [];
  async function call(method: string, path: string, token: string, body?: unknown): Promise<any> {
    const res = await fetch(apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }
  /** A paid account with one endpoint per receiver path, made through the API. */
  async function account(paths: string[]) {
    const acc = await call('POST', '/v1/accounts', adminToken, { name: `recording ${paths.join(' ')}`, plan: 'paid' });
    const endpoints: Record<string, string> = {};
    for (const p of paths) endpoints[p] = (await call('POST', '/v1/endpoints', acc.apiKey, { url: receiverUrl + p, eventTypes: ['referrer_added'] })).id;
    apiKeys.push(acc.apiKey);
    return { id: acc.id as string, apiKey: acc.apiKey as string, endpoints };
  }
  const participant = { participantId: 1, email: 'p1@example.com', code: 'code1', campaignId: 'PMf8BDZ1zb', rewardCurrency: 'USD', createdOn: '2025-02-09T03:00:28.002+00:00' };
  /** Publishes one event through the API; returns delivery id per endpoint path. */
  async function publish(acc: Awaited<ReturnType<typeof account>>): Promise<Record<string, string>> {
    const pub = await call('POST', '/v1/events', adminToken, { accountId: acc.id, eventType: 'referrer_added', data: participant });
    const byEndpoint = Object.fromEntries(Object.entries(acc.endpoints).map(([p, id]) => [id, p]));
    return Object.fromEntries((pub.deliveries as { id: string; endpointId: string }[]).map((d) => [byEndpoint[d.endpointId], d.id]));
  }
  const row = async (deliveryId: string) =>
    (await db.query<{ status: string; workflow_id: string; series: number }>('select status, workflow_id, series from deliveries where id = $1', [deliveryId]))[0];
  /** The whole row but the payload, with the database's clock: what a failed path prints. */
  const fullRow = async (deliveryId: string) => (await db.query(`select to_jsonb(d) - 'payload' as row, now() as now from deliveries d where id = $1`, [deliveryId]))[0];
  const finished = async (deliveryId: string, timeoutMs = 60_000) => {
    for (const until = Date.now() + timeoutMs; Date.now() < until; await sleep(100)) {
      const r = await row(deliveryId);
      if (r && r.status !== 'pending') return r;
    }
    throw new Error(`delivery ${deliveryId} did not finish`);
  };
  /** The workflow's result, once it exists (a hand-over is recorded in the database before the workflow starts). */
  const result = async (workflowId: string) => {
    const handle = client.workflow.getHandle(workflowId);
    for (
      let i = 0;
      i < 100 &&
      !(await handle.describe().then(
        () => true,
        () => false,
      ));
      i++
    )
      await sleep(100);
    return handle.result();
  };

  const recorded: { path: RecordedPath; workflowId: string }[] = [];
  const expectStatus = async (path: RecordedPath, workflowId: string, status: string) => {
    const r = (await result(workflowId)) as { status?: string };
    if (r.status !== status) throw new Error(`${path}: ${workflowId} ended ${JSON.stringify(r)}, expected ${status}`);
    recorded.push({ path, workflowId });
  };

  console.log('driving every path …');
  await Promise.all([
    (async () => {
      // batch-delivered, then resend (series 2, direct start) of one of its deliveries.
      const acc = await account(['/ok', '/resend']);
      const ids = await publish(acc);
      const batchId = (await finished(ids['/ok'])).workflow_id;
      await result(batchId);
      await finished(ids['/resend']);
      recorded.push({ path: 'batch-delivered', workflowId: batchId });
      await call('POST', `/v1/deliveries/${ids['/resend']}/resend`, acc.apiKey);
      await expectStatus('resend', `delivery-${ids['/resend']}-2`, 'delivered');
    })(),
    (async () => {
      // batch-handover (200 + 503 + 410 in one batch) and the retry workflow of the 503.
      const acc = await account(['/ok', '/flaky', '/gone']);
      const ids = await publish(acc);
      const batchId = (await finished(ids['/ok'])).workflow_id;
      await result(batchId);
      recorded.push({ path: 'batch-handover', workflowId: batchId });
      await expectStatus('retry-delivered', `delivery-${ids['/flaky']}`, 'delivered');
    })(),
    (async () => {
      // A batch cancelled mid-flight (an operator in the Web UI): it finishes and hands over anyway.
      const acc = await account(['/slow-ok', '/slow-failing']);
      const ids = await publish(acc);
      for (let i = 0; i < 100 && !(counts.get('/slow-ok') && counts.get('/slow-failing')); i++) await sleep(50);
      const batchId = (await row(ids['/slow-ok'])).workflow_id;
      await client.workflow.getHandle(batchId).cancel();
      // (The cancellation may make the local activity run again: that run finds one delivered, one handed over.)
      const r = (await result(batchId)) as { delivered: number; skipped: number; retrying: number };
      if (r.delivered + r.skipped !== 1 || r.retrying !== 1) throw new Error(`batch-cancelled: ${JSON.stringify(r)}`);
      recorded.push({ path: 'batch-cancelled', workflowId: batchId });
      await result(`delivery-${ids['/slow-failing']}`);
    })(),
    (async () => {
      const acc = await account(['/gone-later']);
      const ids = await publish(acc);
      await expectStatus('gone-410', await handedOver(ids['/gone-later']), 'undeliverable');
    })(),
    (async () => {
      const acc = await account(['/down']);
      const ids = await publish(acc);
      await expectStatus('undeliverable', await handedOver(ids['/down']), 'undeliverable');
    })(),
    (async () => {
      // DELETE /v1/endpoints/:id after the third failed attempt, while the retry activity backs off.
      const acc = await account(['/down-then-deleted']);
      let deletion: Promise<unknown> | undefined;
      onRequest.set('/down-then-deleted', (n) => {
        if (n === 3) deletion = sleep(200).then(() => call('DELETE', `/v1/endpoints/${acc.endpoints['/down-then-deleted']}`, acc.apiKey));
      });
      const ids = await publish(acc);
      await expectStatus('cancelled', await handedOver(ids['/down-then-deleted']), 'cancelled');
      await deletion;
    })(),
    (async () => {
      // The reconciler's start of a delivery whose batch is still sending it (slow receiver).
      const acc = await account(['/slow']);
      const ids = await publish(acc);
      for (let i = 0; i < 100 && !counts.get('/slow'); i++) await sleep(50);
      await dispatcher.dispatch({ id: ids['/slow'], series: 1 });
      await expectStatus('superseded', `delivery-${ids['/slow']}`, 'superseded');
      await finished(ids['/slow']);
    })(),
    (async () => {
      // resend-gone: delivered at once, resent, the resend's first attempt answers 410.
      const acc = await account(['/resend-gone']);
      const ids = await publish(acc);
      await finished(ids['/resend-gone']);
      await call('POST', `/v1/deliveries/${ids['/resend-gone']}/resend`, acc.apiKey);
      await expectStatus('resend-gone', `delivery-${ids['/resend-gone']}-2`, 'undeliverable');
    })(),
    (async () => {
      // resend-retried: delivered at once, resent, the resend's first attempt fails.
      const acc = await account(['/resend-retried']);
      const ids = await publish(acc);
      await finished(ids['/resend-retried']);
      await call('POST', `/v1/deliveries/${ids['/resend-retried']}/resend`, acc.apiKey);
      await expectStatus('resend-retried', `delivery-${ids['/resend-retried']}-2`, 'delivered');
    })(),
    (async () => {
      // drain-recovered: five deliveries to a receiver down for maintenance (503, Retry-After 15 s);
      // their first attempts (5 failures = CIRCUIT_OPEN_AFTER) open the circuit, which starts the
      // drain as the endpoint's prober. Once the drain runs, the receiver comes back; the next probe
      // succeeds and the drain pages through the deliveries still parked.
      const acc = await account(['/drain-recovered']);
      const endpointId = acc.endpoints['/drain-recovered'];
      const deliveries: string[] = [];
      for (let i = 0; i < 5; i++) deliveries.push((await publish(acc))['/drain-recovered']);
      const drainId = `drain-${endpointId}`;
      const handle = client.workflow.getHandle(drainId);
      for (
        let i = 0;
        i < 600 &&
        !(await handle.describe().then(
          () => true,
          () => false,
        ));
        i++
      )
        await sleep(100);
      RECOVERED.set('/drain-recovered', 200);
      const r = (await handle.result()) as { pages: number; delivered: number; failed: number };
      for (const d of deliveries) if ((await finished(d)).status !== 'delivered') throw new Error(`drain-recovered: ${d} not delivered: ${JSON.stringify(await fullRow(d))}`);
      // The receiver's Retry-After pauses the whole endpoint, the probe included, until the deliveries'
      // own retries are due as well: with this compressed schedule those usually send them, and the
      // drain's pages find nothing parked (a drain that sends is recorded by drain-retry-now).
      if (r.pages < 1) throw new Error(`drain-recovered: the drain paged nothing: ${JSON.stringify(r)}`);
      console.log(`  drain-recovered: ${JSON.stringify(r)}`);
      recorded.push({ path: 'drain-recovered', workflowId: drainId });
      for (const d of deliveries) await result(`delivery-${d}`);
    })(),
    (async () => {
      // drain-retry-now: the delivery's first attempt answers 503 with Retry-After 15 s (1 failure:
      // the circuit stays closed) and it is handed over to its retry workflow; the customer fixes
      // the receiver and calls retry-now on the endpoint. The drain sends it; its retry workflow
      // wakes later to find it delivered.
      const acc = await account(['/drain-retry-now']);
      const endpointId = acc.endpoints['/drain-retry-now'];
      const ids = await publish(acc);
      await handedOver(ids['/drain-retry-now']);
      RECOVERED.set('/drain-retry-now', 200);
      await call('POST', `/v1/endpoints/${endpointId}/retry`, acc.apiKey);
      const drainId = `drain-${endpointId}`;
      const r = (await result(drainId)) as { pages: number; delivered: number; failed: number };
      if (r.delivered !== 1)
        throw new Error(`drain-retry-now: ${JSON.stringify(r)}, expected the drain to deliver 1; the delivery: ${JSON.stringify(await fullRow(ids['/drain-retry-now']))}`);
      console.log(`  drain-retry-now: ${JSON.stringify(r)}`);
      recorded.push({ path: 'drain-retry-now', workflowId: drainId });
      await result(`delivery-${ids['/drain-retry-now']}`);
    })(),
  ]);

  // purge: what the retention Schedule runs, on data made older than the retention.
  await db.query(`update delivery_attempts set started_at = started_at - interval '40 days'`);
  await db.query(`update events set created_at = created_at - interval '40 days'`);
  await ensureRetentionSchedule(client, { ...cfg, RETENTION_PURGE_INTERVAL: 365 * DAY });
  const schedule = client.schedule.getHandle(RETENTION_SCHEDULE_ID);
  await schedule.trigger();
  let purgeId: string | undefined;
  for (let i = 0; i < 100 && !purgeId; i++, await sleep(100)) purgeId = (await schedule.describe()).info.recentActions[0]?.action.workflow.workflowId;
  if (!purgeId) throw new Error('the retention Schedule did not start a purge');
  const purged = (await result(purgeId)) as { attempts: number; payloads: number };
  if (!purged.attempts || !purged.payloads) throw new Error(`the purge purged nothing: ${JSON.stringify(purged)}`);
  recorded.push({ path: 'purge', workflowId: purgeId });

  // Export.
  mkdirSync(OUT_DIR, { recursive: true });
  if (process.argv.includes('--archive')) archivePrevious();
  for (const f of readdirSync(OUT_DIR)) if (f.endsWith('.json')) rmSync(join(OUT_DIR, f));
  const secrets = [
    adminToken,
    ...apiKeys,
    ...(await db.query<{ id: string; secret: string; previous_secret: string | null }>('select id, secret, previous_secret from endpoints')).flatMap((s) => [
      s.secret,
      openSecret(s.id, s.secret),
      openSecret(s.id, s.previous_secret) ?? '',
    ]),
  ];
  const manifest: Record<string, { workflowId: string; workflowType: string; what: string }> = {};
  for (const { path, workflowId } of recorded.sort((a, b) => a.path.localeCompare(b.path))) {
    const handle = client.workflow.getHandle(workflowId);
    const history = await handle.fetchHistory();
    const json = historyToJson(history);
    const text = readableText(json);
    for (const s of secrets) if (s && text.includes(s)) throw new Error(`${path}: the history contains a secret`);
    if (/whsec_|rrk_/.test(text)) throw new Error(`${path}: the history contains a signing secret or an API key`);
    writeFileSync(join(OUT_DIR, `${path}.json`), json);
    const workflowType = (await handle.describe()).type;
    manifest[path] = { workflowId, workflowType, what: PATHS[path] };
    console.log(`  ${path}.json  ${workflowType}  ${history.events?.length} events`);
  }
  const missing = Object.keys(PATHS).filter((p) => !manifest[p]);
  if (missing.length) throw new Error(`not recorded: ${missing.join(', ')}`);
  writeFileSync(
    join(OUT_DIR, 'manifest.json'),
    JSON.stringify(
      {
        recordedWith: {
          at: new Date().toISOString().slice(0, 10),
          commit: gitCommit(),
          temporalCli: TEMPORAL_CLI_VERSION,
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          sdk: require('@temporalio/worker/package.json').version,
        },
        histories: manifest,
      },
      null,
      2,
    ) + '\n',
  );

  await schedule.delete();
  api.close();
  worker.shutdown();
  await workerRun;
  sender.close();
  receiver.close();
  await db.close();
  await env.teardown();
  console.log(`recorded ${recorded.length} histories into ${OUT_DIR} in ${((Date.now() - started) / 1000).toFixed(0)} s`);

  /** Waits for a batch to hand a delivery over; returns the retry workflow's id. */
  async function handedOver(deliveryId: string): Promise<string> {
    for (let i = 0; i < 300; i++, await sleep(100)) {
      const r = await row(deliveryId);
      if (r?.workflow_id?.startsWith('delivery-')) return r.workflow_id;
    }
    throw new Error(`delivery ${deliveryId} was not handed over`);
  }
}

/**
 * `--archive`: the recordings being replaced move to histories/archive/<date>-<commit>/, where the
 * replay test keeps replaying them. Use it when the command sequence changed (behind patched()):
 * executions of the old build may run for another DELIVERY_WINDOW, so their histories stay until
 * they are older than that (README, "Changing workflow code").
 */
function archivePrevious(): void {
  const manifestPath = join(OUT_DIR, 'manifest.json');
  if (!existsSync(manifestPath)) return;
  const { recordedWith } = JSON.parse(readFileSync(manifestPath, 'utf8')) as { recordedWith: { at?: string; commit: string } };
  const dest = join(OUT_DIR, 'archive', `${recordedWith.at ?? 'undated'}-${recordedWith.commit}`);
  mkdirSync(dest, { recursive: true });
  for (const f of readdirSync(OUT_DIR)) if (f.endsWith('.json')) renameSync(join(OUT_DIR, f), join(dest, f));
  console.log(`previous recordings kept in ${dest}`);
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (require.main === module) {
  main().catch(async (err) => {
    console.error(err);
    await Promise.race([stopDevServer().catch(() => undefined), sleep(10_000)]);
    process.exit(1);
  });
}
