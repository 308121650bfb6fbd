import type { Logger } from '../logger';
import type { Database } from './database';

/**
 * PGlite is Postgres in single-user mode: no autovacuum worker, so without this no table is
 * ever analysed or vacuumed. Stale statistics are worse here than on a server: the prepared
 * statements (src/db/pglitePrepared.ts) keep generic plans made while a table was nearly empty
 * (a sequential scan of `deliveries` in a one-row claim, 17 ms at 6,000 rows, measured), and an
 * ANALYZE is what makes them re-plan. Every `everyMs` this does what autovacuum would, with its
 * default thresholds: ANALYZE a table once 50 + 10 % of its rows changed since the last one,
 * VACUUM (ANALYZE) it once 50 + 20 % are dead. Each takes PGlite's one connection for its length
 * (0.1–0.4 s at 500,000 deliveries, measured), at intervals that grow with the table.
 *
 * One table per tick, the furthest past its threshold first: every statement waits behind it, so
 * the tables' turns are spread over ticks rather than taken in one stall (at a sustained 300
 * deliveries/s, measured: deliveries, delivery_attempts and events in a row held the connection
 * for 230–340 ms every 10 s, which was the p99 of publish and of delivery).
 */
export function startPgliteAutovacuum(db: Database, log: Pick<Logger, 'info' | 'warn'>, everyMs = 3_000): { stop(): void } {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      const due = await db.query<{ relname: string; vacuum: boolean; analyze: boolean }>(
        `select relname, n_dead_tup > 50 + 0.2 * n_live_tup as vacuum, n_mod_since_analyze > 50 + 0.1 * n_live_tup as analyze
         from pg_stat_user_tables where n_dead_tup > 50 + 0.2 * n_live_tup or n_mod_since_analyze > 50 + 0.1 * n_live_tup
         order by greatest(n_dead_tup / (50 + 0.2 * n_live_tup), n_mod_since_analyze / (50 + 0.1 * n_live_tup)) desc, relname
         limit 1`,
      );
      for (const t of due) {
        const started = performance.now();
        // The name comes from the catalog; quoted all the same.
        await db.query(`${t.vacuum ? 'vacuum (analyze)' : 'analyze'} "${t.relname.replace(/"/g, '""')}"`);
        log.info('pglite.maintenance', { table: t.relname, vacuum: t.vacuum, ms: Math.round(performance.now() - started) });
      }
    } catch (err) {
      log.warn('pglite.maintenance.failed', { err: String(err) });
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
