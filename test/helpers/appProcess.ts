import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { waitFor } from './receiver';
import { TEST_SECRET_KEYS } from './secretKeys';

/**
 * One real service process (`node --import tsx src/api-server.ts` or `src/worker.ts`) as a
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

export function spawnApp(name: string, entry: 'src/api-server.ts' | 'src/worker.ts', env: Record<string, string>, logDir: string): AppProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
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
