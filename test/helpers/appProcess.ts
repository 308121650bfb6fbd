import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { waitFor } from './receiver';
import { TEST_SECRET_KEYS } from './secretKeys';

/**
 * One real service process (`node --import tsx src/api-server.ts` or `src/worker.ts`, or the
 * compiled `node <dist>/api-server.js` / `worker.js`) as a
 * deployment runs it: its own env, stdout parsed as the JSON log lines the service writes
 * (kept in `lines`), stdout+stderr also copied to `<logDir>/<name>.log` for diagnosis.
 */
export interface AppProcess {
  name: string;
  child: ChildProcess;
  /** Every JSON log line written to stdout so far, in order. */
  lines: Record<string, unknown>[];
  logFile: string;
  exited: Promise<void>;
  alive(): boolean;
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

const ROOT = resolve(__dirname, '..', '..');

/**
 * `distDir` (from buildApp()): run the compiled entry point there with plain node, as the image
 * does, instead of the TypeScript source through tsx.
 */
export function spawnApp(name: string, entry: 'src/api-server.ts' | 'src/worker.ts', env: Record<string, string>, logDir: string, opts: { distDir?: string } = {}): AppProcess {
  const args = opts.distDir ? [join(opts.distDir, entry.replace(/^src\//, '').replace(/\.ts$/, '.js'))] : ['--import', 'tsx', entry];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '', SECRET_ENCRYPTION_KEYS: TEST_SECRET_KEYS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logFile = join(logDir, `${name}.log`);
  const log = createWriteStream(logFile);
  child.stderr!.pipe(log, { end: false });
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    log.write(line + '\n');
    if (!line.startsWith('{')) return;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      /* not one of ours */
    }
  });
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  void exited.then(() => setTimeout(() => log.end(), 100));
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    name,
    child,
    lines,
    logFile,
    exited,
    alive,
    waitForLog: (msg, timeoutMs = 60_000) =>
      waitFor(
        () => {
          const found = lines.find((l) => l.msg === msg);
          if (found) return found;
          if (!alive()) throw new Error(`${name} exited (code ${child.exitCode}, signal ${child.signalCode}) before logging ${msg}; see ${logFile}`);
          return undefined;
        },
        `${name} to log ${msg}`,
        timeoutMs,
        100,
      ),
    async stop(graceMs = 5_000) {
      if (!alive()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => alive() && child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * `npm run build` into a private folder inside the project (`.test-build/<random>`, so the
 * compiled code finds node_modules and a developer's dist/ is left alone): what the image runs.
 */
export async function buildApp(timeoutMs = 240_000): Promise<{ dir: string; remove(): void }> {
  const dir = join(ROOT, '.test-build', randomBytes(4).toString('hex'));
  await new Promise<void>((ok, fail) =>
    execFile(
      process.execPath,
      [join(ROOT, 'scripts', 'build.mjs'), '--out-dir', dir],
      { cwd: ROOT, timeout: timeoutMs, env: { ...process.env, NODE_OPTIONS: '' } },
      (err, _stdout, stderr) => (err ? fail(new Error(`npm run build failed: ${err.message}\n${stderr}`)) : ok()),
    ),
  );
  return {
    dir,
    remove() {
      rmSync(dir, { recursive: true, force: true });
      if (!readdirSync(join(ROOT, '.test-build')).length) rmSync(join(ROOT, '.test-build'), { recursive: true, force: true });
    },
  };
}
