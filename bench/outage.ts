/**
 * The bad-day scenarios of `npm run bench` on the embedded default:
 * - outage: endpoints that answer 503 while 10,000 then 100,000 deliveries wait for them: how
 *   many requests the dead endpoints get per probe interval, and the memory each component
 *   holds per held delivery;
 * - drain: 10,000 deliveries held for one dead endpoint, then it comes back: how fast its drain
 *   delivers them (no rate limit), then again with a rate limit (observed rate against it).
 */
import { BenchReceiver, markProfileWindow, pool, waitUntil } from './lib';
import { startEmbedded, type Stack } from './stacks';

export interface OutageRow {
  held: number;
  rssMiB: Record<string, number>;
  /** Requests the dead endpoints got in the observation window, per endpoint per probe interval. */
  requestsPerEndpointPerProbe: number;
}
export interface OutageResult {
  endpoints: number;
  probeIntervalSeconds: number;
  rows: OutageRow[];
  /** RSS growth per held delivery between the first and the last row, per component (KiB). */
  slopeKiBPerHeld: Record<string, number>;
}
export interface DrainResult {
  held: number;
  /** From the receiver coming back to its first 2xx (the next probe). */
  noticedAfterSeconds: number;
  /** First 2xx to last. */
  drainSeconds: number;
  deliveriesPerSecond: number;
  /** First 2xx until 99 % had arrived: the drain's own pace, without the few that arrive later at their own wake-ups. */
  p99Seconds: number;
  p99PerSecond: number;
  duplicates: number;
  rateLimit?: { perSecond: number; held: number; observedPerSecond: number; deviationPercent: number; busiestSecond: number };
}

/** CPU seconds per 1,000 deliveries per component between two readings. */
function cpuPer1000(before: Record<string, number>, after: Record<string, number>, n: number): Record<string, number> {
  return Object.fromEntries(Object.keys(after).map((k) => [k, Math.round(((after[k] - (before[k] ?? 0)) / n) * 1000 * 100) / 100]));
}

type Post = (url: string, body: unknown, token: string) => Promise<{ status: number; json: any }>;

const event = (accountId: string, i: number) => ({
  accountId,
  eventType: 'referrer_added',
  data: { participantId: i, email: `p${i}@example.com`, code: `c${i}`, campaignId: 'bench' },
});

/** Held deliveries per reason, from the service's /metrics (rr_deliveries_held). */
async function heldCount(svc: Stack, admin: string): Promise<number> {
  const text = await fetch(`${svc.api}/metrics`, { headers: { authorization: `Bearer ${admin}` } }).then((r) => r.text());
  let n = 0;
  for (const line of text.split('\n')) if (line.startsWith('rr_deliveries_held{')) n += Number(line.split(' ').pop());
  return n;
}

async function waitForHeld(svc: Stack, admin: string, atLeast: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  let said = Date.now();
  for (;;) {
    const n = await heldCount(svc, admin).catch(() => 0);
    if (n >= atLeast) return n;
    if (Date.now() - said >= 60_000) {
      said = Date.now();
      console.log(`[outage] ${n} of ${atLeast} held so far`);
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${atLeast} held deliveries (have ${n})`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

async function account(
  svc: Stack,
  post: Post,
  admin: string,
  url: string,
  endpoints: number,
  extra: Record<string, unknown> = {},
): Promise<{ id: string; apiKey: string; endpointIds: string[] }> {
  const acc = await post(`${svc.api}/v1/accounts`, { name: 'bench outage', plan: 'paid' }, admin);
  const endpointIds: string[] = [];
  for (let i = 0; i < endpoints; i++) {
    const ep = await post(`${svc.api}/v1/endpoints`, { url: `${url}?ep=${i}`, eventTypes: ['referrer_added'], ...extra }, acc.json.apiKey);
    if (ep.status !== 201) throw new Error(`endpoint: ${ep.status} ${JSON.stringify(ep.json)}`);
    endpointIds.push(ep.json.id);
  }
  return { id: acc.json.id, apiKey: acc.json.apiKey, endpointIds };
}

async function publish(svc: Stack, post: Post, admin: string, accountId: string, from: number, count: number, concurrency: number): Promise<void> {
  await pool([...Array(count).keys()], concurrency, async (i) => {
    const r = await post(`${svc.api}/v1/events`, event(accountId, from + i), admin);
    if (r.status !== 202) throw new Error(`publish: ${r.status} ${JSON.stringify(r.json)}`);
  });
}

/** BENCH_OUTAGE targets (default 10,000 and 100,000) held for BENCH_OUTAGE_ENDPOINTS (10) dead endpoints. */
export async function outage(receiver: BenchReceiver, url: string, post: Post, admin: string, targets: number[], concurrency: number): Promise<OutageResult> {
  const ENDPOINTS = Number(process.env.BENCH_OUTAGE_ENDPOINTS ?? 10);
  const PROBE_SECONDS = 30;
  const WINDOW_SECONDS = 90;
  const svc = await startEmbedded(admin, { CIRCUIT_PROBE_MAX_INTERVAL: `${PROBE_SECONDS}s` });
  const rows: OutageRow[] = [];
  try {
    const acc = await account(svc, post, admin, url, ENDPOINTS);
    receiver.reset();
    receiver.status = 503;
    let events = 0;
    for (const target of targets) {
      const more = Math.ceil(target / ENDPOINTS) - events;
      const t0 = Date.now();
      await publish(svc, post, admin, acc.id, events, more, concurrency);
      events += more;
      const total = events * ENDPOINTS;
      console.log(`[outage] published ${more * ENDPOINTS} more deliveries in ${((Date.now() - t0) / 1000).toFixed(0)} s; waiting for ${total} to be held…`);
      // Those attempted before the circuits opened are in their own back-off, then held at their next wake-up.
      await waitForHeld(svc, admin, Math.floor(total * 0.98), 30 * 60_000);
      const before = receiver.requests;
      await new Promise((r) => setTimeout(r, WINDOW_SECONDS * 1000));
      const requests = receiver.requests - before;
      rows.push({ held: total, rssMiB: svc.rssMiB(), requestsPerEndpointPerProbe: requests / ENDPOINTS / (WINDOW_SECONDS / PROBE_SECONDS) });
      const last = rows[rows.length - 1];
      console.log(
        `[outage] ${total} held: ${requests} requests in ${WINDOW_SECONDS} s to ${ENDPOINTS} dead endpoints (${last.requestsPerEndpointPerProbe.toFixed(2)} per endpoint per ${PROBE_SECONDS}-s probe interval); RSS ${JSON.stringify(last.rssMiB)}`,
      );
    }
  } finally {
    receiver.status = 200;
    await svc.stop();
  }
  const first = rows[0];
  const last = rows[rows.length - 1];
  const slopeKiBPerHeld = Object.fromEntries(
    Object.keys(last.rssMiB).map((k) => [k, rows.length > 1 ? ((last.rssMiB[k] - first.rssMiB[k]) * 1024) / (last.held - first.held) : NaN]),
  );
  return { endpoints: ENDPOINTS, probeIntervalSeconds: PROBE_SECONDS, rows, slopeKiBPerHeld };
}

/** BENCH_DRAIN (default 10,000) held for one dead endpoint, then it comes back; then BENCH_DRAIN_RATE (100/s) with 3,000 held. */
export async function drain(receiver: BenchReceiver, url: string, post: Post, admin: string, held: number, concurrency: number): Promise<DrainResult> {
  const RATE = Number(process.env.BENCH_DRAIN_RATE ?? 100);
  const RATE_HELD = Number(process.env.BENCH_DRAIN_RATE_HELD ?? 3_000);
  const svc = await startEmbedded(admin, { CIRCUIT_PROBE_MAX_INTERVAL: '10s' });
  try {
    const runOnce = async (n: number, extra: Record<string, unknown>) => {
      const acc = await account(svc, post, admin, url, 1, extra);
      receiver.reset();
      receiver.status = 503;
      const t0 = Date.now();
      const cpu0 = svc.cpu();
      const mono0 = process.hrtime.bigint();
      await publish(svc, post, admin, acc.id, 0, n, concurrency);
      const publishCpu = cpuPer1000(cpu0, svc.cpu(), n);
      markProfileWindow(`publishing ${n} into an open circuit`, mono0, process.hrtime.bigint(), n);
      console.log(`[drain] published ${n} in ${((Date.now() - t0) / 1000).toFixed(0)} s (CPU s per 1,000: ${JSON.stringify(publishCpu)}); waiting for them to be held…`);
      await waitForHeld(svc, admin, Math.floor(n * 0.98), 20 * 60_000);
      const sent = receiver.requests;
      receiver.reset();
      receiver.status = 200;
      const back = Date.now();
      const cpu1 = svc.cpu();
      const mono1 = process.hrtime.bigint();
      await waitUntil(() => receiver.firstSeen.size >= n, 30 * 60_000, `the ${n} to drain`);
      markProfileWindow(`draining ${n}`, mono1, process.hrtime.bigint(), n);
      const drainCpu = cpuPer1000(cpu1, svc.cpu(), n);
      const times = [...receiver.firstSeen.values()].map((v) => v.at).sort((a, b) => a - b);
      const drainSeconds = (times[times.length - 1] - times[0]) / 1000;
      const p99Seconds = (times[Math.ceil(times.length * 0.99) - 1] - times[0]) / 1000;
      let busiestSecond = 0; // most first arrivals within any one second (sliding)
      for (let a = 0, b = 0; a < times.length; a++) {
        while (times[a] - times[b] >= 1000) b++;
        busiestSecond = Math.max(busiestSecond, a - b + 1);
      }
      const result = {
        n,
        p99Seconds,
        p99PerSecond: (Math.ceil(n * 0.99) - 1) / p99Seconds,
        sentWhileDown: sent,
        noticedAfterSeconds: (times[0] - back) / 1000,
        drainSeconds,
        perSecond: n / drainSeconds,
        duplicates: receiver.requests - receiver.firstSeen.size,
        publishCpu,
        drainCpu,
        busiestSecond,
      };
      console.log(`[drain] ${JSON.stringify(result)}`);
      return result;
    };
    const free = await runOnce(held, {});
    const limited = RATE > 0 ? await runOnce(RATE_HELD, { rateLimitPerSecond: RATE }) : undefined;
    return {
      held,
      noticedAfterSeconds: free.noticedAfterSeconds,
      drainSeconds: free.drainSeconds,
      deliveriesPerSecond: free.perSecond,
      p99Seconds: free.p99Seconds,
      p99PerSecond: free.p99PerSecond,
      duplicates: free.duplicates + (limited?.duplicates ?? 0),
      rateLimit: limited && {
        perSecond: RATE,
        held: RATE_HELD,
        observedPerSecond: limited.perSecond,
        deviationPercent: ((limited.perSecond - RATE) / RATE) * 100,
        busiestSecond: limited.busiestSecond,
      },
    };
  } finally {
    receiver.status = 200;
    await svc.stop();
  }
}
