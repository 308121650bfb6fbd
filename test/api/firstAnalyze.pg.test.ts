import { startFirstAnalyze } from '../../src/db/firstAnalyze';
import { freshDatabase } from '../helpers/db';
import { waitFor } from '../helpers/receiver';

// Real Postgres only: PGlite has its own maintenance (src/db/pgliteAutovacuum.ts).
let fresh: Awaited<ReturnType<typeof freshDatabase>>;
beforeAll(async () => {
  fresh = await freshDatabase();
});
afterAll(async () => {
  await fresh?.drop();
});

const quiet = { info: () => undefined, warn: () => undefined };
const analysed = async (table: string) =>
  (await fresh.db.query<{ at: Date | null }>(`select coalesce(last_analyze, last_autoanalyze) as at from pg_stat_user_tables where relname = $1`, [table]))[0]?.at ?? null;

test('a busy table is analysed once it holds enough rows, a small one is left to autovacuum, and it stops once every table was analysed', async () => {
  // Autovacuum off on them: only the service's own ANALYZE can pass this test.
  await fresh.db.query('create table fa_big (id int primary key) with (autovacuum_enabled = off); create table fa_small (id int primary key) with (autovacuum_enabled = off)');
  await fresh.db.query('insert into fa_small select generate_series(1, 10)');
  const run = startFirstAnalyze(fresh.db, quiet, { everyMs: 100, tables: ['fa_big', 'fa_small'], minRows: 500 });
  try {
    await new Promise((r) => setTimeout(r, 1_500)); // several ticks: neither has 500 rows
    expect(await analysed('fa_big')).toBeNull();
    await fresh.db.query('insert into fa_big select generate_series(1, 600)');
    await waitFor(async () => (await analysed('fa_big')) ?? undefined, 'fa_big to be analysed', 15_000);
    const [{ reltuples }] = await fresh.db.query<{ reltuples: number }>(`select reltuples from pg_class where relname = 'fa_big'`);
    expect(reltuples).toBe(600); // the planner now knows its size
    expect(await analysed('fa_small')).toBeNull();
    expect(run.stopped).toBe(false); // fa_small was never analysed

    await fresh.db.query('insert into fa_small select generate_series(11, 600)');
    await waitFor(() => run.stopped || undefined, 'the first analyses to finish', 15_000);
    expect(await analysed('fa_small')).not.toBeNull();
  } finally {
    run.stop();
  }
});
