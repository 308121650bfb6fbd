import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnApp } from '../test/helpers/appProcess';
import { freshDatabase } from '../test/helpers/db';
import { freePort, waitForHttp } from '../test/helpers/processes';
import { startTemporalCluster, temporalServerDir } from '../test/helpers/temporalCluster';
import { childPids, cpuSeconds, descendants, rssMiB, spawnMain, treeCpuSeconds, waitUntil } from './lib';

/** A running service under test: its API, and CPU seconds / resident memory per component. */
export interface Stack {
  name: string;
  description: string;
  api: string;
  /** The service's processes for an outside harness's CPU count (their descendants count too). */
  pids: number[];
  cpu(): Record<string, number>;
  rssMiB(): Record<string, number>;
  stop(): Promise<void>;
}

/**
 * `npm start` as a user runs it: dev server + worker + API in one process + its embedded database
 * (the Postgres server it starts, or PGlite inside it with EMBEDDED_DATABASE=pglite). `onStdout`
 * sees the service's output (its log lines) as it comes.
 */
export async function startEmbedded(admin: string, extraEnv: Record<string, string> = {}, onStdout?: (chunk: string) => void): Promise<Stack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rr-bench-'));
  const [port, tport, uport] = [await freePort(), await freePort(), await freePort()];
  const child = spawnMain({
    DATA_DIR: dataDir,
    PORT: String(port),
    TEMPORAL_DEV_PORT: String(tport),
    TEMPORAL_UI_PORT: String(uport),
    ADMIN_TOKEN: admin,
    LOG_LEVEL: 'warn',
    ...extraEnv,
  });
  let out = '';
  const untilReady = (c: Buffer) => (out += c);
  child.stdout!.on('data', untilReady);
  if (onStdout) child.stdout!.on('data', (c: Buffer) => onStdout(String(c)));
  await waitUntil(() => out.includes('Webhook delivery service is running'), 120_000, 'the service to start');
  child.stdout!.off('data', untilReady); // nothing kept after start (a long run at LOG_LEVEL=info writes much)
  child.stdout!.resume();
  const temporalPid = () => childPids(child.pid!, 'start-dev')[0];
  const postgresPid = () => childPids(child.pid!, 'bin/postgres')[0]; // none with PGlite or DATABASE_URL
  const pglite = (extraEnv.EMBEDDED_DATABASE ?? process.env.EMBEDDED_DATABASE) === 'pglite';
  const service = pglite ? 'API+worker+PGlite' : 'API+worker';
  // The server and its backends; with PGlite the database is inside the service process.
  const postgres = <T>(f: (pid: number) => T): Record<string, T> => (postgresPid() ? { Postgres: f(postgresPid()) } : {});
  return {
    name: 'embedded',
    description: `embedded default (\`npm start\`): Temporal dev server (SQLite) + one process with worker and API + ${pglite ? 'PGlite inside it' : 'its Postgres server (npm binaries)'}`,
    api: `http://127.0.0.1:${port}`,
    pids: [child.pid!], // the dev server and Postgres are its children
    cpu: () => ({ [service]: cpuSeconds(child.pid!), 'Temporal dev server': cpuSeconds(temporalPid()), ...postgres(treeCpuSeconds) }),
    rssMiB: () => ({
      [service]: rssMiB(child.pid!),
      'Temporal dev server': rssMiB(temporalPid()),
      ...postgres((pid) => descendants(pid).reduce((sum, p) => sum + rssMiB(p), 0)),
    }),
    async stop() {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Every `postgres` process on this machine: the server and its backends (exited backends count through the postmaster). */
function postgresCpuSeconds(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (!stat.includes('(postgres)')) continue;
      const f = stat.split(') ')[1].split(' ');
      total += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100; // utime stime cutime cstime
    } catch {
      /* exited meanwhile */
    }
  }
  return total;
}

/**
 * The production shape (as in docker-compose.yml): the official Temporal server on Postgres,
 * a separate API process and worker process, the application database on the same Postgres
 * server. Needs Debian's postgresql and the Temporal server built by
 * scripts/provision-temporal-server.sh (`npm run bench` provisions both when it can).
 */
export async function startPostgresStack(admin: string): Promise<Stack> {
  if (!temporalServerDir()) throw new Error('the Temporal server is not built (scripts/provision-temporal-server.sh needs Go)');
  let stopPostgres = async () => {};
  if (!process.env.TEST_DATABASE_URL) {
    const env = { ...process.env, PG_TEST_DIR: join(tmpdir(), 'rr-bench-pg'), PG_TEST_PORT: String(await freePort()) };
    const out = execFileSync('bash', ['scripts/test-postgres.sh', 'start'], { env, encoding: 'utf8' }).trim().split('\n');
    process.env.TEST_DATABASE_URL = out[out.length - 1].replace(/^TEST_DATABASE_URL=/, '');
    stopPostgres = async () => {
      execFileSync('bash', ['scripts/test-postgres.sh', 'stop'], { env, stdio: 'ignore' });
      delete process.env.TEST_DATABASE_URL;
    };
  }
  const cluster = await startTemporalCluster({ fairness: !/^(false|0|no)$/.test(process.env.TEMPORAL_FAIRNESS ?? '') });
  const app = await freshDatabase(process.env.TEST_DATABASE_URL); // its pool closes in drop()
  const logDir = mkdtempSync(join(tmpdir(), 'rr-bench-stack-'));
  const port = await freePort();
  const common = {
    DATABASE_URL: app.url!,
    TEMPORAL_ADDRESS: cluster.address,
    ADMIN_TOKEN: admin,
    LOG_LEVEL: 'warn',
    DESTINATION_ALLOW_CIDRS: '127.0.0.0/8',
    WORKER_METRICS_PORT: '0',
  };
  // The compiled build, as the image runs it (`npm run bench` builds dist/ first).
  const dist = { distDir: join(process.cwd(), 'dist') };
  const worker = spawnApp('worker', 'src/worker.ts', common, logDir, dist);
  const api = spawnApp('api', 'src/api-server.ts', { ...common, PORT: String(port), HOST: '127.0.0.1' }, logDir, dist);
  await waitForHttp(`http://127.0.0.1:${port}/readyz`, 60_000);
  return {
    name: 'postgres',
    description: 'Postgres-backed stack: Temporal server 1.32 on Postgres + separate API and worker processes + application data on the same Postgres',
    api: `http://127.0.0.1:${port}`,
    // Postgres is not counted: it may be a server shared with other work (TEST_DATABASE_URL).
    pids: [api.child.pid!, worker.child.pid!, cluster.pid],
    cpu: () => ({ API: cpuSeconds(api.child.pid!), worker: cpuSeconds(worker.child.pid!), 'Temporal server': cpuSeconds(cluster.pid), Postgres: postgresCpuSeconds() }),
    rssMiB: () => ({ API: rssMiB(api.child.pid!), worker: rssMiB(worker.child.pid!), 'Temporal server': rssMiB(cluster.pid) }),
    async stop() {
      await Promise.all([api.stop(), worker.stop()]);
      await cluster.stop();
      await app.drop();
      await stopPostgres();
      if (!process.env.BENCH_KEEP_LOGS) rmSync(logDir, { recursive: true, force: true });
    },
  };
}
