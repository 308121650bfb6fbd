import { Connection } from '@temporalio/client';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Client as PgClient } from 'pg';
import { TEMPORAL_CLI_VERSION } from '../../src/temporal/binaries';

/**
 * The official Temporal server (built by scripts/provision-temporal-server.sh) on a real
 * Postgres store: two fresh databases on the TEST_DATABASE_URL server (default store and
 * visibility, postgres12 plugin), schema applied by temporal-sql-tool, one process running all
 * four services on free loopback ports, namespace `default` and the Rr* search attributes.
 * Unlike the dev server (SQLite in one process), this is the production persistence path.
 */
export interface TemporalCluster {
  /** host:port of the frontend. */
  address: string;
  namespace: string;
  /** The server's log (JSON lines), for diagnosing a failure. */
  logFile: string;
  /** The server process (for the benchmark's CPU and memory figures). */
  pid: number;
  stop(): Promise<void>;
}

const exec = promisify(execFile);
const ROOT = resolve(__dirname, '..', '..');
const SEARCH_ATTRIBUTES = ['RrAccountId', 'RrEndpointId', 'RrEventType', 'RrDeliveryStatus'];

/** The provisioned server folder, or undefined when scripts/provision-temporal-server.sh has not run. */
export function temporalServerDir(): string | undefined {
  if (process.env.TEMPORAL_SERVER_DIR) return process.env.TEMPORAL_SERVER_DIR;
  const script = readFileSync(join(ROOT, 'scripts', 'provision-temporal-server.sh'), 'utf8');
  const version = process.env.TEMPORAL_SERVER_VERSION ?? /^DEFAULT_VERSION=(\S+)$/m.exec(script)?.[1];
  const dir = join(process.env.TEMPORAL_SERVER_TOOLS_DIR ?? join(ROOT, '.tools', 'temporal-server'), version ?? '?');
  return existsSync(join(dir, 'VERSION')) ? dir : undefined;
}

export function temporalCliPath(): string {
  return process.env.TEMPORAL_CLI_PATH ?? join(process.env.TEMPORAL_TOOLS_DIR ?? join(ROOT, '.tools', 'temporal'), `temporal-${TEMPORAL_CLI_VERSION}`);
}

/**
 * PEM files for a frontend that requires mTLS: its certificate (valid for `serverName`), the CA
 * that signed it and that client certificates must chain to, and a client certificate for the
 * server's own system worker and this helper's CLI calls.
 */
export interface ClusterTls {
  ca: string;
  serverCert: string;
  serverKey: string;
  serverName: string;
  clientCert: string;
  clientKey: string;
}

export async function startTemporalCluster(
  opts: { namespace?: string; startTimeoutMs?: number; tls?: ClusterTls; /** matching.enableFairness (default true). */ fairness?: boolean } = {},
): Promise<TemporalCluster> {
  const namespace = opts.namespace ?? 'default';
  const serverDir = temporalServerDir();
  if (!serverDir) throw new Error('Temporal server not provisioned: run scripts/provision-temporal-server.sh (.ci/run does)');
  const base = process.env.TEST_DATABASE_URL;
  if (!base) throw new Error('TEST_DATABASE_URL is not set: the Temporal cluster needs a real Postgres server');

  const pg = new URL(base);
  const suffix = randomBytes(5).toString('hex');
  const dbs = { main: `temporal_${suffix}`, vis: `temporal_vis_${suffix}` };
  const dir = mkdtempSync(join(tmpdir(), 'rr-temporal-cluster-'));
  const logFile = join(dir, 'server.log');
  let server: ChildProcess | undefined;

  const stop = async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((ok) => server!.once('exit', ok));
      server.kill('SIGTERM');
      const timer = setTimeout(() => server!.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await withPg(base, async (c) => {
      for (const db of Object.values(dbs)) await c.query(`drop database if exists ${db} with (force)`);
    }).catch((err) => console.warn(`[temporalCluster] dropping ${Object.values(dbs).join(', ')}: ${(err as Error).message}`));
    if (!process.env.KEEP_TEMPORAL_CLUSTER_DIR) rmSync(dir, { recursive: true, force: true });
  };

  try {
    await withPg(base, async (c) => {
      for (const db of Object.values(dbs)) await c.query(`create database ${db}`);
    });
    const sqlTool = join(serverDir, 'temporal-sql-tool');
    const schemaRoot = join(serverDir, 'schema', 'postgresql', 'v12');
    for (const [db, schema] of [
      [dbs.main, 'temporal'],
      [dbs.vis, 'visibility'],
    ] as const) {
      const args = ['--plugin', 'postgres12', '--ep', pg.hostname, '--port', pg.port || '5432', '--user', decodeURIComponent(pg.username || 'postgres'), '--db', db];
      if (pg.password) args.push('--password', decodeURIComponent(pg.password));
      await run(sqlTool, [...args, 'setup-schema', '-v', '0.0']);
      await run(sqlTool, [...args, 'update-schema', '-d', join(schemaRoot, schema, 'versioned')]);
    }

    const [frontend, frontendMember, history, historyMember, matching, matchingMember, worker, workerMember] = await freePorts(8);
    const address = `127.0.0.1:${frontend}`;
    const dynamicConfig = join(dir, 'dynamicconfig.yaml');
    writeFileSync(dynamicConfig, DYNAMIC_CONFIG + (opts.fairness === false ? '' : FAIRNESS_CONFIG));
    const configFile = join(dir, 'config.yaml');
    writeFileSync(
      configFile,
      serverConfig({
        pg,
        dbs,
        address,
        dynamicConfig,
        tls: opts.tls,
        ports: { frontend, frontendMember, history, historyMember, matching, matchingMember, worker, workerMember },
      }),
    );

    const log = createWriteStream(logFile);
    server = spawn(join(serverDir, 'temporal-server'), ['--config-file', configFile, '--allow-no-auth', 'start'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout!.pipe(log);
    server.stderr!.pipe(log);
    const exitedEarly = new Promise<never>((_, fail) =>
      server!.once('exit', (code, signal) => fail(new Error(`temporal-server exited during start-up (code ${code}, signal ${signal})`))),
    );
    exitedEarly.catch(() => undefined);

    const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
    await Promise.race([exitedEarly, waitForFrontend(address, deadline, opts.tls)]);
    const cli = temporalCliPath();
    const cliArgs = ['--address', address, '--command-timeout', '10s'];
    if (opts.tls)
      cliArgs.push('--tls-ca-path', opts.tls.ca, '--tls-cert-path', opts.tls.clientCert, '--tls-key-path', opts.tls.clientKey, '--tls-server-name', opts.tls.serverName);
    await Promise.race([
      exitedEarly,
      retry(() => run(cli, ['operator', 'namespace', 'create', ...cliArgs, '--namespace', namespace, '--retention', '24h']), 'creating the namespace', deadline, /already exists/i),
    ]);
    // The namespace must be visible to every service before workers poll (namespace cache refresh).
    await Promise.race([exitedEarly, retry(() => run(cli, ['workflow', 'list', ...cliArgs, '--namespace', namespace, '--limit', '1']), 'the namespace to be usable', deadline)]);
    await Promise.race([
      exitedEarly,
      retry(
        () => run(cli, ['operator', 'search-attribute', 'create', ...cliArgs, '--namespace', namespace, '--type', 'Keyword', ...SEARCH_ATTRIBUTES.flatMap((n) => ['--name', n])]),
        'registering the search attributes',
        deadline,
        /already exists/i,
      ),
    ]);
    return { address, namespace, logFile, pid: server.pid!, stop };
  } catch (err) {
    const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n') : '';
    await stop();
    throw new Error(`${(err as Error).message}${tail ? `\n--- last lines of the Temporal server log ---\n${tail}` : ''}`, { cause: err });
  }
}

/** One process, all services; only loopback ports; no metrics, pprof or HTTP API. */
function serverConfig(o: {
  pg: URL;
  dbs: { main: string; vis: string };
  address: string;
  dynamicConfig: string;
  tls?: ClusterTls;
  ports: Record<'frontend' | 'frontendMember' | 'history' | 'historyMember' | 'matching' | 'matchingMember' | 'worker' | 'workerMember', number>;
}): string {
  const q = JSON.stringify; // a JSON string is a valid YAML scalar
  const store = (db: string, maxConns: number) => `
      sql:
        pluginName: postgres12
        databaseName: ${q(db)}
        connectAddr: ${q(`${o.pg.hostname}:${o.pg.port || '5432'}`)}
        connectProtocol: tcp
        user: ${q(decodeURIComponent(o.pg.username || 'postgres'))}
        password: ${q(decodeURIComponent(o.pg.password))}
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: 1h`;
  const service = (grpc: number, member: number) => `
    rpc:
      grpcPort: ${grpc}
      membershipPort: ${member}
      bindOnIP: 127.0.0.1`;
  return `log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:${store(o.dbs.main, 16)}
    visibility:${store(o.dbs.vis, 4)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1${o.tls ? tlsConfig(o.tls) : ''}
services:
  frontend:${service(o.ports.frontend, o.ports.frontendMember)}
  history:${service(o.ports.history, o.ports.historyMember)}
  matching:${service(o.ports.matching, o.ports.matchingMember)}
  worker:${service(o.ports.worker, o.ports.workerMember)}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: ${q(o.address)}
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: ${q(o.dynamicConfig)}
  pollInterval: 10s
`;
}

// Test speed: a new namespace and new search attributes are seen at once, as on the dev server;
// activities may be handed to the worker that completed the workflow task (eager dispatch).
const DYNAMIC_CONFIG = `system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
system.namespaceCacheRefreshInterval:
  - value: 1s
system.enableActivityEagerExecution:
  - value: true
limit.maxIDLength:
  - value: 255
`;
/** Task-queue fairness between accounts (the service sets the account id as fairness key). */
const FAIRNESS_CONFIG = `matching.enableFairness:
  - value: true
`;

/** The frontend requires client certificates (mTLS); the server's system worker presents one too. */
function tlsConfig(t: ClusterTls): string {
  const q = JSON.stringify;
  return `
  tls:
    frontend:
      server:
        certFile: ${q(t.serverCert)}
        keyFile: ${q(t.serverKey)}
        requireClientAuth: true
        clientCaFiles: [${q(t.ca)}]
      client:
        serverName: ${q(t.serverName)}
        rootCaFiles: [${q(t.ca)}]
    systemWorker:
      certFile: ${q(t.clientCert)}
      keyFile: ${q(t.clientKey)}
      client:
        serverName: ${q(t.serverName)}
        rootCaFiles: [${q(t.ca)}]`;
}

async function waitForFrontend(address: string, deadline: number, tls?: ClusterTls): Promise<void> {
  const tlsOptions = tls
    ? {
        tls: {
          serverRootCACertificate: readFileSync(tls.ca),
          serverNameOverride: tls.serverName,
          clientCertPair: { crt: readFileSync(tls.clientCert), key: readFileSync(tls.clientKey) },
        },
      }
    : {};
  for (;;) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2_000, ...tlsOptions });
      try {
        const { status } = await connection.healthService.check({});
        if (status === 1) return; // SERVING
      } finally {
        await connection.close();
      }
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`Temporal frontend ${address} did not become healthy in time`);
    await sleep(250);
  }
}

async function retry(fn: () => Promise<unknown>, what: string, deadline: number, okIf?: RegExp): Promise<void> {
  for (;;) {
    try {
      await fn();
      return;
    } catch (err) {
      const message = (err as Error).message;
      if (okIf?.test(message)) return;
      if (Date.now() > deadline) throw new Error(`timed out ${what}: ${message}`, { cause: err });
    }
    await sleep(500);
  }
}

async function run(file: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await exec(file, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string };
    throw new Error(`${file.split('/').pop()} ${args.join(' ')} failed: ${(e.stderr || e.stdout || e.message).trim()}`, { cause: err });
  }
}

async function withPg<T>(url: string, fn: (c: PgClient) => Promise<T>): Promise<T> {
  const c = new PgClient({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * n distinct free loopback ports below 32768, all held open together so no two are the same.
 * Below 32768 because the server stores membership ports in a Postgres smallint (an ephemeral
 * port such as 46803 fails with "out of range for type smallint"); Linux's ephemeral range
 * starts at 32768, so outgoing connections do not take them either.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    while (servers.length < n) {
      const port = 20_000 + Math.floor(Math.random() * 12_000);
      const s = createServer();
      const ok = await new Promise<boolean>((done) => {
        s.once('error', () => done(false));
        s.listen(port, '127.0.0.1', () => done(true));
      });
      if (ok) servers.push(s);
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
