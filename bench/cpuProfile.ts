/**
 * Where a service process's CPU goes, from V8 CPU profiles (`--cpu-prof`): each sample is put in
 * the first bucket that matches a frame, from the running function outwards, so time spent in
 * PGlite on behalf of an attempt record counts as PGlite. Used with BENCH_NODE_ARGS="--cpu-prof
 * --cpu-prof-dir=DIR" (README, Performance): `npx tsx bench/cpuProfile.ts DIR [deliveries]`
 * prints one table over every profile in DIR (the main thread and the workflow threads), in CPU
 * ms per delivery when the number of deliveries is given. When the bench wrote DIR/windows.json
 * (bench/lib.ts markProfileWindow), one table per measured run, counting that run's samples only.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Buckets in order of precedence; a frame matches the first whose test it passes. */
const BUCKETS: [string, (f: CallFrame) => boolean][] = [
  ['PGlite (WASM Postgres and its JS)', (f) => f.url.includes('@electric-sql/pglite') || f.url.startsWith('wasm://')],
  ['workflow code (Temporal sandbox)', (f) => f.url.includes('workflow-bundle') || f.url.includes('worker/lib/workflow') || f.url.startsWith('evalmachine')],
  ['Temporal SDK (activations, protobuf, client)', (f) => /@temporalio|protobufjs|@grpc|long\/|core-bridge/.test(f.url)],
  ['signing (HMAC, keys)', (f) => f.url.includes('src/domain/signing') || f.url.includes('internal/crypto')],
  ['outbound POST (undici, sockets)', (f) => f.url.includes('undici') || f.url.includes('src/http/')],
  ['HTTP API (Koa, routing, zod)', (f) => /koa|@koa|src\/api\/|zod|node:_http_server|_http_incoming|_http_outgoing/.test(f.url)],
  ['delivery activities and DB code', (f) => f.url.includes('src/activities/') || f.url.includes('src/db/')],
  ['publish path and dispatcher', (f) => f.url.includes('src/services/')],
  ['logging and metrics (pino, prom-client, OTel)', (f) => /pino|prom-client|@opentelemetry/.test(f.url)],
  ['module loading and start-up (tsx, require, webpack)', (f) => /tsx\/dist|node:internal\/modules|webpack|esbuild|source-map/.test(f.url)],
];
const SPECIAL = new Set(['(garbage collector)', '(idle)', '(program)']);

/** CPU µs per bucket of the samples taken between fromUs and toUs (V8's monotonic clock). */
export function bucketProfile(p: Profile, fromUs = -Infinity, toUs = Infinity): Map<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  let at = p.startTime;
  p.samples.forEach((s, i) => {
    at += p.timeDeltas[i] ?? 0;
    if (at >= fromUs && at <= toUs) selfUs.set(s, (selfUs.get(s) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  const out = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const leaf = byId.get(id)!.callFrame;
    let bucket = SPECIAL.has(leaf.functionName) ? leaf.functionName : undefined;
    for (let x: number | undefined = id; !bucket && x !== undefined; x = parent.get(x)) {
      const f = byId.get(x)!.callFrame;
      bucket = BUCKETS.find(([, test]) => test(f))?.[0];
    }
    bucket ??= 'other (Node internals, timers, promises)';
    out.set(bucket, (out.get(bucket) ?? 0) + us);
  }
  return out;
}

function table(total: Map<string, number>, deliveries: number): string[] {
  const busy = [...total].filter(([k]) => k !== '(idle)').reduce((s, [, us]) => s + us, 0);
  const per = (us: number) => (deliveries ? ` ${(us / 1e3 / deliveries).toFixed(3)} |` : '');
  return [
    `| where | CPU s | share of busy |${deliveries ? ' ms per delivery |' : ''}`,
    `|---|---|---|${deliveries ? '---|' : ''}`,
    ...[...total]
      .filter(([k]) => k !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .map(([k, us]) => `| ${k} | ${(us / 1e6).toFixed(2)} | ${((us / busy) * 100).toFixed(1)} % |${per(us)}`),
    `| **busy in all** | **${(busy / 1e6).toFixed(2)}** | 100 % |${deliveries ? ` **${(busy / 1e3 / deliveries).toFixed(3)}** |` : ''}`,
  ];
}

if (process.argv[1]?.endsWith('cpuProfile.ts')) {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: npx tsx bench/cpuProfile.ts <dir of .cpuprofile files> [deliveries]');
  const profiles = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Profile);
  const windowsFile = join(dir, 'windows.json');
  const windows: { label: string; startUs: number; endUs: number; deliveries: number }[] = existsSync(windowsFile)
    ? JSON.parse(readFileSync(windowsFile, 'utf8'))
    : [{ label: 'whole profile', startUs: -Infinity, endUs: Infinity, deliveries: Number(process.argv[3] ?? 0) }];
  for (const w of windows) {
    const total = new Map<string, number>();
    for (const p of profiles) for (const [k, us] of bucketProfile(p, w.startUs, w.endUs)) total.set(k, (total.get(k) ?? 0) + us);
    console.log(`\n**${w.label}** (${w.deliveries} deliveries in ${((w.endUs - w.startUs) / 1e6).toFixed(1)} s)\n`);
    console.log(table(total, w.deliveries).join('\n'));
  }
}
