/**
 * Who runs an embedded Postgres cluster: the owner file DATA_DIR/postgres.owner, taken before
 * anything touches the cluster and given back when its server stopped. Two services must never run
 * (or initialise) one cluster at once: Postgres' own postmaster.pid guard does not reach across
 * containers (pid namespaces) that share a volume.
 *
 * The file names its process (pid, start time, pid namespace, boot) and is touched every few
 * seconds while held. A holder in this process's pid namespace on this boot is checked directly
 * (alive, same start time: a pid reused by another process is not it); any other holder counts
 * as gone once the file has not been touched for OWNER_STALE_MS.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { linkSync, readFileSync, readlinkSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';

/** How often a holder touches its owner file, and how long untouched a file from elsewhere counts as held. */
export const OWNER_HEARTBEAT_MS = 5_000;
export const OWNER_STALE_MS = 30_000;

interface OwnerRecord {
  pid: number;
  start?: string;
  ns?: string;
  boot?: string;
  nonce?: string;
}

const readOr = (read: () => string): string | undefined => {
  try {
    return read().trim() || undefined;
  } catch {
    return undefined;
  }
};

/** /proc/<pid>/stat's fields from the state on (field 3), after the command name, which may hold spaces and parentheses; undefined without /proc. */
function procStat(pid: number): string[] | undefined {
  const stat = readOr(() => readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** When a process started (Linux: clock ticks since boot; elsewhere `ps`'s start time): with its pid, it tells a process from a later one that reused the pid. */
export function processStart(pid: number): string | undefined {
  const stat = procStat(pid);
  if (stat) return stat[19]; // field 22
  return readOr(() => execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
}

/** Alive and not a zombie (a zombie's pid answers signals until its parent reaps it). */
export function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return procStat(pid)?.[0] !== 'Z';
}

const here = (): Omit<OwnerRecord, 'nonce'> => ({
  pid: process.pid,
  start: processStart(process.pid),
  ns: readOr(() => readlinkSync('/proc/self/ns/pid')),
  boot: readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')),
});

/** The file's record; a bare pid is the format of earlier versions; undefined while a writer has not finished (or for garbage). */
function parse(text: string): OwnerRecord | undefined {
  if (/^\d+$/.test(text.trim())) return { pid: Number(text.trim()) };
  try {
    const r = JSON.parse(text) as OwnerRecord;
    return typeof r.pid === 'number' ? r : undefined;
  } catch {
    return undefined;
  }
}

type Holder = 'live' | 'stale' | 'unknown';

function holder(record: OwnerRecord | undefined, ageMs: number, me: Omit<OwnerRecord, 'nonce'>): Holder {
  if (!record) return ageMs > OWNER_STALE_MS ? 'stale' : 'unknown';
  const sameSpace = record.boot === me.boot && record.ns === me.ns; // both unknown on macOS: one machine, no namespaces
  if (!sameSpace && record.boot !== undefined) return ageMs > OWNER_STALE_MS ? 'stale' : 'unknown';
  // This very process: an earlier start of it that did not give the file back (starts here are one at a time per cluster).
  if (record.pid === me.pid && record.start === me.start) return 'stale';
  if (!running(record.pid)) return 'stale';
  if (!record.start) return 'live'; // an earlier version's file: a running pid is taken to be it
  const start = processStart(record.pid);
  return start === undefined || start === record.start ? 'live' : 'stale'; // unreadable: fail closed
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ClusterOwnership {
  /** Gives the file back (only if it is still this start's: a later start may have taken it over). */
  release(): void;
}

/**
 * Takes the owner file: waits (up to OWNER_STALE_MS and a little) while a holder elsewhere may
 * still be alive, and refuses one that is.
 */
export async function takeOwnership(ownerFile: string, dataDir: string): Promise<ClusterOwnership> {
  const me = here();
  const nonce = randomUUID();
  const mine = JSON.stringify({ ...me, nonce });
  const inUse = (pid: number) =>
    new Error(`The embedded Postgres in ${dataDir} is in use by another service process (pid ${pid}, see ${ownerFile}). Stop it, or give this one another DATA_DIR.`);
  const draft = `${ownerFile}.${nonce}`;
  writeFileSync(draft, mine, { mode: 0o600 });
  try {
    for (const until = Date.now() + OWNER_STALE_MS + 10_000; ; await sleep(250)) {
      try {
        linkSync(draft, ownerFile); // appears whole or not at all
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let text: string;
      let ageMs: number;
      try {
        text = readFileSync(ownerFile, 'utf8');
        ageMs = Date.now() - statSync(ownerFile).mtimeMs;
      } catch {
        continue; // given back meanwhile
      }
      const record = parse(text);
      const state = holder(record, ageMs, me);
      if (state === 'live') throw inUse(record!.pid);
      if (state === 'unknown') {
        if (Date.now() > until) throw inUse(record?.pid ?? 0);
        continue;
      }
      // Stale: move it aside under a name of our own and check that it was the file we judged.
      const aside = `${ownerFile}.stale-${nonce}`;
      try {
        renameSync(ownerFile, aside);
      } catch {
        continue; // someone else moved it first
      }
      let moved: string | undefined;
      try {
        moved = readFileSync(aside, 'utf8');
      } catch {
        /* gone */
      }
      if (moved !== text) {
        // Another start's fresh file, taken over between our read and our move: put it back.
        try {
          linkSync(aside, ownerFile);
        } catch {
          /* a third one holds it now */
        }
      }
      unlinkSync(aside);
      if (Date.now() > until) throw inUse(record?.pid ?? 0); // never spin: someone keeps taking it
    }
  } finally {
    unlinkSync(draft);
  }
  const heartbeat = setInterval(() => {
    try {
      if (readFileSync(ownerFile, 'utf8') === mine) utimesSync(ownerFile, new Date(), new Date());
    } catch {
      /* gone: the next start takes it */
    }
  }, OWNER_HEARTBEAT_MS);
  heartbeat.unref();
  return {
    release() {
      clearInterval(heartbeat);
      if (readOr(() => readFileSync(ownerFile, 'utf8')) === mine) unlinkSync(ownerFile);
    },
  };
}
