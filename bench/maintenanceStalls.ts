import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerKitDir } from './peer';
import { startEmbedded } from './stacks';

/**
 * The tail at a sustained rate on a database that is no longer small, and PGlite's maintenance
 * stalls inside it: starts the embedded default, sends BENCH_PRELOAD (15,000) events × 1 endpoint as
 * fast as possible, then BENCH_TARGET (300) events/s × 1 endpoint for 30 s, both with the peer
 * kit's loadgen.mjs, and prints the harness's line for each and every `pglite.maintenance` line of
 * the sustained window (table, VACUUM or ANALYZE, ms). `npx tsx bench/maintenanceStalls.ts`.
 */
async function main() {
  const loadgen = join(peerKitDir(), 'loadgen.mjs');
  const admin = `admin_${'x'.repeat(32)}`;
  const maintenance: { at: number; line: Record<string, unknown> }[] = [];
  const svc = await startEmbedded(admin, { LOG_LEVEL: 'info' }, (chunk) => {
    for (const l of chunk.split('\n')) if (l.includes('"pglite.maintenance"')) maintenance.push({ at: Date.now(), line: JSON.parse(l) as Record<string, unknown> });
  });
  const outDir = mkdtempSync(join(tmpdir(), 'rr-stalls-'));
  try {
    const env = { ...process.env, RR_URL: svc.api, RR_ADMIN_TOKEN: admin, PIDS: svc.pids.join(' ') };
    const run = (args: string[]) =>
      new Promise<string>((ok, ko) =>
        execFile(
          process.execPath,
          [loadgen, '--system=rr', ...args, '--c=32', '--warmup=20', `--out=${join(outDir, 'loadgen.json')}`],
          { env, encoding: 'utf8', maxBuffer: 1e8 },
          (err, stdout) => (err ? ko(err) : ok(stdout.trim().split('\n').pop()!)),
        ),
      );
    console.log('as fast as possible:', await run([`--n=${process.env.BENCH_PRELOAD ?? 15_000}`, '--f=1', '--rate=0']));
    const rate = Number(process.env.BENCH_TARGET ?? 300);
    const t0 = Date.now();
    console.log('sustained:', await run([`--n=${rate * 30}`, '--f=1', `--rate=${rate}`]));
    const t1 = Date.now();
    for (const m of maintenance.filter((x) => x.at >= t0 && x.at <= t1))
      console.log(`  +${m.at - t0} ms  ${String(m.line.vacuum ? 'vacuum (analyze)' : 'analyze')} ${String(m.line.table)}: ${String(m.line.ms)} ms`);
  } finally {
    await svc.stop();
    rmSync(outDir, { recursive: true, force: true });
  }
}

void main();
