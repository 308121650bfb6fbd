/**
 * The peer scenario's figures (bench/peer.ts): medians of the kit's load harness runs
 * (../shared/peers/loadgen.mjs) per workload and system, and the Markdown tables comparing this
 * service with Svix. Pure: no I/O, so the formatting is unit-tested.
 */

/** A workload of the peer table: `events` events to `fanout` endpoints each, paced at `rate` events/s (0: as fast as possible). */
export interface PeerWorkload {
  events: number;
  fanout: number;
  rate: number;
}

/** The part of one loadgen.mjs result (its --out JSON) the tables use. */
export interface LoadgenResult {
  system: string;
  complete: boolean;
  deliveries: number;
  expected: number;
  duplicates: number;
  missing: number;
  publishFailed: number;
  deliveriesPerS: number;
  latencyMs: { p50: number; p95: number; p99: number; max?: number };
  publishMs: { p50: number; p99: number };
  cpu: { serverCpuSPer1kDeliveries: number | null; otherCpuS: number | null };
}

/** Medians over the runs of one workload on one system. */
export interface PeerSummary {
  runs: number;
  deliveriesPerS: number;
  deliveriesPerSRange: [number, number];
  latencyMs: { p50: number; p95: number; p99: number };
  publishMs: { p50: number; p99: number };
  /** Server CPU seconds per 1,000 deliveries; undefined when the harness could not see the processes. */
  cpuPer1k?: number;
  duplicates: number;
  missing: number;
  publishFailed: number;
  /** The most CPU anything else on the machine used during one run (s): near 0 on a quiet machine. */
  maxOtherCpuS?: number;
}

export interface PeerRow {
  workload: PeerWorkload;
  /** This service. */
  rr?: PeerSummary;
  svix?: PeerSummary;
}

/** "3000x1,1000x5,300x20" → workloads as fast as possible. */
export function parseWorkloads(spec: string): PeerWorkload[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const m = /^(\d+)\s*[x×]\s*(\d+)$/.exec(s);
      if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new Error(`BENCH_PEER_WORKLOADS: "${s}" is not <events>x<endpoints> (e.g. 3000x1)`);
      return { events: Number(m[1]), fanout: Number(m[2]), rate: 0 };
    });
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const finite = (xs: (number | null | undefined)[]) => xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));

export function summarize(results: LoadgenResult[]): PeerSummary {
  const m = (pick: (r: LoadgenResult) => number | null | undefined) => median(finite(results.map(pick)));
  const rates = finite(results.map((r) => r.deliveriesPerS));
  const cpu = finite(results.map((r) => r.cpu.serverCpuSPer1kDeliveries));
  const other = finite(results.map((r) => r.cpu.otherCpuS));
  const sum = (pick: (r: LoadgenResult) => number) => results.reduce((n, r) => n + pick(r), 0);
  return {
    runs: results.length,
    deliveriesPerS: median(rates),
    deliveriesPerSRange: [Math.min(...rates), Math.max(...rates)],
    latencyMs: { p50: m((r) => r.latencyMs.p50), p95: m((r) => r.latencyMs.p95), p99: m((r) => r.latencyMs.p99) },
    publishMs: { p50: m((r) => r.publishMs.p50), p99: m((r) => r.publishMs.p99) },
    cpuPer1k: cpu.length ? median(cpu) : undefined,
    duplicates: sum((r) => r.duplicates),
    missing: sum((r) => r.missing),
    publishFailed: sum((r) => r.publishFailed),
    maxOtherCpuS: other.length ? Math.max(...other) : undefined,
  };
}

const int = (x: number) => Math.round(x).toLocaleString('en-US');
const ms = (x: number) => (x >= 100 ? int(x) : x.toFixed(1));
const times = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 && Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : '—');

export function workloadLabel(w: PeerWorkload, seconds?: number): string {
  const eps = `${w.fanout} endpoint${w.fanout === 1 ? '' : 's'}`;
  return w.rate > 0 ? `sustained ${int(w.rate)} events/s × ${eps}, ${seconds ?? Math.round(w.events / w.rate)} s` : `${int(w.events)} events × ${eps}, as fast as possible`;
}

function cell(s: PeerSummary | undefined, paced: boolean): string {
  if (!s) return 'not measured';
  const cpu = s.cpuPer1k !== undefined ? `, ${s.cpuPer1k.toFixed(2)} CPU s per 1,000` : '';
  const lost = s.missing || s.publishFailed ? `, **${s.missing} missing, ${s.publishFailed} publishes failed**` : '';
  const head = paced ? `${int(s.deliveriesPerS)}/s, p50 ${ms(s.latencyMs.p50)} ms` : `${int(s.deliveriesPerS)} deliveries/s, p50 ${ms(s.latencyMs.p50)} ms`;
  return `${head}, **p99 ${ms(s.latencyMs.p99)} ms**, publish p99 ${ms(s.publishMs.p99)} ms${cpu}${lost}`;
}

/** The issue's table: one row per workload, this service and Svix side by side, and this service ÷ Svix. */
export function ratioTable(rows: PeerRow[], rrName = 'this service (embedded)'): string {
  const lines = [`| workload | ${rrName} | Svix | ratio (this service ÷ Svix) |`, '|---|---|---|---|'];
  for (const r of rows) {
    const paced = r.workload.rate > 0;
    const ratio =
      r.rr && r.svix
        ? `**${times(r.rr.deliveriesPerS, r.svix.deliveriesPerS)} throughput**; p50 ${times(r.rr.latencyMs.p50, r.svix.latencyMs.p50)}, p99 ${times(r.rr.latencyMs.p99, r.svix.latencyMs.p99)}; publish p99 ${times(r.rr.publishMs.p99, r.svix.publishMs.p99)}; CPU per delivery ${times(r.rr.cpuPer1k, r.svix.cpuPer1k)}`
        : '—';
    lines.push(`| ${workloadLabel(r.workload)} | ${cell(r.rr, paced)} | ${cell(r.svix, paced)} | ${ratio} |`);
  }
  return lines.join('\n');
}

/** Every figure, like the kit README's table: medians, the deliveries/s range over the runs, duplicates and missing deliveries. */
export function detailTable(rows: PeerRow[]): string {
  const lines = [
    '| N × F | rate | system | runs | deliveries/s (range) | latency p50 / p95 / p99 ms | publish p50 / p99 ms | server CPU s / 1k | dup / missing / failed publishes | other CPU s (max) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    for (const [name, s] of [
      ['this service', r.rr],
      ['Svix', r.svix],
    ] as const) {
      if (!s) continue;
      lines.push(
        `| ${r.workload.events} × ${r.workload.fanout} | ${r.workload.rate > 0 ? `${r.workload.rate}/s` : 'max'} | ${name} | ${s.runs} | ${int(s.deliveriesPerS)} (${int(s.deliveriesPerSRange[0])}–${int(s.deliveriesPerSRange[1])}) | ${ms(s.latencyMs.p50)} / ${ms(s.latencyMs.p95)} / ${ms(s.latencyMs.p99)} | ${ms(s.publishMs.p50)} / ${ms(s.publishMs.p99)} | ${s.cpuPer1k?.toFixed(2) ?? '—'} | ${s.duplicates} / ${s.missing} / ${s.publishFailed} | ${s.maxOtherCpuS?.toFixed(1) ?? '—'} |`,
      );
    }
  }
  return lines.join('\n');
}
