import { randomBytes } from 'node:crypto';
import { Client as PgClient } from 'pg';
import { openPglite, openPostgres, type Database } from '../../src/db/database';
import { migrate } from '../../src/db/migrations';

/**
 * A fresh, migrated database for one test file on the back-end of the running jest project:
 * in-memory PGlite, or a new database on the real Postgres server (TEST_DATABASE_URL).
 * `url` is set for Postgres so child processes can share it.
 */
export async function freshDatabase(serverUrl?: string): Promise<{ db: Database; url?: string; drop(): Promise<void> }> {
  if (!serverUrl && process.env.TEST_DB_BACKEND !== 'postgres') {
    const db = await openPglite(undefined);
    await migrate(db);
    return { db, drop: () => db.close() };
  }
  const base = serverUrl ?? process.env.TEST_DATABASE_URL;
  if (!base) throw new Error('TEST_DATABASE_URL is not set: the api:postgres project needs a real Postgres (see README "Tests").');
  const name = `rr_test_${randomBytes(6).toString('hex')}`;
  const admin = new PgClient({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  const db = await openPostgres(url.toString());
  await migrate(db);
  return {
    db,
    url: url.toString(),
    async drop() {
      await db.close();
      const c = new PgClient({ connectionString: base });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}
