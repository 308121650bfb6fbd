import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { waitFor } from './receiver';
import { TEST_SECRET_KEYS } from './secretKeys';

const ROOT = resolve(__dirname, '..', '..');

export async function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => ok(port));
    });
  });
}

export interface ServiceProcess {
  child: ChildProcess;
  /** Everything the process printed on stdout so far. */
  output(): string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<number | string>;
}

/** Runs `src/api-server.ts`, `src/worker.ts` or `src/main.ts` (`npm start`) as a real child process with the given environment. */
export function spawnService(entry: 'api-server' | 'worker' | 'main', env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', `src/${entry}.ts`], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '', LOG_LEVEL: 'info', HOST: '127.0.0.1', SECRET_ENCRYPTION_KEYS: TEST_SECRET_KEYS, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<number | string>((ok) => child.once('exit', (code, signal) => ok(code ?? signal ?? -1)));
  return { child, output: () => out, exited };
}

export async function waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () =>
      (await fetch(url).then(
        (r) => r.ok,
        () => false,
      )) || undefined,
    `${url} to answer`,
    timeoutMs,
    200,
  );
}
