import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '../../src/db/database';
import { spawnApp, type AppProcess } from '../helpers/appProcess';
import { freshDatabase } from '../helpers/db';
import { waitFor } from '../helpers/receiver';
import { freePorts, startTemporalCluster, temporalServerDir, type TemporalCluster } from '../helpers/temporalCluster';

/**
 * Endpoint-level coordination in the production shape: the official Temporal server on Postgres,
 * one API process and TWO worker processes on one application Postgres database, a receiver on
 * loopback in this process.
 *
 * 1. Outage: an endpoint answers 503 while 1,500 deliveries are published to it, then comes back.
 *    Proven: the dead endpoint gets a small, bounded number of requests (the first attempts in
 *    flight before the circuit opened, then one probe per interval), every delivery arrives,
 *    none twice; the drain rate is printed.
 * 2. Limits: an endpoint with rateLimitPerSecond 20 and maxInFlight 5 gets 400 deliveries through
 *    both workers. Proven: no second holds more than 21 requests, never more than 5 are open at
 *    once, both workers sent some, every delivery arrives once.
 *
 * Needs scripts/provision-temporal-server.sh (run by .ci/run); skipped locally without it.
 */
const ADMIN_TOKEN = `stack-admin-${randomBytes(8).toString('hex')}`;
const serverDir = temporalServerDir();
if (!serverDir && process.env.CI) throw new Error('CI must run the stack test: scripts/provision-temporal-server.sh did not provision the Temporal server');
if (!serverDir) console.warn('[stack] Temporal server not provisioned (scripts/provision-temporal-server.sh): skipping the endpoint outage stack test');
const describeStack = serverDir ? describe : describe.skip;

interface Hit {
  id: string;
  path: string;
  at: number;
  status: number;
}

describeStack('endpoint outage, recovery drain and send limits on two workers (Temporal server + Postgres)', () => {
  let cluster: TemporalCluster | undefined;
  let app: { db: Database; url?: string; drop(): Promise<void> } | undefined;
  let receiver: Server | undefined;
  let logDir: string;
  const processes: AppProcess[] = [];
  const hits: Hit[] = [];
  /** Per path: the status to answer and how long to wait first. */
  const behaviour = new Map<string, { status: number; delayMs: number }>();
  const open = new Map<string, number>();
  const mostOpen = new Map<string, number>();
  let apiBase = '';
  let workers: AppProcess[] = [];

  beforeAll(async () => {
    logDir = mkdtempSync(join(tmpdir(), 'rr-outage-'));
    [cluster, app] = await Promise.all([startTemporalCluster(), freshDatabase()]);
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const path = req.url!;
        const b = behaviour.get(path) ?? { status: 200, delayMs: 0 };
        hits.push({ id: String(req.headers['webhook-id']), path, at: Date.now(), status: b.status });
        open.set(path, (open.get(path) ?? 0) + 1);
        mostOpen.set(path, Math.max(mostOpen.get(path) ?? 0, open.get(path)!));
        setTimeout(() => {
          res.writeHead(b.status, { 'content-type': 'text/plain' });
          res.end('', () => open.set(path, open.get(path)! - 1));
        }, b.delayMs);
      });
    });
    receiver.keepAliveTimeout = 5_000;
    await new Promise<void>((ok) => receiver!.listen(0, '127.0.0.1', ok));

    const [apiPort, m1, m2] = await freePorts(3);
    const common = {
      DATABASE_URL: app!.url!,
      ADMIN_TOKEN,
      TEMPORAL_ADDRESS: cluster!.address,
      TEMPORAL_NAMESPACE: cluster!.namespace,
      TEMPORAL_TASK_QUEUE: `outage-${randomBytes(4).toString('hex')}`,
      HOST: '127.0.0.1',
      DESTINATION_ALLOW_CIDRS: '127.0.0.0/8',
      LOG_LEVEL: 'info',
      RETRY_INITIAL_INTERVAL: '1s',
      RETRY_BACKOFF_COEFFICIENT: '2',
      RETRY_JITTER: '0',
      CIRCUIT_PROBE_MAX_INTERVAL: '4s',
      ATTEMPT_TIMEOUT: '5s',
      DISPATCH_RECONCILE_INTERVAL: '2s',
    };
    const api = spawnApp('api', 'src/api-server.ts', { ...common, PORT: String(apiPort) }, logDir);
    workers = [m1, m2].map((port, i) => spawnApp(`worker-${i + 1}`, 'src/worker.ts', { ...common, PORT: '0', WORKER_METRICS_PORT: String(port) }, logDir));
    processes.push(api, ...workers);
    apiBase = `http://127.0.0.1:${apiPort}`;
    try {
      await Promise.all([
        waitFor(
          async () => {
            if (!api.alive()) throw new Error(`api exited during start-up; see ${api.logFile}`);
            return (
              (await fetch(`${apiBase}/healthz`).then(
                (r) => r.ok,
                () => false,
              )) || undefined
            );
          },
          'the API to answer /healthz',
          60_000,
          200,
        ),
        ...workers.map((w) => w.waitForLog('worker.running', 90_000)),
      ]);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${tails(processes)}`, { cause: err });
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop(3_000)));
    receiver?.closeAllConnections();
    await new Promise((ok) => (receiver ? receiver.close(ok) : ok(undefined)));
    await app?.drop().catch(() => undefined);
    await cluster?.stop();
    if (!process.env.KEEP_STACK_LOGS) rmSync(logDir, { recursive: true, force: true });
  }, 60_000);

  const call = async (method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const res = await fetch(apiBase + path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json().catch(() => undefined) };
  };
  async function endpoint(path: string, extra: Record<string, unknown> = {}) {
    const account = await call('POST', '/v1/accounts', ADMIN_TOKEN, { name: `Outage ${path}`, plan: 'paid' });
    const url = `http://127.0.0.1:${(receiver!.address() as AddressInfo).port}${path}`;
    const ep = await call('POST', '/v1/endpoints', account.body.apiKey, { url, eventTypes: ['referrer_added'], ...extra });
    expect(ep.status).toBe(201);
    return { accountId: account.body.id as string, apiKey: account.body.apiKey as string, endpointId: ep.body.id as string };
  }
  async function publish(accountId: string, n: number, concurrency = 16): Promise<string[]> {
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          const i = next++;
          const r = await call('POST', '/v1/events', ADMIN_TOKEN, {
            accountId,
            eventType: 'referrer_added',
            data: { participantId: i, email: `p${i}@example.com`, code: `c${i}`, campaignId: 'camp' },
          });
          if (r.status !== 202) throw new Error(`publish ${i}: ${r.status} ${JSON.stringify(r.body)}`);
          ids.push(r.body.deliveries[0].id);
        }
      }),
    );
    return ids;
  }
  const counts = async (endpointId: string) =>
    Object.fromEntries(
      (await app!.db.query<{ status: string; n: string }>('select status, count(*) as n from deliveries where endpoint_id = $1 group by status', [endpointId])).map((r) => [
        r.status,
        Number(r.n),
      ]),
    );

  test('when an endpoint is down while 1,500 deliveries are published and then comes back, then it gets few requests while down, and every delivery is drained to it exactly once', async () => {
    const N = 1_500;
    const path = '/down';
    behaviour.set(path, { status: 503, delayMs: 0 });
    const { accountId, endpointId } = await endpoint(path);
    const t0 = Date.now();
    const ids = await publish(accountId, N);
    console.log(`[outage] published ${N} in ${Date.now() - t0} ms`);
    // Down for 20 s after publishing ended.
    await new Promise((r) => setTimeout(r, 20_000));
    const downHits = hits.filter((h) => h.path === path);
    const health = (await app!.db.query<{ state: string }>('select state from endpoint_health where endpoint_id = $1', [endpointId]))[0];
    const tUp = Date.now();
    behaviour.set(path, { status: 200, delayMs: 0 });
    try {
      await waitFor(async () => ((await counts(endpointId)).delivered === N ? true : undefined), 'every delivery delivered', 240_000, 500);
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(await counts(endpointId))}\n${tails(processes)}`, { cause: err });
    }
    const ok = hits.filter((h) => h.path === path && h.status === 200);
    const firstOk = Math.min(...ok.map((h) => h.at));
    const lastOk = Math.max(...ok.map((h) => h.at));
    const perId = new Map<string, number>();
    for (const h of ok) perId.set(h.id, (perId.get(h.id) ?? 0) + 1);
    const duplicates = [...perId.values()].filter((n) => n > 1).length;
    const probesWhileDown = downHits.filter((h) => h.at > t0 + 5_000).length;
    console.log(
      `[outage] ${N} deliveries to a dead endpoint: ${downHits.length} requests while down for ${((tUp - t0) / 1000).toFixed(0)} s (${probesWhileDown} after the first 5 s), circuit ${health?.state}; ` +
        `back up: first 2xx ${firstOk - tUp} ms later, ${ok.length} delivered in ${((lastOk - firstOk) / 1000).toFixed(1)} s = ${Math.round(ok.length / Math.max(0.001, (lastOk - firstOk) / 1000))}/s, duplicates ${duplicates}`,
    );
    expect(ids).toHaveLength(N);
    expect(health?.state).toMatch(/open|probing/);
    // Without the breaker every delivery retries on its own: > 3 requests each in 20 s at a 1 s base interval.
    expect(downHits.length).toBeLessThan(N / 3);
    // After the first burst (batches in flight when the circuit opened), one probe at a time: 1, 2, 4, 4, 4… s apart.
    expect(probesWhileDown).toBeLessThanOrEqual(Math.ceil((tUp - t0) / 4_000) + 3);
    expect(perId.size).toBe(N);
    expect(duplicates).toBe(0);
    expect(firstOk - tUp).toBeLessThan(10_000);
  }, 420_000);

  test('when an endpoint limited to 20 requests per second and 5 in flight gets 400 deliveries through two workers, then no second holds more than 21, never more than 5 are open, and all arrive once', async () => {
    const N = 400;
    const path = '/limited';
    behaviour.set(path, { status: 200, delayMs: 80 });
    const { accountId, endpointId } = await endpoint(path, { rateLimitPerSecond: 20, maxInFlight: 5 });
    await publish(accountId, N);
    try {
      await waitFor(async () => ((await counts(endpointId)).delivered === N ? true : undefined), 'every delivery delivered', 120_000, 500);
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(await counts(endpointId))}\n${tails(processes)}`, { cause: err });
    }
    const mine = hits.filter((h) => h.path === path).sort((a, b) => a.at - b.at);
    let busiest = 0;
    for (let i = 0, j = 0; i < mine.length; i++) {
      while (mine[i].at - mine[j].at >= 1000) j++;
      busiest = Math.max(busiest, i - j + 1);
    }
    const seconds = (mine[mine.length - 1].at - mine[0].at) / 1000;
    const byWorker = workers.map((w) => w.lines.filter((l) => l.msg === 'delivery.attempted' && l.endpointId === endpointId).length);
    console.log(
      `[limits] ${mine.length} requests in ${seconds.toFixed(1)} s (${(mine.length / seconds).toFixed(1)}/s), busiest second ${busiest}, most open at once ${mostOpen.get(path)}, by worker ${byWorker.join(' / ')}`,
    );
    expect(new Set(mine.map((h) => h.id)).size).toBe(N);
    expect(mine).toHaveLength(N);
    expect(busiest).toBeLessThanOrEqual(21);
    expect(mostOpen.get(path)).toBeLessThanOrEqual(5);
    expect(seconds).toBeGreaterThanOrEqual((N - 21) / 20);
    expect(byWorker.every((n) => n > 0)).toBe(true);
  }, 240_000);
});

function tails(ps: AppProcess[]): string {
  return ps.map((p) => `--- ${p.name} (${p.alive() ? 'running' : 'exited'}) ---\n${tail(p.logFile, 15)}`).join('\n');
}
function tail(file: string, n: number): string {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .slice(-n - 1)
      .join('\n')
      .slice(-4_000);
  } catch {
    return '(no log)';
  }
}
