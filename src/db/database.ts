import { listenOn } from './notifications';
import { mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { FEATURE_NOT_SUPPORTED, GENERIC_PLAN } from './sqlMarkers';

/** The little the repositories need from a Postgres connection; PGlite and node-postgres both provide it. */
export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** No other process uses this database (PGlite, the embedded Postgres of `npm start`): per-process state such as rate-limit counters is the whole truth. */
  readonly soleClient?: boolean;
  /** `unbounded`: without the statement timeouts (schema migrations, which may rewrite a large table). */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, opts?: { unbounded?: boolean }): Promise<T>;
  close(): Promise<void>;
  /** Real Postgres: LISTEN on `channel` on a connection of its own (src/db/notifications.ts); the returned function stops. */
  listen?(channel: string, onPayload: (payload: string) => void, onError: (err: Error) => void): Promise<() => Promise<void>>;
  /** PGlite with DB_PROFILE: each statement's own time on the event loop (src/db/pglitePrepared.ts). */
  readonly statementCosts?: Map<string, { n: number; ms: number }>;
}

/**
 * How long a real Postgres may keep the service waiting (0 = no limit). A stalled database then
 * fails the statement, and the activity with it, instead of holding an attempt open past its
 * Temporal timeout. PGlite is one in-process connection with no pool and no timers inside a
 * statement: none of these applies there (src/db/deliveries.ts's attempt fences still do).
 */
export interface PoolTimeouts {
  /** Waiting for a free pooled connection, or for a new one to connect (pg `connectionTimeoutMillis`). */
  acquireMs?: number;
  /** Server side `statement_timeout`; the client gives up on an answer 5 s after it (`query_timeout`: the connection is dropped). */
  statementMs?: number;
  /** Server side `idle_in_transaction_session_timeout`: a transaction whose process stalled releases its locks. */
  idleInTransactionMs?: number;
}

/** PGlite's default_statistics_target (Postgres' default is 100): see openPglite. */
export const PGLITE_STATISTICS_TARGET = 10;

export async function openPglite(dataDir: string | undefined, opts: { measure?: boolean; sharedBuffers?: string } = {}): Promise<Database> {
  // Loaded only here: the default (a Postgres server) never needs PGlite's modules in memory.
  const [{ PGlite }, { PglitePrepared }] = await Promise.all([import('@electric-sql/pglite'), import('./pglitePrepared')]);
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const options = {
    startParams: [
      ...PGlite.defaultStartParams,
      ...(opts.sharedBuffers ? ['-c', `shared_buffers=${opts.sharedBuffers}`] : []),
      // ANALYZE samples 300 × this many rows and holds PGlite's one connection meanwhile: at 100 (the
      // default) it was most of each maintenance stall (73–155 ms at 15,000+ deliveries), at 10 it
      // takes 17–41 ms. The statements look rows up by key and by indexed columns, which need no
      // finer histograms (README, Performance).
      '-c',
      `default_statistics_target=${PGLITE_STATISTICS_TARGET}`,
    ],
  };
  const pg = dataDir ? new PGlite(dataDir, options) : new PGlite(options);
  await pg.waitReady;
  const prepared = new PglitePrepared(pg, undefined, opts);
  return {
    kind: 'pglite',
    soleClient: true,
    statementCosts: prepared.costs,
    query: <R>(sql: string, params: unknown[] = []) => prepared.query<R>(sql, params),
    transaction: (fn) => pg.transaction((tx) => fn({ query: async <R>(sql: string, params: unknown[] = []) => (await tx.query<R>(sql, params)).rows })),
    close: () => pg.close(),
  };
}

/**
 * node-postgres runs a query as an unnamed statement: Postgres parses, analyses and plans it on
 * every call. For this service's statements (CTEs over several joins, arrays of ids) planning was
 * most of the server's CPU: at 300 events/s, 16 of the backends' 18 CPU s went to planning (the
 * claim 4.3 ms per call, the attempt record 1.6 ms; pg_stat_statements with track_planning). So
 * each statement text is prepared once per connection under a name derived from the text, and
 * the statements marked GENERIC_PLAN run on connections set to `plan_cache_mode =
 * force_generic_plan` (src/db/pglitePrepared.ts says why those) and `enable_seqscan = off`:
 * they look rows up by key, and a generic plan made while a table was new and not yet analysed
 * scanned it (the claim took 190 ms per batch at 30,000 deliveries until autovacuum's first
 * ANALYZE, a minute in; fan-out 20 ran at 611 instead of 1,437 deliveries/s). At most
 * POSTGRES_PREPARED_TEXTS texts are named; others (none today) run unnamed.
 */
export const POSTGRES_PREPARED_TEXTS = 256;
const preparedNames = new Map<string, string>();
/** How many times each text's prepared form went stale: part of its name, so every connection prepares it afresh. */
const staleCounts = new Map<string, number>();
const statementName = (sql: string): string | undefined => {
  let name = preparedNames.get(sql);
  if (!name && preparedNames.size < POSTGRES_PREPARED_TEXTS) {
    const stale = staleCounts.get(sql);
    name = `rr_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}${stale ? `_${stale}` : ''}`;
    preparedNames.set(sql, name);
  }
  return name;
};

/** "cached plan must not change result type" (by the routine that raises it: the message may be translated). */
const isStalePlan = (err: unknown): boolean => {
  const { code, routine } = err as { code?: string; routine?: string };
  return code === FEATURE_NOT_SUPPORTED && routine === 'RevalidateCachedQuery';
};

/**
 * Runs `sql` prepared under its name. If the prepared form went stale (a table's columns changed
 * under it: a migration by a newer deploy), the text gets a new name, which every connection
 * prepares afresh on its next use; the stale form is never used again (it stays on its
 * connection until the connection closes). Outside a transaction the statement then runs again at
 * once; inside one the error stands, since Postgres has already aborted the transaction, and the
 * caller's retry (an activity's, a client's) runs on the fresh form.
 */
async function runPrepared<R>(client: { query: import('pg').Pool['query'] }, sql: string, params: unknown[], inTransaction = false, again = false): Promise<R[]> {
  // Without parameters node-postgres uses the simple protocol, which also runs several statements in one text.
  if (!params.length) return (await client.query(sql)).rows as R[];
  const name = statementName(sql);
  try {
    return (await client.query({ name, text: sql, values: params })).rows as R[];
  } catch (err) {
    if (!name || again || !isStalePlan(err)) throw err;
    if (preparedNames.get(sql) === name) {
      staleCounts.set(sql, (staleCounts.get(sql) ?? 0) + 1);
      preparedNames.delete(sql);
    }
    if (inTransaction) throw err;
    return runPrepared<R>(client, sql, params, false, true);
  }
}

/**
 * How long a pooled connection may sit idle before it is closed (node-postgres closes them after
 * 10 s by default). A new connection is a new backend that prepares every statement again: after a
 * lull of half a minute, the first seconds at 300 deliveries/s were a cluster of slow deliveries
 * (p99 33 ms against 9 without the lull; README, Performance). Five minutes keeps them through
 * ordinary lulls; connections open only on demand, so an idle service holds few.
 */
export const POOL_IDLE_MS = 300_000;

/** Connections for the GENERIC_PLAN statements (outside transactions): a few suffice, they are short. */
const GENERIC_PLAN_CONNECTIONS = 4;

export async function openPostgres(url: string, maxConnections = 10, timeouts: PoolTimeouts = {}, opts: { soleClient?: boolean; prepare?: boolean } = {}): Promise<Database> {
  const { soleClient = false, prepare = true } = opts;
  const { Client, Pool } = await import('pg');
  const { acquireMs = 0, statementMs = 0, idleInTransactionMs = 0 } = timeouts;
  const settings = {
    connectionString: url,
    idleTimeoutMillis: POOL_IDLE_MS,
    ...(acquireMs > 0 ? { connectionTimeoutMillis: acquireMs } : {}),
    ...(statementMs > 0 ? { statement_timeout: statementMs, query_timeout: statementMs + 5_000 } : {}),
    ...(idleInTransactionMs > 0 ? { idle_in_transaction_session_timeout: idleInTransactionMs } : {}),
  };
  const pool = new Pool({ ...settings, max: maxConnections });
  const genericPool = prepare ? new Pool({ ...settings, max: GENERIC_PLAN_CONNECTIONS, options: '-c plan_cache_mode=force_generic_plan -c enable_seqscan=off' }) : pool;
  for (const p of new Set([pool, genericPool])) {
    p.on('error', () => {
      /* idle-client errors (server restart) surface on the next query instead of crashing */
    });
  }
  await pool.query('select 1');
  const unnamed = async <R>(client: { query: import('pg').Pool['query'] }, sql: string, params: unknown[], _inTransaction?: boolean) =>
    (await client.query(sql, params)).rows as R[];
  const run = prepare ? runPrepared : unnamed;
  return {
    kind: 'postgres',
    soleClient,
    query<R>(sql: string, params: unknown[] = []) {
      return run<R>(sql.startsWith(GENERIC_PLAN) ? genericPool : pool, sql, params); // genericPool is pool when nothing is prepared
    },
    async transaction(fn, opts = {}) {
      const dedicated = opts.unbounded ? new Client({ connectionString: url }) : undefined;
      if (dedicated) await dedicated.connect();
      const client = dedicated ?? (await pool.connect());
      let broken: Error | undefined;
      try {
        await client.query('begin');
        // Prepared on the pool's connections, unnamed on a dedicated one (migrations change the tables).
        const result = await fn({
          query: <R>(sql: string, params: unknown[] = []) => (dedicated ? unnamed<R>(client, sql, params) : run<R>(client, sql, params, true)),
        });
        await client.query('commit');
        return result;
      } catch (err) {
        await client.query('rollback').catch((e: Error) => (broken = e));
        throw err;
      } finally {
        // A connection whose rollback failed (timed out, dropped) is not reused.
        if (dedicated) await dedicated.end().catch(() => undefined);
        else (client as import('pg').PoolClient).release(broken);
      }
    },
    // TCP keep-alive: a listening connection is idle, and a dead peer would otherwise go unnoticed for hours.
    listen: (channel, onPayload, onError) =>
      listenOn(() => new Client({ connectionString: url, keepAlive: true, keepAliveInitialDelayMillis: 10_000, connectionTimeoutMillis: 10_000 }), channel, onPayload, onError),
    close: async () => {
      await Promise.all([...new Set([pool, genericPool])].map((p) => p.end()));
    },
  };
}

/** DATABASE_URL → real Postgres; otherwise embedded PGlite under `pgliteDir` (in memory when undefined). */
export function openDatabase(opts: {
  url?: string;
  pgliteDir?: string;
  timeouts?: PoolTimeouts;
  measure?: boolean;
  sharedBuffers?: string;
  soleClient?: boolean;
  prepare?: boolean;
}): Promise<Database> {
  return opts.url
    ? openPostgres(opts.url, undefined, opts.timeouts, { soleClient: opts.soleClient, prepare: opts.prepare })
    : openPglite(opts.pgliteDir, { measure: opts.measure, sharedBuffers: opts.sharedBuffers });
}
