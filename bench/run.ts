/**
 * `npm run bench`: end-to-end throughput and latency of the embedded default (`npm start`: dev
 * server + one process with worker and API, run from the compiled build, + its Postgres server) and of the Postgres-backed stack (Temporal
 * server on Postgres, separate API and worker processes), the physical baseline of this
 * machine, and the cost of an outage. Prints Markdown tables and writes results.json,
 * results.md and latency.svg to bench-results/<timestamp>/.
 *
 * BENCH_STACKS (default "embedded,postgres"); BENCH_EVENTS (default 1000) events per fan-out at
 * full speed; BENCH_FANOUTS (default "1,5,20") endpoints per account; BENCH_CONCURRENCY (default
 * 32) publishers in flight; BENCH_TARGET (default 300) deliveries/s offered for
 * BENCH_TARGET_SECONDS (default 30) at each fan-out, for latency at a sustained rate ("0" skips);
 * BENCH_OUTAGE (default "10000,100000") deliveries held for 10 dead endpoints (requests per probe
 * interval, memory per held delivery); BENCH_SKIP_OUTAGE=1 skips it. BENCH_DRAIN (default 10000)
 * deliveries held for one dead endpoint, then drained when it is back, then BENCH_DRAIN_RATE
 * (default 100/s) with BENCH_DRAIN_RATE_HELD (3000); BENCH_SKIP_DRAIN=1 skips it. Both: bench/outage.ts.
 * BENCH_SCENARIOS (default "throughput,drain,outage,fairness") picks scenarios; fairness: account A
 * (BENCH_FAIRNESS_FANOUT, default 20 endpoints) publishes BENCH_FAIRNESS_EVENTS (default 2500)
 * events with BENCH_CONCURRENCY publishers as fast as it can while account B publishes
 * BENCH_FAIRNESS_B_RATE (default 10) events/s to one endpoint on a receiver of its own (another
 * origin), on the embedded default; settings such as TEMPORAL_FAIRNESS=false pass through to it.
 * peer (`BENCH_SCENARIOS=peer`, or `BENCH_PEER=svix` alone): this service and Svix side by side with
 * the peer kit in ../shared/peers (bench/peer.ts): BENCH_PEER_WORKLOADS (default
 * "3000x1,1000x5,300x20") as fast as BENCH_CONCURRENCY publishers go, BENCH_PEER_RUNS (default 3)
 * times each, then BENCH_TARGET events/s × 1 endpoint for BENCH_TARGET_SECONDS; on the embedded
 * default unless BENCH_STACKS is set; BENCH_PEER_WARMUP (default 20) warm-up events per run,
 * BENCH_PEER_LOG_LEVEL (default warn) Svix's log level (this service runs at LOG_LEVEL=warn).
 * BENCH_PEER_IDLE_WAIT (default 30) seconds after start at which both systems' idle memory is measured.
 * BENCH_KEEP_LOGS=1 keeps the Postgres-backed stack's API and worker logs (its folder under $TMPDIR).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { signatureHeaders } from '../src/domain/signing';
import { BenchReceiver, latencySvg, markProfileWindow, percentile, pool, waitUntil } from './lib';
import { drain, outage } from './outage';
import { peer, type PeerOutcome } from './peer';
import { panelsOf, peerLatencySvg } from './peerLatencySvg';
import { detailTable, parseWorkloads, ratioTable, type LoadgenResult, type PeerWorkload } from './peerTable';
import { startEmbedded, startPostgresStack, type Stack } from './stacks';

// BENCH_PEER=svix alone means the peer scenario alone, on the embedded default.
const PEER_ONLY = Boolean(process.env.BENCH_PEER) && !process.env.BENCH_SCENARIOS;
const STACKS = (process.env.BENCH_STACKS ?? 'embedded,postgres')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 1000);
const FANOUTS = process.env.BENCH_FANOUTS === 'none' ? [] : (process.env.BENCH_FANOUTS ?? '1,5,20').split(',').map(Number);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const TARGET = Number(process.env.BENCH_TARGET ?? 300);
const TARGET_SECONDS = Number(process.env.BENCH_TARGET_SECONDS ?? 30);
const OUTAGE = (process.env.BENCH_OUTAGE ?? '10000,100000').split(',').map(Number);
const DRAIN = Number(process.env.BENCH_DRAIN ?? 10_000);
const SCENARIOS = new Set((process.env.BENCH_SCENARIOS ?? (PEER_ONLY ? 'peer' : 'throughput,drain,outage,fairness')).split(',').map((s) => s.trim()));
if (process.env.BENCH_PEER) SCENARIOS.add('peer');
const PEER_STACKS = process.env.BENCH_STACKS ? STACKS : ['embedded'];
const PEER_WORKLOADS = parseWorkloads(process.env.BENCH_PEER_WORKLOADS ?? '3000x1,1000x5,300x20');
const PEER_RUNS = Number(process.env.BENCH_PEER_RUNS ?? 3);
const PEER_WARMUP = Number(process.env.BENCH_PEER_WARMUP ?? 20);
const FAIR_EVENTS = Number(process.env.BENCH_FAIRNESS_EVENTS ?? 2500);
const FAIR_FANOUT = Number(process.env.BENCH_FAIRNESS_FANOUT ?? 20);
const FAIR_B_RATE = Number(process.env.BENCH_FAIRNESS_B_RATE ?? 10);
const ADMIN = `bench_${randomBytes(12).toString('hex')}`;

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
function post(url: string, body: unknown, token: string, retries = 3): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, json: chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined }));
      },
    );
    // A kept-alive socket the server closed as it was reused: the request never arrived (Node's documented retry case).
    // With an idempotency key any connection error may be retried (the service answers a repeat with the original).
    const idempotent = typeof body === 'object' && body !== null && 'idempotencyKey' in body;
    req.on('error', (err: NodeJS.ErrnoException) =>
      (req.reusedSocket || idempotent) && err.code === 'ECONNRESET' && retries > 0 ? post(url, body, token, retries - 1).then(resolve, reject) : reject(err),
    );
    req.end(data);
  });
}

async function accountWithEndpoints(svc: Stack, url: string, n: number): Promise<string> {
  const acc = await post(`${svc.api}/v1/accounts`, { name: `bench ${n}`, plan: 'paid' }, ADMIN);
  for (let i = 0; i < n; i++) {
    const ep = await post(`${svc.api}/v1/endpoints`, { url: `${url}?ep=${i}`, eventTypes: ['referrer_added'] }, acc.json.apiKey);
    if (ep.status !== 201) throw new Error(`endpoint: ${ep.status} ${JSON.stringify(ep.json)}`);
  }
  return acc.json.id;
}

const event = (accountId: string, i: number) => ({
  accountId,
  eventType: 'referrer_added',
  data: { participantId: i, email: `p${i}@example.com`, code: `c${i}`, campaignId: 'bench' },
});

/** CPU seconds per component between two readings, per 1,000 deliveries. */
function cpuPer1000(before: Record<string, number>, after: Record<string, number>, deliveries: number): Record<string, number> {
  return Object.fromEntries(Object.keys(after).map((k) => [k, ((after[k] - before[k]) / deliveries) * 1000]));
}

/**
 * Publishes `events` events (each to `fanout` endpoints) with CONCURRENCY publishers, as fast as
 * possible or paced at `eventsPerSecond`, and waits for every delivery at the receiver.
 */
async function throughput(svc: Stack, receiver: BenchReceiver, url: string, fanout: number, events: number, eventsPerSecond?: number) {
  const accountId = await accountWithEndpoints(svc, url, fanout);
  receiver.reset();
  const expected = events * fanout;
  const publishMs: number[] = [];
  const cpu0 = svc.cpu();
  const started = Date.now();
  const monoStart = process.hrtime.bigint();
  await pool([...Array(events).keys()], eventsPerSecond ? Math.max(CONCURRENCY, 64) : CONCURRENCY, async (i) => {
    if (eventsPerSecond) await new Promise((r) => setTimeout(r, Math.max(0, started + (i * 1000) / eventsPerSecond - Date.now())));
    const t = performance.now();
    const res = await post(`${svc.api}/v1/events`, event(accountId, i), ADMIN);
    publishMs.push(performance.now() - t);
    if (res.status !== 202) throw new Error(`publish: ${res.status} ${JSON.stringify(res.json)}`);
  });
  const publishedAt = Date.now();
  await waitUntil(() => receiver.firstSeen.size >= expected, 30 * 60_000, `${expected} deliveries`);
  markProfileWindow(`${svc.name} ${events} × ${fanout}${eventsPerSecond ? ` at ${eventsPerSecond}/s` : ''}`, monoStart, process.hrtime.bigint(), expected);
  const seconds = (Math.max(...[...receiver.firstSeen.values()].map((v) => v.at)) - started) / 1000;
  const cpu = cpuPer1000(cpu0, svc.cpu(), expected);
  const latencies = [...receiver.firstSeen.values()].map((v) => v.latencyMs).sort((a, b) => a - b);
  publishMs.sort((a, b) => a - b);
  return {
    stack: svc.name,
    fanout,
    events,
    offeredPerSecond: eventsPerSecond ? eventsPerSecond * fanout : undefined,
    deliveries: expected,
    seconds,
    deliveriesPerSecond: expected / seconds,
    publishSeconds: (publishedAt - started) / 1000,
    latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99), max: latencies[latencies.length - 1] },
    publishLatencyMs: { p50: percentile(publishMs, 50), p95: percentile(publishMs, 95), p99: percentile(publishMs, 99) },
    cpuSecondsPer1000: cpu,
    duplicates: receiver.requests - expected,
    sortedLatencies: latencies,
  };
}
type Run = Awaited<ReturnType<typeof throughput>>;

/** This bench's own run in the shape of a loadgen.mjs result (the peer scenario without the kit). */
function asLoadgenResult(r: Run): LoadgenResult {
  const cpu = Object.values(r.cpuSecondsPer1000).reduce((a, b) => a + b, 0);
  return {
    system: 'rr',
    complete: true,
    deliveries: r.deliveries,
    expected: r.deliveries,
    duplicates: r.duplicates,
    missing: 0,
    publishFailed: 0,
    deliveriesPerS: r.deliveriesPerSecond,
    latencyMs: r.latencyMs,
    publishMs: r.publishLatencyMs,
    cpu: { serverCpuSPer1kDeliveries: cpu, otherCpuS: null },
  };
}

/** The physical limit: the same signed POSTs straight from one Node process to the receiver. */
async function baseline(receiver: BenchReceiver, url: string, count: number) {
  receiver.reset();
  const secret = 'whsec_' + randomBytes(24).toString('base64');
  const body = JSON.stringify({ eventType: 'referrer_added', data: event('acc', 1).data, createdAt: Date.now(), updatedAt: Date.now() });
  const cpu0 = process.cpuUsage();
  const started = Date.now();
  await pool(
    [...Array(count).keys()],
    CONCURRENCY,
    (i) =>
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

/**
 * Fairness between accounts: while account A publishes FAIR_EVENTS × FAIR_FANOUT deliveries as
 * fast as CONCURRENCY publishers go, account B publishes FAIR_B_RATE events/s to one endpoint on
 * its own receiver. B's publish→receipt latency during A's burst is the figure.
 */
async function fairness(receiverA: BenchReceiver, urlA: string) {
  const receiverB = new BenchReceiver();
  const urlB = await receiverB.start();
  const svc = await startEmbedded(ADMIN);
  try {
    const a = await accountWithEndpoints(svc, urlA, FAIR_FANOUT);
    const b = await accountWithEndpoints(svc, urlB, 1);
    // Warm-up (bundle, JIT, connections): a few hundred of A's, then B alone.
    receiverA.reset();
    await pool([...Array(200).keys()], CONCURRENCY, async (i) => void (await post(`${svc.api}/v1/events`, { ...event(a, i), idempotencyKey: `warm-${i}` }, ADMIN)));
    await waitUntil(() => receiverA.firstSeen.size >= 200 * FAIR_FANOUT, 120_000, 'the warm-up');
    receiverA.reset();
    receiverB.reset();

    // B: one event every 1/FAIR_B_RATE s, each publish on its own (a slow answer does not delay the next).
    let bStop = false;
    let bSent = 0;
    const bPublishMs: number[] = [];
    const bPublishing: Promise<void>[] = [];
    const bStart = Date.now();
    const bLoop = (async () => {
      while (!bStop) {
        const i = bSent++;
        const publishing = (async () => {
          const t = performance.now();
          const res = await post(`${svc.api}/v1/events`, { ...event(b, 1_000_000 + i), idempotencyKey: `fair-b-${i}` }, ADMIN);
          bPublishMs.push(performance.now() - t);
          if (res.status !== 202) throw new Error(`publish B: ${res.status} ${JSON.stringify(res.json)}`);
        })();
        publishing.catch(() => (bStop = true)); // reported below by Promise.all
        bPublishing.push(publishing);
        await new Promise((r) => setTimeout(r, Math.max(0, bStart + ((i + 1) * 1000) / FAIR_B_RATE - Date.now())));
      }
    })();
    await new Promise((r) => setTimeout(r, 3_000)); // B alone first: its quiet latency

    const expected = FAIR_EVENTS * FAIR_FANOUT;
    const cpu0 = svc.cpu();
    const aStart = Date.now();
    await pool([...Array(FAIR_EVENTS).keys()], CONCURRENCY, async (i) => {
      const res = await post(`${svc.api}/v1/events`, { ...event(a, 10_000 + i), idempotencyKey: `fair-a-${i}` }, ADMIN);
      if (res.status !== 202) throw new Error(`publish A: ${res.status} ${JSON.stringify(res.json)}`);
    });
    const aPublished = Date.now();
    await waitUntil(() => receiverA.firstSeen.size >= expected, 30 * 60_000, `${expected} deliveries of A`);
    const aEnd = Math.max(...[...receiverA.firstSeen.values()].map((v) => v.at));
    const cpu = cpuPer1000(cpu0, svc.cpu(), expected);
    await new Promise((r) => setTimeout(r, 2_000)); // B alone again
    bStop = true;
    await bLoop;
    await Promise.all(bPublishing);
    await waitUntil(() => receiverB.firstSeen.size >= bSent, 120_000, `${bSent} deliveries of B`);

    // B's deliveries by when they were published (createdAt = receipt - latency).
    const bAll = [...receiverB.firstSeen.values()].map((v) => ({ createdAt: v.at - v.latencyMs, latencyMs: v.latencyMs }));
    const stats = (xs: number[]) => {
      const sorted = [...xs].sort((x, y) => x - y);
      return { count: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] };
    };
    const during = bAll.filter((d) => d.createdAt >= aStart && d.createdAt <= aEnd).map((d) => d.latencyMs);
    const quiet = bAll.filter((d) => d.createdAt < aStart || d.createdAt > aEnd).map((d) => d.latencyMs);
    bPublishMs.sort((x, y) => x - y);
    return {
      fairness: process.env.TEMPORAL_FAIRNESS ?? 'true (default)',
      settings: Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(TEMPORAL_FAIRNESS|DISPATCH_|WORKER_)/.test(k))),
      a: {
        events: FAIR_EVENTS,
        fanout: FAIR_FANOUT,
        deliveries: expected,
        publishSeconds: (aPublished - aStart) / 1000,
        seconds: (aEnd - aStart) / 1000,
        deliveriesPerSecond: expected / ((aEnd - aStart) / 1000),
        duplicates: receiverA.requests - expected,
      },
      b: {
        ratePerSecond: FAIR_B_RATE,
        published: bSent,
        duringBurstMs: stats(during),
        quietMs: stats(quiet),
        publishApiMs: { p50: percentile(bPublishMs, 50), p99: percentile(bPublishMs, 99) },
        duplicates: receiverB.requests - bSent,
      },
      cpuSecondsPer1000: cpu,
      load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
      sortedBLatencies: [...during].sort((x, y) => x - y),
    };
  } finally {
    await svc.stop();
    await receiverB.stop();
  }
}

async function start(name: string): Promise<Stack> {
  if (name === 'embedded') return startEmbedded(ADMIN);
  if (name === 'postgres') return startPostgresStack(ADMIN);
  throw new Error(`unknown stack ${name} (BENCH_STACKS: embedded, postgres)`);
}

/** Every scenario on one stack: full speed per fan-out, then the target rate per fan-out. */
async function runStack(name: string, receiver: BenchReceiver, url: string): Promise<{ description: string; full: Run[]; paced: Run[] }> {
  const svc = await start(name);
  const full: Run[] = [];
  const paced: Run[] = [];
  const line = (r: Run) =>
    console.log(
      `[${name}] fan-out ${r.fanout}${r.offeredPerSecond ? ` at ${r.offeredPerSecond}/s offered` : ''}: ${r.deliveries} deliveries in ${r.seconds.toFixed(1)} s = ${r.deliveriesPerSecond.toFixed(0)}/s; p50/p95/p99 ${r.latencyMs.p50}/${r.latencyMs.p95}/${r.latencyMs.p99} ms`,
    );
  try {
    if (FANOUTS.length) await throughput(svc, receiver, url, 1, Math.min(EVENTS, 500)); // warm-up: bundle, JIT, connections
    for (const f of FANOUTS) {
      full.push(await throughput(svc, receiver, url, f, EVENTS));
      line(full[full.length - 1]);
    }
    if (TARGET > 0) {
      for (const f of FANOUTS) {
        const eventsPerSecond = TARGET / f;
        paced.push(await throughput(svc, receiver, url, f, Math.round(eventsPerSecond * TARGET_SECONDS), eventsPerSecond));
        line(paced[paced.length - 1]);
      }
    }
  } finally {
    await svc.stop().catch((err: Error) => console.warn(`[${name}] stopping: ${err.message}`));
  }
  return { description: svc.description, full, paced };
}

const fmtCpu = (c: Record<string, number>) =>
  Object.entries(c)
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(' · ');
const row = (r: Run) =>
  `| ${r.fanout} | ${r.offeredPerSecond ? `${r.offeredPerSecond}/s` : 'all at once'} | ${r.deliveries} | ${r.deliveriesPerSecond.toFixed(0)} | ${r.latencyMs.p50} / ${r.latencyMs.p95} / ${r.latencyMs.p99} | ${r.publishLatencyMs.p50.toFixed(1)} / ${r.publishLatencyMs.p99.toFixed(1)} | ${fmtCpu(r.cpuSecondsPer1000)} | ${r.duplicates} |`;

/** The peer scenario's part of results.md: the ratio table per stack, then every figure. */
function peerSection(p: PeerOutcome): string[] {
  const how =
    p.harness === 'loadgen.mjs'
      ? `the kit's harness (loadgen.mjs, ${CONCURRENCY} publishers, ${PEER_WARMUP} warm-up events per run, receiver on loopback answering 200 at once)`
      : "this bench's own harness (latency from the event's createdAt)";
  return [
    '',
    p.why
      ? `**Peer (Svix) not measured:** ${p.why}. This service alone, with ${how}:`
      : `**Side by side with Svix** (peer kit ${p.kit}: svix-server with its own Postgres and Redis, appendfsync always, log level ${p.svixLogLevel}; this service at LOG_LEVEL=warn), both driven by ${how}; as fast as possible: medians of ${PEER_RUNS} run(s), Svix first then this service, 2 s apart; the paced run once each. Load average before ${p.loadBefore}, after ${p.loadAfter}.`,
    ...p.stacks.flatMap((s) => [
      '',
      `*${s.description}*`,
      '',
      ratioTable(s.rows, `this service (${s.name})`),
      '',
      `Memory (PSS of every process, MiB): this service ${s.memory.rr.idle.toFixed(0)} idle, ${s.memory.rr.loaded?.toFixed(0) ?? '—'} after the as-fast-as-possible runs` +
        (s.memory.svix ? `; Svix (server, Redis, Postgres) ${s.memory.svix.idle.toFixed(0)} idle, ${s.memory.svix.loaded?.toFixed(0) ?? '—'} after.` : '.'),
      '',
      detailTable(s.rows),
    ]),
  ];
}

async function main() {
  // What `npm start` and the image run: the compiled build, made or refreshed as npm start's prestart does.
  execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit' });
  const receiver = new BenchReceiver();
  const url = await receiver.start();
  const results: { stack: string; description: string; full: Run[]; paced: Run[] }[] = [];
  const skipped: string[] = [];
  for (const name of SCENARIOS.has('throughput') ? STACKS : []) {
    try {
      results.push({ stack: name, ...(await runStack(name, receiver, url)) });
    } catch (err) {
      if (name === 'embedded') throw err;
      skipped.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
      console.warn(`[${name}] skipped: ${(err as Error).message}`);
    }
  }
  const all = results.flatMap((r) => [...r.full, ...r.paced]);
  const base = SCENARIOS.has('throughput') ? await baseline(receiver, url, Math.max(1000, ...all.map((r) => r.deliveries))) : undefined;
  if (base) console.log(`baseline: ${base.deliveriesPerSecond.toFixed(0)}/s`);
  const drained = process.env.BENCH_SKIP_DRAIN || !SCENARIOS.has('drain') ? undefined : await drain(receiver, url, post, ADMIN, DRAIN, CONCURRENCY);
  const out = process.env.BENCH_SKIP_OUTAGE || !SCENARIOS.has('outage') ? undefined : await outage(receiver, url, post, ADMIN, OUTAGE, CONCURRENCY);
  const fair = SCENARIOS.has('fairness') ? await fairness(receiver, url) : undefined;
  const paced: PeerWorkload | undefined = TARGET > 0 ? { events: Math.round(TARGET * TARGET_SECONDS), fanout: 1, rate: TARGET } : undefined;
  const peered: PeerOutcome | undefined = SCENARIOS.has('peer')
    ? await peer({
        admin: ADMIN,
        concurrency: CONCURRENCY,
        workloads: PEER_WORKLOADS,
        paced,
        runs: PEER_RUNS,
        warmup: PEER_WARMUP,
        stacks: PEER_STACKS,
        start,
        alone: async (svc, w) => asLoadgenResult(await throughput(svc, receiver, url, w.fanout, w.events, w.rate || undefined)),
      })
    : undefined;
  if (fair)
    console.log(
      `[fairness] A: ${fair.a.deliveries} deliveries in ${fair.a.seconds.toFixed(1)} s = ${fair.a.deliveriesPerSecond.toFixed(0)}/s; B during A's burst: p50/p99/max ${fair.b.duringBurstMs.p50}/${fair.b.duringBurstMs.p99}/${fair.b.duringBurstMs.max} ms (${fair.b.duringBurstMs.count} events); load ${fair.load}`,
    );
  await receiver.stop();

  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString() };
  const best = Math.max(0, ...all.filter((r) => !r.offeredPerSecond).map((r) => r.deliveriesPerSecond));
  const md = [
    `Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, Node ${machine.node}; ${machine.date}`,
    `Command: BENCH_SCENARIOS=${[...SCENARIOS].join(',')} BENCH_STACKS=${(SCENARIOS.size === 1 && peered ? PEER_STACKS : STACKS).join(',')} BENCH_EVENTS=${EVENTS} BENCH_CONCURRENCY=${CONCURRENCY} BENCH_TARGET=${TARGET} BENCH_TARGET_SECONDS=${TARGET_SECONDS}${
      peered ? ` BENCH_PEER_WORKLOADS=${PEER_WORKLOADS.map((w) => `${w.events}x${w.fanout}`).join(',')} BENCH_PEER_RUNS=${PEER_RUNS}` : ''
    } npm run bench`,
    ...(peered ? peerSection(peered) : []),
    ...results.flatMap((r) => [
      '',
      `**${r.description}**`,
      '',
      '| endpoints/event | offered | deliveries | deliveries/s | publish→receipt p50 / p95 / p99 (ms) | publish API p50 / p99 (ms) | CPU s per 1,000 deliveries | duplicates |',
      '|---|---|---|---|---|---|---|---|',
      ...[...r.full, ...r.paced].map(row),
    ]),
    ...skipped.map((s) => `\nSkipped: ${s}`),
    ...(base
      ? [
          '',
          `Baseline (the same signed POSTs straight from one Node process, ${CONCURRENCY} in flight): ${base.deliveriesPerSecond.toFixed(0)}/s, CPU ${base.cpuSecondsPer1000.toFixed(2)} s per 1,000. Best service figure / baseline: ${(best / base.deliveriesPerSecond).toFixed(3)}.`,
        ]
      : []),
    ...(out
      ? [
          '',
          `Outage (embedded): ${out.endpoints} dead endpoints answering 503, CIRCUIT_PROBE_MAX_INTERVAL=${out.probeIntervalSeconds}s.`,
          '',
          '| deliveries held | requests per dead endpoint per probe interval | RSS (MiB) |',
          '|---|---|---|',
          ...out.rows.map(
            (r) =>
              `| ${r.held} | ${r.requestsPerEndpointPerProbe.toFixed(2)} | ${Object.entries(r.rssMiB)
                .map(([k, v]) => `${k} ${v.toFixed(0)}`)
                .join(' · ')} |`,
          ),
          '',
          `Memory per held delivery (growth between the rows): ${Object.entries(out.slopeKiBPerHeld)
            .map(([k, v]) => `${k} ${v.toFixed(2)} KiB`)
            .join(' · ')}.`,
        ]
      : []),
    ...(drained
      ? [
          '',
          `Drain (embedded): ${drained.held} deliveries held for one dead endpoint; it came back and its next probe went through after ${drained.noticedAfterSeconds.toFixed(1)} s; then 99 % arrived in ${drained.p99Seconds.toFixed(1)} s = **${drained.p99PerSecond.toFixed(0)} deliveries/s** and all ${drained.held} in ${drained.drainSeconds.toFixed(1)} s = ${drained.deliveriesPerSecond.toFixed(0)}/s (the last ones at their own wake-ups), ${drained.duplicates} duplicates.` +
            (drained.rateLimit
              ? ` With rateLimitPerSecond ${drained.rateLimit.perSecond} and ${drained.rateLimit.held} held: ${drained.rateLimit.observedPerSecond.toFixed(1)}/s (${drained.rateLimit.deviationPercent.toFixed(1)} %), busiest second ${drained.rateLimit.busiestSecond}.`
              : ''),
        ]
      : []),
    ...(fair
      ? [
          '',
          `Fairness (embedded; TEMPORAL_FAIRNESS=${fair.fairness}${Object.keys(fair.settings)
            .filter((k) => k !== 'TEMPORAL_FAIRNESS')
            .map((k) => `, ${k}=${fair.settings[k]}`)
            .join('')}; load ${fair.load}):`,
          '',
          '| account | offered | deliveries | publish→receipt p50 / p95 / p99 / max (ms) | deliveries/s |',
          '|---|---|---|---|---|',
          `| A (${fair.a.fanout} endpoints/event) | ${fair.a.events} events as fast as ${CONCURRENCY} publishers go (published in ${fair.a.publishSeconds.toFixed(1)} s) | ${fair.a.deliveries} in ${fair.a.seconds.toFixed(1)} s | — | ${fair.a.deliveriesPerSecond.toFixed(0)} |`,
          `| B during A's burst | ${fair.b.ratePerSecond}/s, 1 endpoint, own receiver | ${fair.b.duringBurstMs.count} | ${fair.b.duringBurstMs.p50} / ${fair.b.duringBurstMs.p95} / ${fair.b.duringBurstMs.p99} / ${fair.b.duringBurstMs.max} | — |`,
          `| B alone (before/after) | ${fair.b.ratePerSecond}/s | ${fair.b.quietMs.count} | ${fair.b.quietMs.p50} / ${fair.b.quietMs.p95} / ${fair.b.quietMs.p99} / ${fair.b.quietMs.max} | — |`,
        ]
      : []),
  ].join('\n');
  const dir = join('bench-results', new Date().toISOString().replace(/[:.]/g, '-'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'results.md'), md + '\n');
  const fairOut = fair && (({ sortedBLatencies, ...x }) => x)(fair);
  writeFileSync(
    join(dir, 'results.json'),
    JSON.stringify(
      {
        machine,
        stacks: results.map((r) => ({ ...r, full: r.full.map(({ sortedLatencies, ...x }) => x), paced: r.paced.map(({ sortedLatencies, ...x }) => x) })),
        skipped,
        baseline: base,
        outage: out,
        drain: drained,
        fairness: fairOut,
        peer: peered,
      },
      null,
      2,
    ),
  );
  if (all.length)
    writeFileSync(
      join(dir, 'latency.svg'),
      latencySvg(
        (all.some((r) => r.offeredPerSecond) ? all.filter((r) => r.offeredPerSecond) : all).map((r) => ({
          name: `${r.stack}, ${r.fanout} endpoint(s)/event, ${r.offeredPerSecond ? `${r.offeredPerSecond}/s` : 'all at once'}`,
          sortedMs: r.sortedLatencies,
        })),
      ),
    );
  // Both systems' quantiles per workload (the kit's harness reports quantiles, not samples).
  if (peered?.stacks[0]?.rows.some((r) => r.rr && r.svix)) writeFileSync(join(dir, 'peer-latency.svg'), peerLatencySvg(panelsOf(peered.stacks[0])));
  if (fair) writeFileSync(join(dir, 'fairness.svg'), latencySvg([{ name: `account B during A's burst (TEMPORAL_FAIRNESS=${fair.fairness})`, sortedMs: fair.sortedBLatencies }]));
  console.log('\n' + md + `\n\nWritten to ${dir}/`);
  agent.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
