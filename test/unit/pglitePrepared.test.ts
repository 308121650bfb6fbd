import { PGlite } from '@electric-sql/pglite';
import { PglitePrepared } from '../../src/db/pglitePrepared';
import { GENERIC_PLAN } from '../../src/db/sqlMarkers';

// Named prepared statements on PGlite (src/db/pglitePrepared.ts) answer as PGlite.query does.
let pg: PGlite;
let prepared: PglitePrepared;
beforeAll(async () => {
  pg = new PGlite();
  await pg.waitReady;
  await pg.exec(`create table t (id text primary key, n int, at timestamptz, tags text[], doc jsonb, ok bool)`);
  prepared = new PglitePrepared(pg, 3);
});
afterAll(() => pg.close());

test('when a statement runs prepared, then rows, types, nulls and arrays come back as from PGlite.query, and the second call reuses the statement', async () => {
  const at = new Date('2026-11-27T12:00:00.123Z');
  const insert = 'insert into t (id, n, at, tags, doc, ok) values ($1, $2, $3, $4, $5, $6) returning *';
  const a = await prepared.query(insert, ['a', 1, at, ['x', 'y'], { k: [1, 2] }, true]);
  const b = await prepared.query(insert, ['b', null, null, null, null, false]);
  const viaQuery = (await pg.query('select * from t where id = any($1::text[]) order by id', [['a', 'b']])).rows;
  expect([...a, ...b]).toEqual(viaQuery);
  expect(a[0]).toEqual({ id: 'a', n: 1, at, tags: ['x', 'y'], doc: { k: [1, 2] }, ok: true });
  const names = (await pg.query<{ name: string }>('select name from pg_prepared_statements')).rows.map((r) => r.name);
  expect(names).toHaveLength(1);
  await expect(prepared.query('update t set n = 5 where id = $1', ['zzz'])).resolves.toEqual([]);
});

test('when a prepared statement fails, then the error comes back with its code and the next statement runs', async () => {
  await expect(prepared.query('insert into t (id) values ($1)', ['a'])).rejects.toMatchObject({ code: '23505' });
  await expect(prepared.query('select count(*)::int as c from t')).resolves.toEqual([{ c: 2 }]);
});

test('when a table changes under a prepared statement, then it is prepared afresh and sees the new column', async () => {
  const sql = 'select * from t where id = $1';
  expect(Object.keys((await prepared.query<Record<string, unknown>>(sql, ['a']))[0])).not.toContain('extra');
  await pg.exec(`alter table t add column extra text default 'e'`);
  expect((await prepared.query<{ extra: string }>(sql, ['a']))[0].extra).toBe('e');
});

test('when a transaction is open, then a prepared statement waits for it to end instead of running inside it', async () => {
  let inTx!: () => void;
  const entered = new Promise<void>((r) => (inTx = r));
  let finish!: () => void;
  const tx = pg.transaction(async (t) => {
    await t.query(`update t set n = 99 where id = 'a'`);
    inTx();
    await new Promise<void>((r) => (finish = r));
    await t.query('select pg_sleep(0.01)');
    throw new Error('roll back');
  });
  await entered;
  const read = prepared.query<{ n: number }>('select n from t where id = $1', ['a']);
  let done = false;
  void read.then(() => (done = true));
  await new Promise((r) => setTimeout(r, 50));
  expect(done).toBe(false);
  finish();
  await expect(tx).rejects.toThrow('roll back');
  await expect(read).resolves.toEqual([{ n: 1 }]);
});

test('when more texts than the cache holds are run, then the others run as plain queries', async () => {
  for (let i = 0; i < 6; i++) await expect(prepared.query(`select $1::int + ${i} as v`, [1])).resolves.toEqual([{ v: 1 + i }]);
  const count = (await pg.query<{ c: number }>('select count(*)::int as c from pg_prepared_statements')).rows[0].c;
  expect(count).toBeLessThanOrEqual(3);
});

test('when a statement is marked for its generic plan, then it runs that plan from the first call, answers the same rows, and the session setting is back to auto after it (also after an error)', async () => {
  const prepared = new PglitePrepared(pg); // room for more statements than the suite's
  const sql = `${GENERIC_PLAN}select id, n from t where id = any($1::text[]) order by id`;
  await expect(prepared.query(sql, [['a', 'b']])).resolves.toEqual((await pg.query('select id, n from t where id = any($1::text[]) order by id', [['a', 'b']])).rows);
  const [st] = (await pg.query<{ generic_plans: number; custom_plans: number }>('select generic_plans, custom_plans from pg_prepared_statements where statement = $1', [sql])).rows;
  expect(st).toEqual({ generic_plans: 1, custom_plans: 0 });
  expect((await pg.query<{ plan_cache_mode: string }>('show plan_cache_mode')).rows[0].plan_cache_mode).toBe('auto');
  await expect(prepared.query(`${GENERIC_PLAN}insert into t (id) values ($1)`, ['a'])).rejects.toMatchObject({ code: '23505' });
  expect((await pg.query<{ plan_cache_mode: string }>('show plan_cache_mode')).rows[0].plan_cache_mode).toBe('auto');
});
