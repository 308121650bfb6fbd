import { openPostgres } from '../../src/db/database';
import { GENERIC_PLAN } from '../../src/db/sqlMarkers';
import { freshDatabase } from '../helpers/db';

// Real Postgres only (*.pg.test.ts): how the service's statements reach the server
// (src/db/database.ts, DATABASE_PREPARED_STATEMENTS).
let fresh: Awaited<ReturnType<typeof freshDatabase>>;
beforeAll(async () => {
  fresh = await freshDatabase();
});
afterAll(async () => {
  await fresh?.drop();
});

const preparedHere = `select name from pg_prepared_statements where statement like '%rr-prepared-probe %' and statement not like '%pg_prepared_statements%'`;

test('each statement text with parameters is prepared once per connection and reused, one without runs as before (several statements allowed); GENERIC_PLAN statements run on connections forcing generic plans', async () => {
  const db = await openPostgres(fresh.url!, 1); // one connection: the probe sees what the statement left
  try {
    for (let i = 0; i < 3; i++) expect(await db.query<{ v: number }>('select $1::int as v /* rr-prepared-probe one */', [i])).toEqual([{ v: i }]);
    const prepared = await db.query<{ name: string }>(preparedHere);
    expect(prepared).toHaveLength(1); // three calls, one prepared statement
    expect(prepared[0].name).toMatch(/^rr_[0-9a-f]{20}$/);

    expect(await db.query<{ mode: string }>(`select current_setting('plan_cache_mode') as mode`)).toEqual([{ mode: 'auto' }]);
    await db.query(`create temp table probe_multi (v int); insert into probe_multi values (1)`); // two statements, no parameters
    expect(await db.query('select count(*)::int as n from probe_multi')).toEqual([{ n: 1 }]);
    expect(await db.query<{ mode: string }>(`${GENERIC_PLAN}select current_setting('plan_cache_mode') as mode`)).toEqual([{ mode: 'force_generic_plan' }]);

    // Inside a transaction too (on the transaction's connection).
    const inTx = await db.transaction(async (tx) => {
      await tx.query('select $1::int as two /* rr-prepared-probe tx */', [2]);
      return tx.query<{ name: string }>(`select name from pg_prepared_statements where statement like '%rr-prepared-probe tx%' and statement not like '%pg_prepared_statements%'`);
    });
    expect(inTx).toHaveLength(1);
  } finally {
    await db.close();
  }
});

test('with DATABASE_PREPARED_STATEMENTS=false nothing is prepared and no startup option is sent (a transaction-mode pooler)', async () => {
  const db = await openPostgres(fresh.url!, 1, {}, { prepare: false });
  try {
    expect(await db.query('select $1::int as v /* rr-prepared-probe one */', [1])).toEqual([{ v: 1 }]);
    expect(await db.query(preparedHere)).toEqual([]);
    expect(await db.query<{ mode: string }>(`${GENERIC_PLAN}select current_setting('plan_cache_mode') as mode`)).toEqual([{ mode: 'auto' }]);
  } finally {
    await db.close();
  }
});

test('a prepared statement whose result columns changed under it (DDL) is prepared afresh: outside a transaction the call succeeds, inside one it fails once and the retry succeeds', async () => {
  const db = await openPostgres(fresh.url!, 1);
  const names = async () => (await db.query<{ name: string }>(`${preparedHere.replace('rr-prepared-probe ', 'rr-prepared-probe shape')} order by prepare_time`)).map((r) => r.name);
  try {
    await db.query('create table probe_shape (a int)');
    await db.query('insert into probe_shape values (1)');
    const sql = 'select * from probe_shape where a = $1 /* rr-prepared-probe shape */';
    expect(await db.query(sql, [1])).toEqual([{ a: 1 }]);
    const [first] = await names();

    await db.query('alter table probe_shape add column b int default 7');
    expect(await db.query(sql, [1])).toEqual([{ a: 1, b: 7 }]);
    // Prepared again under a new name, which later calls use: no further failure, no unnamed fallback.
    const second = (await names()).filter((n) => n !== first);
    expect(second).toHaveLength(1);
    expect(second[0]).toBe(`${first}_1`);
    expect(await db.query(sql, [1])).toEqual([{ a: 1, b: 7 }]);
    expect((await names()).filter((n) => n !== first)).toEqual(second);

    // In a transaction the aborted transaction cannot run it again: the error stands, the next transaction succeeds.
    await db.query('alter table probe_shape add column c int default 8');
    await expect(db.transaction((tx) => tx.query(sql, [1]))).rejects.toMatchObject({ code: '0A000' });
    expect(await db.transaction((tx) => tx.query(sql, [1]))).toEqual([{ a: 1, b: 7, c: 8 }]);
    expect(await db.query(sql, [1])).toEqual([{ a: 1, b: 7, c: 8 }]);
  } finally {
    await db.close();
  }
});

test('when the pool has sat idle longer than node-postgres keeps a connection by default (10 s), then the next statement runs on the same connection, with its prepared statements still there', async () => {
  const db = await openPostgres(fresh.url!, 1);
  try {
    const [before] = await db.query<{ pid: number }>('select pg_backend_pid() as pid /* rr-prepared-probe idle */ where $1::int = 1', [1]);
    await new Promise((r) => setTimeout(r, 11_000));
    const [after] = await db.query<{ pid: number }>('select pg_backend_pid() as pid /* rr-prepared-probe idle */ where $1::int = 1', [1]);
    expect(after.pid).toBe(before.pid); // not a new backend that prepares every statement again
  } finally {
    await db.close();
  }
}, 30_000);
