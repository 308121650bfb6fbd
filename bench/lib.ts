import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100/s on Linux)
}

/** CPU seconds of a process and all its descendants: its own, its reaped children's (cutime, cstime), and the live ones'. */
export function treeCpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const own = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
    return own + childPids(pid).reduce((sum, c) => sum + treeCpuSeconds(c), 0);
  } catch {
    return 0; // exited meanwhile
  }
}

/** A process and all its descendants. */
export function descendants(pid: number): number[] {
  return [pid, ...childPids(pid).flatMap(descendants)];
}

export function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024;
}

/** Direct children of a process (scans /proc: a child spawned from any thread counts). */
export function childPids(pid: number, nameIncludes?: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      if (ppid === pid && (!nameIncludes || readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(nameIncludes))) found.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** A loopback receiver that answers at once and records when each webhook-id first arrived. */
export class BenchReceiver {
  readonly firstSeen = new Map<string, { at: number; latencyMs: number }>();
  requests = 0;
  status = 200;
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.requests++;
      res.writeHead(this.status, { 'content-type': 'text/plain' }).end('ok');
      if (this.status !== 200) return;
      const id = String(req.headers['webhook-id']);
      if (this.firstSeen.has(id)) return;
      const now = Date.now();
      let created = now;
      try {
        created = JSON.parse(Buffer.concat(chunks).toString('utf8')).createdAt;
      } catch {
        /* baseline bodies have no createdAt */
      }
      this.firstSeen.set(id, { at: now, latencyMs: now - created });
    });
  });
  async start(): Promise<string> {
    this.server.keepAliveTimeout = 30_000;
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', ok));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }
  reset(): void {
    this.firstSeen.clear();
    this.requests = 0;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((ok) => this.server.close(ok));
  }
}

/** Runs `fn` over `items` with at most `concurrency` in flight. */
export async function pool<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}

export async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * With BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR", notes a measured run's span in
 * DIR/windows.json (monotonic clock, the one V8's profiles use), so bench/cpuProfile.ts can count
 * the samples of that run alone, without start-up and warm-up.
 */
export function markProfileWindow(label: string, startNs: bigint, endNs: bigint, deliveries: number): void {
  const dir = /--cpu-prof-dir=(\S+)/.exec(process.env.BENCH_NODE_ARGS ?? '')?.[1];
  if (!dir) return;
  const file = join(dir, 'windows.json');
  const windows = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as unknown[]) : [];
  windows.push({ label, startUs: Number(startNs / 1000n), endUs: Number(endNs / 1000n), deliveries });
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, JSON.stringify(windows, null, 1));
}

export function spawnMain(env: Record<string, string>): ChildProcess {
  // BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=bench-results/prof", profiles the service.
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // As `npm start` runs it: the compiled build (`npm run bench` builds it first, as npm start's
  // prestart does). BENCH_MAIN=src/main.ts runs the sources under tsx instead (`npm run dev`).
  const main = process.env.BENCH_MAIN ?? 'dist/main.js';
  return spawn(process.execPath, [...extra, ...(main.endsWith('.ts') ? ['--import', 'tsx', main] : [main])], {
    cwd: process.cwd(),
    // As `npm start` runs it (package.json): two malloc arenas.
    env: { ...process.env, NODE_OPTIONS: '', MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** An SVG chart of a latency distribution (CDF), no dependencies. */
export function latencySvg(series: { name: string; sortedMs: number[] }[]): string {
  const W = 720,
    H = 360,
    L = 60,
    B = 40,
    T = 20,
    R = 20;
  const maxMs = Math.max(1, ...series.map((s) => percentile(s.sortedMs, 99.9)));
  const x = (ms: number) => L + (Math.min(ms, maxMs) / maxMs) * (W - L - R);
  const y = (q: number) => T + (1 - q) * (H - T - B);
  const colours = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c'];
  const paths = series.map((s, i) => {
    const step = Math.max(1, Math.floor(s.sortedMs.length / 400));
    const pts: string[] = [];
    for (let k = 0; k < s.sortedMs.length; k += step) pts.push(`${x(s.sortedMs[k]).toFixed(1)},${y((k + 1) / s.sortedMs.length).toFixed(1)}`);
    return `<polyline fill="none" stroke="${colours[i % colours.length]}" stroke-width="2" points="${pts.join(' ')}"/><text x="${W - R - 200}" y="${T + 16 + i * 16}" fill="${colours[i % colours.length]}" font-size="12">${s.name}</text>`;
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => `<text x="${x(f * maxMs)}" y="${H - 20}" font-size="11" text-anchor="middle">${Math.round(f * maxMs)} ms</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>
<line x1="${L}" y1="${y(0)}" x2="${W - R}" y2="${y(0)}" stroke="#999"/><line x1="${L}" y1="${y(0)}" x2="${L}" y2="${y(1)}" stroke="#999"/>
${[0, 0.5, 0.9, 0.99, 1].map((q) => `<text x="${L - 6}" y="${y(q) + 4}" font-size="11" text-anchor="end">${q}</text>`).join('')}
${ticks.join('')}<text x="${W / 2}" y="${H - 4}" font-size="12" text-anchor="middle">publish → receipt latency (CDF)</text>
${paths.join('\n')}</svg>`;
}
