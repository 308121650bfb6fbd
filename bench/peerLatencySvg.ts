/**
 * The latency distribution of both systems in the peer scenario, one panel per workload: the
 * publish → receipt quantiles the kit's harness reports (p50, p95, p99 — medians over the runs —
 * and the slowest delivery), joined as a CDF on a logarithmic time axis. loadgen.mjs reports
 * these quantiles, not every sample, so the curve is drawn through them and nothing in between.
 * `npx tsx bench/peerLatencySvg.ts bench-results/<time>/results.json > chart.svg` redraws a past run.
 */
import { readFileSync } from 'node:fs';
import { workloadLabel, type PeerRow } from './peerTable';

export interface LatencyPoints {
  p50: number;
  p95: number;
  p99: number;
  max?: number;
}

export function peerLatencySvg(panels: { row: PeerRow; rrMax?: number; svixMax?: number }[]): string {
  const W = 460,
    H = 260,
    L = 50,
    B = 44,
    T = 34,
    R = 16;
  const all = panels.flatMap(({ row, rrMax, svixMax }) => [row.rr?.latencyMs.p50, row.svix?.latencyMs.p50, rrMax, svixMax, row.rr?.latencyMs.p99, row.svix?.latencyMs.p99]);
  const values = all.filter((v): v is number => typeof v === 'number' && v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...values)))),
    hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values))));
  const x = (ms: number) => L + ((Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (W - L - R);
  // The quantiles evenly spaced (p50, p95, p99, slowest): on a linear axis the tail is a sliver.
  const LEVELS = [0.5, 0.95, 0.99, 1];
  const y = (q: number) => T + (1 - Math.max(0, LEVELS.indexOf(q)) / (LEVELS.length - 1)) * (H - T - B);
  const line = (p: LatencyPoints | undefined, max: number | undefined, colour: string) => {
    if (!p) return '';
    const pts: [number, number][] = [[p.p50, 0.5], [p.p95, 0.95], [p.p99, 0.99], ...(max ? ([[max, 1]] as [number, number][]) : [])];
    return `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.map(([ms, q]) => `${x(ms).toFixed(1)},${y(q).toFixed(1)}`).join(' ')}"/>${pts
      .map(([ms, q]) => `<circle cx="${x(ms).toFixed(1)}" cy="${y(q).toFixed(1)}" r="3" fill="${colour}"/>`)
      .join('')}`;
  };
  const decades: number[] = [];
  for (let d = lo; d <= hi; d *= 10) decades.push(d);
  const panel = ({ row, rrMax, svixMax }: (typeof panels)[number], i: number) => {
    const dx = (i % 2) * W,
      dy = Math.floor(i / 2) * H;
    return `<g transform="translate(${dx},${dy})">
<text x="${L}" y="18" font-size="13" font-weight="bold">${workloadLabel(row.workload)}</text>
<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#999"/><line x1="${L}" y1="${H - B}" x2="${L}" y2="${T}" stroke="#999"/>
${LEVELS.map((q, k) => `<text x="${L - 6}" y="${y(q) + 4}" font-size="10" text-anchor="end">${['p50', 'p95', 'p99', 'max'][k]}</text><line x1="${L}" y1="${y(q)}" x2="${W - R}" y2="${y(q)}" stroke="#eee"/>`).join('')}
${decades.map((d) => `<text x="${x(d)}" y="${H - B + 16}" font-size="10" text-anchor="middle">${d >= 1000 ? `${d / 1000} s` : `${d} ms`}</text>`).join('')}
${line(row.svix?.latencyMs, svixMax, '#dc2626')}${line(row.rr?.latencyMs, rrMax, '#2563eb')}
</g>`;
  };
  const rowsOfPanels = Math.ceil(panels.length / 2);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${rowsOfPanels * H + 30}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>
${panels.map(panel).join('\n')}
<g transform="translate(${L},${rowsOfPanels * H + 14})"><rect width="12" height="4" y="-4" fill="#2563eb"/><text x="18" font-size="12">this service</text><rect x="120" width="12" height="4" y="-4" fill="#dc2626"/><text x="138" font-size="12">Svix</text><text x="210" font-size="11" fill="#555">publish → receipt latency (log scale) at p50, p95, p99 and the slowest delivery</text></g>
</svg>`;
}

/** The panels of one stack of a peer outcome: the rows, with each system's slowest delivery (median over its runs). */
export function panelsOf(stack: { rows: PeerRow[]; raw: { workload: PeerRow['workload']; system: string; result: { latencyMs: { max?: number } } }[] }) {
  const medianMax = (row: PeerRow, system: string) => {
    const m = stack.raw
      .filter((r) => r.system === system && r.workload.events === row.workload.events && r.workload.fanout === row.workload.fanout && r.workload.rate === row.workload.rate)
      .map((r) => r.result.latencyMs.max)
      .filter((v): v is number => typeof v === 'number')
      .sort((a, b) => a - b);
    return m.length ? m[Math.floor(m.length / 2)] : undefined;
  };
  return stack.rows.map((row) => ({ row, rrMax: medianMax(row, 'rr'), svixMax: medianMax(row, 'svix') }));
}

if (process.argv[1]?.endsWith('peerLatencySvg.ts')) {
  const results = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  if (!results.peer?.stacks?.[0]) throw new Error(`${process.argv[2]} has no peer scenario`);
  process.stdout.write(peerLatencySvg(panelsOf(results.peer.stacks[0])) + '\n');
}
