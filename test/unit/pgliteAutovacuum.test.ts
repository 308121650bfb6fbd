import { PGlite } from '@electric-sql/pglite';
import { openPglite, PGLITE_STATISTICS_TARGET, type Database } from '../../src/db/database';
import { startPgliteAutovacuum } from '../../src/db/pgliteAutovacuum';
import { PglitePrepared } from '../../src/db/pglitePrepared';

// PGlite has no autovacuum worker: src/db/pgliteAutovacuum.ts does its job, and with it the
// prepared statements' generic plans follow the table as it grows.
let pg: PGlite;
let db: Database;
beforeAll(async () => {
  pg = new PGlite();
  await pg.waitReady;
  const prepared = new PglitePrepared(pg);
  db = { kind: 'pglite', query: (sql, params) => prepared.query(sql, params), transaction: () => Promise.reject(new Error('unused')), close: () => pg.close() };
});
afterAll(() => pg.close());

const lookup = 'with k as (select * from unnest($1::int[]) as k(id)) select t.v from k join t on t.id = k.id';
const planOf = async () => {
  const [{ name }] = (await pg.query<{ name: string }>(`select name from pg_prepared_statements where statement = $1`, [lookup])).rows;
  return (await pg.exec(`explain execute ${name}('{1}')`))[0].rows.map((r) => (r as Record<string, string>)['QUERY PLAN']).join('\n');
};

test('when a table grows from empty, then maintenance analyses and vacuums it and the cached plan of a prepared lookup turns from a scan to its index', async () => {
  // Wide rows, as in \`deliveries\`: on a one-page table the planner then prefers scanning it.
  const wide = Array.from({ length: 20 }, (_, i) => `c${i} text`).join(', ');
  await pg.exec(`create table t (id int primary key, v int, ${wide}); insert into t (id, v) values (1, 1)`);
  for (let i = 0; i < 8; i++) await db.query(lookup, [[1]]); // past the 5 custom plans: the generic one is cached
  await pg.exec(`insert into t select g, g from generate_series(2, 20000) g; update t set v = 0 where id <= 10000`);
  expect(await planOf()).toMatch(/Seq Scan on t/); // still the plan of a one-row table
  await new Promise((r) => setTimeout(r, 1100)); // the statistics counters are flushed at most once a second

  const lines: { msg: string; fields?: Record<string, unknown> }[] = [];
  const log = {
    info: (msg: string, fields?: Record<string, unknown>) => lines.push({ msg, fields }),
    warn: (msg: string, fields?: Record<string, unknown>) => lines.push({ msg, fields }),
  };
  const maintenance = startPgliteAutovacuum(db, log, 50);
  try {
    const until = Date.now() + 10_000;
    while (!lines.some((l) => l.msg === 'pglite.maintenance') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  } finally {
    maintenance.stop();
  }
  expect(lines).toContainEqual({ msg: 'pglite.maintenance', fields: expect.objectContaining({ table: 't', vacuum: true }) });
  const [stats] = (
    await pg.query<{ vacuumed: boolean; analysed: boolean }>(
      `select last_vacuum is not null as vacuumed, last_analyze is not null as analysed from pg_stat_user_tables where relname = 't'`,
    )
  ).rows;
  expect(stats).toEqual({ vacuumed: true, analysed: true });

  await db.query(lookup, [[1]]);
  expect(await planOf()).toMatch(/Index Scan using t_pkey/);
});

test('when two tables are due, then a tick maintains one, the furthest past its threshold first, and the other waits for the next tick', async () => {
  await pg.exec(`create table a (id int primary key, v int); insert into a select g, g from generate_series(1, 2000) g; update a set v = 0`);
  await pg.exec(`create table b (id int primary key, v int); insert into b select g, g from generate_series(1, 2000) g; update b set v = 0 where id <= 800`);
  await pg.exec('analyze t'); // the first test's table is not due
  await new Promise((r) => setTimeout(r, 1100)); // the statistics counters are flushed at most once a second

  const lines: { at: number; table: unknown }[] = [];
  const log = { info: (_m: string, fields?: Record<string, unknown>) => lines.push({ at: Date.now(), table: fields?.table }), warn: () => undefined };
  const maintenance = startPgliteAutovacuum(db, log, 400);
  try {
    const until = Date.now() + 10_000;
    while (lines.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  } finally {
    maintenance.stop();
  }
  // a: 2,000 dead of 2,000 rows; b: 800 of 2,000. Each in its own tick, 400 ms apart.
  expect(lines.map((l) => l.table)).toEqual(['a', 'b']);
  expect(lines[1].at - lines[0].at).toBeGreaterThan(200);
});

test('when the service opens PGlite, then its ANALYZE samples with the smaller statistics target (shorter stalls)', async () => {
  const opened = await openPglite(undefined, { sharedBuffers: '16MB' });
  try {
    const [row] = await opened.query<{ default_statistics_target: string; shared_buffers: string }>(
      'select current_setting($1) as default_statistics_target, current_setting($2) as shared_buffers',
      ['default_statistics_target', 'shared_buffers'],
    );
    expect(row).toEqual({ default_statistics_target: String(PGLITE_STATISTICS_TARGET), shared_buffers: '16MB' });
    expect(PGLITE_STATISTICS_TARGET).toBeLessThan(100);
  } finally {
    await opened.close();
  }
});
