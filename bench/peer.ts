/**
 * The peer scenario (`BENCH_SCENARIOS=peer` or `BENCH_PEER=svix`): this service and Svix on the same
 * machine, in the same run, driven by the same load harness, the peer kit's loadgen.mjs
 * (../shared/peers/, see its README). The kit's svix-up.sh starts Svix with its own Postgres and
 * Redis on free loopback ports in a scratch folder of this bench; svix-down.sh stops exactly those
 * processes at the end (or on Ctrl-C). Per workload, Svix runs first, then this service, 2 s apart,
 * BENCH_PEER_RUNS times (medians); the paced workload runs once each.
 *
 * Without the kit (or when Svix does not start) it says why and measures this service alone: with
 * loadgen.mjs when it is there, else with this bench's own harness (same workloads; its latency
 * starts at the event's createdAt instead of the publish request's send time).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../test/helpers/processes';
import { descendants } from './lib';
import { summarize, workloadLabel, type LoadgenResult, type PeerRow, type PeerWorkload } from './peerTable';
import type { Stack } from './stacks';

export interface PeerOptions {
  admin: string;
  concurrency: number;
  /** As fast as possible, BENCH_PEER_RUNS times each. */
  workloads: PeerWorkload[];
  /** The sustained-rate workload (run once), if any. */
  paced?: PeerWorkload;
  runs: number;
  /** loadgen.mjs warm-up events before each measured run. */
  warmup: number;
  stacks: string[];
  start(name: string): Promise<Stack>;
  /** This service alone with the bench's own harness (no kit). */
  alone(svc: Stack, w: PeerWorkload): Promise<LoadgenResult>;
}

export interface PeerOutcome {
  kit?: string;
  /** Why Svix was not measured. */
  why?: string;
  harness: 'loadgen.mjs' | 'bench';
  svixLogLevel: string;
  loadBefore: string;
  loadAfter: string;
  stacks: {
    name: string;
    description: string;
    rows: PeerRow[];
    memory: MemoryFigures;
    raw: { workload: PeerWorkload; system: string; run: number; result: LoadgenResult & { line?: string } }[];
  }[];
}

/** How long after start both systems' idle memory is measured (BENCH_PEER_IDLE_WAIT, seconds). */
const PEER_IDLE_WAIT_MS = Number(process.env.BENCH_PEER_IDLE_WAIT ?? 30) * 1000;

/** Proportional set size (MiB) of these processes and all their descendants: shared pages (Postgres' shared buffers) counted once. */
function pssMiB(pids: number[]): number {
  const all = new Set<number>();
  for (const pid of pids) descendants(pid).forEach((p) => all.add(p));
  let kib = 0;
  for (const pid of all) {
    try {
      const line = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
        .split('\n')
        .find((l) => l.startsWith('Pss:'));
      kib += Number(line?.split(/\s+/)[1] ?? 0);
    } catch {
      /* exited meanwhile */
    }
  }
  return kib / 1024;
}

/** Memory of both systems (PSS, MiB, every process of each): just started and idle, and right after the as-fast-as-possible runs. */
export interface MemoryFigures {
  rr: { idle: number; loaded?: number };
  svix?: { idle: number; loaded?: number };
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

export function peerKitDir(): string {
  return resolve(process.env.BENCH_PEER_KIT ?? join(process.cwd(), '..', 'shared', 'peers'));
}

/** What is missing from the kit folder, or undefined when it has the harness (and, with `svix`, the scripts). */
function kitMissing(kit: string, svix: boolean): string | undefined {
  if (!existsSync(kit)) return `no peer kit at ${kit} (BENCH_PEER_KIT sets another folder)`;
  const need = ['loadgen.mjs', ...(svix ? ['svix-up.sh', 'svix-down.sh', 'svix-server.gz'] : [])].filter((f) => !existsSync(join(kit, f)));
  return need.length ? `the peer kit at ${kit} has no ${need.join(', ')}` : undefined;
}

/** Runs a command, echoing its output with a prefix; resolves with its exit code and output. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, prefix: string, echo: (line: string) => boolean = () => true): Promise<{ code: number; out: string }> {
  return new Promise((ok) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (c: Buffer) => {
      out += c.toString('utf8');
      const lines = out.split('\n');
      out = lines.pop()!; // keep the unfinished line
      for (const l of lines) {
        all.push(l);
        if (l.trim() && echo(l)) console.log(`${prefix} ${l}`);
      }
    };
    const all: string[] = [];
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('error', (err) => ok({ code: 1, out: String(err) }));
    // 'exit', not 'close': svix-up.sh leaves Redis holding its stdout open.
    child.on('exit', (code) =>
      setTimeout(() => {
        if (out.trim()) all.push(out);
        ok({ code: code ?? 1, out: all.join('\n') });
      }, 50),
    );
  });
}

/** The Svix peer: started by the kit's svix-up.sh in this bench's scratch folder, on free ports. */
class SvixPeer {
  readonly dir = process.env.BENCH_PEER_DIR ?? join(tmpdir(), 'rr-bench-svix-peer');
  private up = false;
  private readonly onSignal = () => {
    this.downSync();
    process.exit(130);
  };

  constructor(
    private readonly kit: string,
    readonly logLevel: string,
  ) {}

  /** Undefined when Svix is up; else why not. */
  async start(): Promise<string | undefined> {
    const env = {
      ...process.env,
      SVIX_PEER_DIR: this.dir,
      SVIX_PORT: String(await freePort()),
      SVIX_PG_PORT: String(await freePort()),
      SVIX_REDIS_PORT: String(await freePort()),
      SVIX_FRESH: '1', // apps and messages of earlier runs would not make Svix slower, but start like this service: empty
      SVIX_LOG_LEVEL: this.logLevel,
    };
    process.once('SIGINT', this.onSignal).once('SIGTERM', this.onSignal);
    this.up = true; // from here on svix-down.sh runs at the end (it stops only what svix-up.sh recorded)
    const { code, out } = await run('bash', [join(this.kit, 'svix-up.sh')], env, '[svix-up]');
    if (code === 0) return undefined;
    this.downSync();
    return `svix-up.sh failed (exit ${code}): ${out.trim().split('\n').slice(-2).join(' ')}`;
  }

  /** The environment loadgen.mjs needs for `--system svix`: only svix.env (no URL, token or PIDs of the caller's). */
  /** svix-server, Redis and Postgres, as svix-up.sh recorded them. */
  pids(): number[] {
    const m = /^PIDS="([^"]*)"/m.exec(readFileSync(join(this.dir, 'svix.env'), 'utf8'));
    return (m?.[1] ?? '').split(/\s+/).filter(Boolean).map(Number);
  }

  env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, SVIX_PEER_DIR: this.dir };
    for (const k of ['SVIX_URL', 'SVIX_TOKEN', 'SVIX_PIDS', 'PIDS']) delete env[k];
    return env;
  }

  downSync(): void {
    if (!this.up) return;
    this.up = false;
    process.off('SIGINT', this.onSignal).off('SIGTERM', this.onSignal);
    const res = spawnSync('bash', [join(this.kit, 'svix-down.sh')], { env: { ...process.env, SVIX_PEER_DIR: this.dir }, encoding: 'utf8' });
    for (const l of `${res.stdout ?? ''}${res.stderr ?? ''}`.split('\n')) if (l.trim()) console.log(`[svix-down] ${l}`);
  }
}

export async function peer(opts: PeerOptions): Promise<PeerOutcome> {
  const kit = peerKitDir();
  const svixLogLevel = process.env.BENCH_PEER_LOG_LEVEL ?? 'warn';
  const loadBefore = loadavg();
  let why = kitMissing(kit, true);
  const harness = kitMissing(kit, false) ? 'bench' : 'loadgen.mjs';
  const svix = why ? undefined : new SvixPeer(kit, svixLogLevel);
  if (svix) why = await svix.start();
  if (why) console.warn(`[peer] Svix is not measured: ${why}. Measuring this service alone with ${harness === 'bench' ? "the bench's own harness" : 'loadgen.mjs'}.`);
  const outDir = mkdtempSync(join(tmpdir(), 'rr-bench-peer-'));
  const stacks: PeerOutcome['stacks'] = [];
  let seq = 0;

  const loadgen = async (system: 'svix' | 'rr', w: PeerWorkload, env: NodeJS.ProcessEnv): Promise<LoadgenResult & { line?: string }> => {
    const out = join(outDir, `${system}-${++seq}.json`);
    const args = [
      join(kit, 'loadgen.mjs'),
      `--system=${system}`,
      `--n=${w.events}`,
      `--f=${w.fanout}`,
      `--c=${opts.concurrency}`,
      `--rate=${w.rate}`,
      `--warmup=${opts.warmup}`,
      `--out=${out}`,
    ];
    // loadgen prints its JSON, then one line: show the line (and any error), not the JSON.
    const { code, out: text } = await run(process.execPath, args, env, `[peer ${system}]`, (l) => /^(svix|rr) N=|error|warning/i.test(l));
    if (!existsSync(out)) throw new Error(`loadgen.mjs --system ${system} exited ${code} without a result: ${text.trim().split('\n').slice(-3).join(' ')}`);
    return JSON.parse(readFileSync(out, 'utf8'));
  };

  try {
    for (const name of opts.stacks) {
      const svc = await opts.start(name);
      const raw: PeerOutcome['stacks'][number]['raw'] = [];
      let memory: MemoryFigures = { rr: { idle: NaN } };
      try {
        const rrEnv = { ...process.env, RR_URL: svc.api, RR_ADMIN_TOKEN: opts.admin, PIDS: svc.pids.join(' ') };
        const measure = async (w: PeerWorkload, runNo: number) => {
          console.log(`[peer] ${name}, run ${runNo}: ${workloadLabel(w)}`);
          if (svix) {
            raw.push({ workload: w, system: 'svix', run: runNo, result: await loadgen('svix', w, svix.env()) });
            await new Promise((r) => setTimeout(r, 2_000)); // as the kit's --system both
          }
          const rr = harness === 'loadgen.mjs' ? await loadgen('rr', w, rrEnv) : await opts.alone(svc, w);
          raw.push({ workload: w, system: 'rr', run: runNo, result: rr });
        };
        // Idle means settled: right after start the service still holds its start-up garbage (3 s
        // after start it measured ~1,090 MiB, 30 s after ~650).
        await new Promise((r) => setTimeout(r, PEER_IDLE_WAIT_MS));
        memory = { rr: { idle: pssMiB(svc.pids) }, svix: svix ? { idle: pssMiB(svix.pids()) } : undefined };
        console.log(`[peer] memory idle (PSS): this service ${memory.rr.idle.toFixed(0)} MiB${memory.svix ? `, Svix ${memory.svix.idle.toFixed(0)} MiB` : ''}`);
        // Warm-up, not measured: the workflow bundle, JIT, connections (both systems).
        const warm = { events: Math.min(500, opts.workloads[0]?.events ?? 500), fanout: 1, rate: 0 };
        console.log(`[peer] ${name}: warm-up (${warm.events} events each, not measured)`);
        if (svix) await loadgen('svix', warm, svix.env());
        if (harness === 'loadgen.mjs') await loadgen('rr', warm, rrEnv);
        else await opts.alone(svc, warm);
        for (let r = 1; r <= opts.runs; r++) for (const w of opts.workloads) await measure(w, r);
        memory.rr.loaded = pssMiB(svc.pids);
        if (memory.svix && svix) memory.svix.loaded = pssMiB(svix.pids());
        console.log(
          `[peer] memory after the runs (PSS): this service ${memory.rr.loaded.toFixed(0)} MiB${memory.svix?.loaded ? `, Svix ${memory.svix.loaded.toFixed(0)} MiB` : ''}`,
        );
        if (opts.paced) await measure(opts.paced, 1);
      } finally {
        await svc.stop().catch((err: Error) => console.warn(`[${name}] stopping: ${err.message}`));
      }
      const workloads = [...opts.workloads, ...(opts.paced ? [opts.paced] : [])];
      const rows = workloads.map((w): PeerRow => {
        const of = (system: string) => raw.filter((x) => x.workload === w && x.system === system).map((x) => x.result);
        const rr = of('rr');
        const sv = of('svix');
        return { workload: w, rr: rr.length ? summarize(rr) : undefined, svix: sv.length ? summarize(sv) : undefined };
      });
      stacks.push({ name, description: svc.description, rows, memory, raw });
    }
  } finally {
    svix?.downSync();
    rmSync(outDir, { recursive: true, force: true });
  }
  return { kit: existsSync(kit) ? kit : undefined, why, harness, svixLogLevel, loadBefore, loadAfter: loadavg(), stacks };
}
