/**
 * `npm run bench`: end-to-end throughput and latency of the embedded default (`npm start`:
 * dev server + worker + API + PGlite, one process plus the Temporal server), the physical
 * baseline of this machine, and the cost of an outage. Prints a Markdown table and writes
 * results.json, results.md and latency.svg to bench-results/<timestamp>/.
 *
 * BENCH_EVENTS (default 1000) events per fan-out; BENCH_FANOUTS (default "1,5,20") endpoints per
 * account; BENCH_CONCURRENCY (default 32) publishers in flight; BENCH_OUTAGE (default "1000,10000")
 * deliveries held in back-off; BENCH_SKIP_OUTAGE=1 to skip that part.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { signatureHeaders } from '../src/domain/signing';
import { BenchReceiver, childPids, cpuSeconds, latencySvg, percentile, pool, rssMiB, spawnMain, waitUntil } from './lib';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1000);
const FANOUTS = process.env.BENCH_FANOUTS === 'none' ? [] : (process.env.BENCH_FANOUTS ?? '1,5,20').split(',').map(Number);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const OUTAGE = (process.env.BENCH_OUTAGE ?? '1000,10000').split(',').map(Number);
const ADMIN = `bench_${randomBytes(12).toString('hex')}`;
/** Events per second to offer (paced publishing, for latency below saturation); unset = as fast as possible. */
const RATE = process.env.BENCH_RATE ? Number(process.env.BENCH_RATE) : undefined;

interface Service {
  api: string;
  pid: number;
  temporalPid: () => number | undefined;
  stop(): Promise<void>;
}

let portBase = 41000 + Math.floor(Math.random() * 2000) * 3;
async function startService(extraEnv: Record<string, string> = {}): Promise<Service> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rr-bench-'));
  const [port, tport, uport] = [portBase, portBase + 1, portBase + 2];
  portBase += 3;
  const child = spawnMain({ DATA_DIR: dataDir, PORT: String(port), TEMPORAL_DEV_PORT: String(tport), TEMPORAL_UI_PORT: String(uport), ADMIN_TOKEN: ADMIN, LOG_LEVEL: 'warn', ...extraEnv });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c));
  await waitUntil(() => out.includes('Webhook delivery service is running'), 120_000, 'the service to start');
  return {
    api: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    temporalPid: () => childPids(child.pid!, 'start-dev')[0],
    async stop() {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
function post(url: string, body: unknown, token: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, json: chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function accountWithEndpoints(svc: Service, url: string, n: number): Promise<string> {
  const acc = await post(`${svc.api}/v1/accounts`, { name: `bench ${n}`, plan: 'paid' }, ADMIN);
  for (let i = 0; i < n; i++) {
    const ep = await post(`${svc.api}/v1/endpoints`, { url: `${url}?ep=${i}`, eventTypes: ['referrer_added'] }, acc.json.apiKey);
    if (ep.status !== 201) throw new Error(`endpoint: ${ep.status} ${JSON.stringify(ep.json)}`);
  }
  return acc.json.id;
}

const event = (accountId: string, i: number) => ({ accountId, eventType: 'referrer_added', data: { participantId: i, email: `p${i}@example.com`, code: `c${i}`, campaignId: 'bench' } });

async function throughput(svc: Service, receiver: BenchReceiver, url: string, fanout: number) {
  const accountId = await accountWithEndpoints(svc, url, fanout);
  receiver.reset();
  const expected = EVENTS * fanout;
  const publishMs: number[] = [];
  const cpu0 = { main: cpuSeconds(svc.pid), temporal: cpuSeconds(svc.temporalPid()!) };
  const started = Date.now();
  await pool([...Array(EVENTS).keys()], CONCURRENCY, async (i) => {
    if (RATE) await new Promise((r) => setTimeout(r, Math.max(0, started + (i * 1000) / RATE - Date.now())));
    const t = performance.now();
    const res = await post(`${svc.api}/v1/events`, event(accountId, i), ADMIN);
    publishMs.push(performance.now() - t);
    if (res.status !== 202) throw new Error(`publish: ${res.status} ${JSON.stringify(res.json)}`);
  });
  const publishedAt = Date.now();
  await waitUntil(() => receiver.firstSeen.size >= expected, 30 * 60_000, `${expected} deliveries`);
  const seconds = (Math.max(...[...receiver.firstSeen.values()].map((v) => v.at)) - started) / 1000;
  const cpu = { main: cpuSeconds(svc.pid) - cpu0.main, temporal: cpuSeconds(svc.temporalPid()!) - cpu0.temporal };
  const latencies = [...receiver.firstSeen.values()].map((v) => v.latencyMs).sort((a, b) => a - b);
  publishMs.sort((a, b) => a - b);
  return {
    fanout,
    events: EVENTS,
    deliveries: expected,
    seconds,
    deliveriesPerSecond: expected / seconds,
    publishSeconds: (publishedAt - started) / 1000,
    latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99), max: latencies[latencies.length - 1] },
    publishLatencyMs: { p50: percentile(publishMs, 50), p95: percentile(publishMs, 95), p99: percentile(publishMs, 99) },
    cpuSecondsPer1000: { apiWorkerDb: (cpu.main / expected) * 1000, temporal: (cpu.temporal / expected) * 1000 },
    duplicates: receiver.requests - expected,
    sortedLatencies: latencies,
  };
}

/** The physical limit: the same signed POSTs straight from one Node process to the receiver. */
async function baseline(receiver: BenchReceiver, url: string, count: number) {
  receiver.reset();
  const secret = 'whsec_' + randomBytes(24).toString('base64');
  const body = JSON.stringify({ eventType: 'referrer_added', data: event('acc', 1).data, createdAt: Date.now(), updatedAt: Date.now() });
  const cpu0 = process.cpuUsage();
  const started = Date.now();
  await pool([...Array(count).keys()], CONCURRENCY, (i) =>
    new Promise<void>((resolve, reject) => {
      const headers = { 'content-type': 'application/json', ...signatureHeaders([secret], `base_${i}`, Math.floor(Date.now() / 1000), body) };
      const req = http.request(url, { method: 'POST', agent, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end(body);
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { deliveries: count, seconds, deliveriesPerSecond: count / seconds, cpuSecondsPer1000: ((cpu.user + cpu.system) / 1e6 / count) * 1000 };
}

/** Deliveries held in back-off while the receiver is down: memory, then time to drain. */
async function outage(receiver: BenchReceiver, url: string) {
  const svc = await startService({ RETRY_INITIAL_INTERVAL: '20s', RETRY_BACKOFF_COEFFICIENT: '1', RETRY_JITTER: '0' });
  const rows = [];
  try {
    const accountId = await accountWithEndpoints(svc, url, 10);
    receiver.reset();
    receiver.status = 503;
    let published = 0;
    for (const target of OUTAGE) {
      const events = Math.ceil(target / 10) - published;
      await pool([...Array(events).keys()], CONCURRENCY, async (i) => {
        await post(`${svc.api}/v1/events`, event(accountId, published + i), ADMIN);
      });
      published += events;
      await waitUntil(() => receiver.requests >= published * 10, 10 * 60_000, 'every delivery to fail once');
      await new Promise((r) => setTimeout(r, 3_000));
      rows.push({ waiting: published * 10, rssMiB: { apiWorkerDb: rssMiB(svc.pid), temporal: rssMiB(svc.temporalPid()!) } });
    }
    receiver.status = 200;
    receiver.reset();
    const back = Date.now();
    await waitUntil(() => receiver.firstSeen.size >= published * 10, 20 * 60_000, 'the backlog to drain');
    return { rows, drained: published * 10, drainSeconds: (Date.now() - back) / 1000, retryIntervalSeconds: 20 };
  } finally {
    receiver.status = 200;
    await svc.stop();
  }
}

async function main() {
  const receiver = new BenchReceiver();
  const url = await receiver.start();
  const svc = await startService();
  const runs = [];
  try {
    if (FANOUTS.length) await throughput(svc, receiver, url, 1).catch(() => undefined); // warm-up: bundle, JIT, connections
    for (const f of FANOUTS) {
      const r = await throughput(svc, receiver, url, f);
      runs.push(r);
      console.log(`fan-out ${f}: ${r.deliveries} deliveries in ${r.seconds.toFixed(1)} s = ${r.deliveriesPerSecond.toFixed(0)}/s; p50/p95/p99 ${r.latencyMs.p50}/${r.latencyMs.p95}/${r.latencyMs.p99} ms`);
    }
  } finally {
    await svc.stop();
  }
  const base = await baseline(receiver, url, Math.max(1000, ...runs.map((r) => r.deliveries)));
  console.log(`baseline: ${base.deliveriesPerSecond.toFixed(0)}/s`);
  const out = process.env.BENCH_SKIP_OUTAGE ? undefined : await outage(receiver, url);
  await receiver.stop();

  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString() };
  const md = [
    `Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, Node ${machine.node}; ${machine.date}`,
    `Command: BENCH_EVENTS=${EVENTS} BENCH_CONCURRENCY=${CONCURRENCY}${RATE ? ` BENCH_RATE=${RATE}` : ''} npm run bench (embedded default: dev server + worker + API + PGlite)`,
    '',
    '| endpoints/event | deliveries | deliveries/s | publish→receipt p50 / p95 / p99 (ms) | publish API p50 / p99 (ms) | CPU s per 1,000 (API+worker+DB / Temporal) |',
    '|---|---|---|---|---|---|',
    ...runs.map((r) => `| ${r.fanout} | ${r.deliveries} | ${r.deliveriesPerSecond.toFixed(0)} | ${r.latencyMs.p50} / ${r.latencyMs.p95} / ${r.latencyMs.p99} | ${r.publishLatencyMs.p50.toFixed(1)} / ${r.publishLatencyMs.p99.toFixed(1)} | ${r.cpuSecondsPer1000.apiWorkerDb.toFixed(2)} / ${r.cpuSecondsPer1000.temporal.toFixed(2)} |`),
    `| baseline (direct signed POSTs, one process) | ${base.deliveries} | ${base.deliveriesPerSecond.toFixed(0)} | – | – | ${base.cpuSecondsPer1000.toFixed(2)} |`,
    '',
    ...(runs.length ? [`Service / baseline ratio (best fan-out): ${(Math.max(...runs.map((r) => r.deliveriesPerSecond)) / base.deliveriesPerSecond).toFixed(3)}. Duplicate requests: ${runs.map((r) => r.duplicates).join(', ')}.`] : []),
    ...(out
      ? ['', '| deliveries waiting in back-off | RSS API+worker+DB (MiB) | RSS Temporal (MiB) |', '|---|---|---|', ...out.rows.map((r) => `| ${r.waiting} | ${r.rssMiB.apiWorkerDb.toFixed(0)} | ${r.rssMiB.temporal.toFixed(0)} |`), '', `Drain of ${out.drained} after the receiver came back: ${out.drainSeconds.toFixed(1)} s (retry interval ${out.retryIntervalSeconds} s).`]
      : []),
  ].join('\n');
  const dir = join('bench-results', new Date().toISOString().replace(/[:.]/g, '-'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'results.md'), md + '\n');
  writeFileSync(join(dir, 'results.json'), JSON.stringify({ machine, runs: runs.map(({ sortedLatencies, ...r }) => r), baseline: base, outage: out }, null, 2));
  writeFileSync(join(dir, 'latency.svg'), latencySvg(runs.map((r) => ({ name: `${r.fanout} endpoint(s)/event`, sortedMs: r.sortedLatencies }))));
  console.log('\n' + md + `\n\nWritten to ${dir}/`);
  agent.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
