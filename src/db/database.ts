import { mkdirSync } from 'node:fs';

/** The little the repositories need from a Postgres connection; PGlite and node-postgres both provide it. */
export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function openPglite(dataDir: string | undefined): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const pg = dataDir ? new PGlite(dataDir) : new PGlite();
  await pg.waitReady;
  return {
    kind: 'pglite',
    async query<R>(sql: string, params: unknown[] = []) {
      return (await pg.query<R>(sql, params)).rows;
    },
    transaction: (fn) => pg.transaction((tx) => fn({ query: async <R>(sql: string, params: unknown[] = []) => (await tx.query<R>(sql, params)).rows })),
    close: () => pg.close(),
  };
}

export async function openPostgres(url: string, maxConnections = 10): Promise<Database> {
  const { Pool } = await import('pg');
  const pool = new Pool({ connectionString: url, max: maxConnections });
  pool.on('error', () => {
    /* idle-client errors (server restart) surface on the next query instead of crashing */
  });
  await pool.query('select 1');
  return {
    kind: 'postgres',
    async query<R>(sql: string, params: unknown[] = []) {
      return (await pool.query(sql, params)).rows as R[];
    },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const result = await fn({ query: async <R>(sql: string, params: unknown[] = []) => (await client.query(sql, params)).rows as R[] });
        await client.query('commit');
        return result;
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

/** DATABASE_URL → real Postgres; otherwise embedded PGlite under `pgliteDir` (in memory when undefined). */
export function openDatabase(opts: { url?: string; pgliteDir?: string }): Promise<Database> {
  return opts.url ? openPostgres(opts.url) : openPglite(opts.pgliteDir);
}
