import type { Logger } from '../logger';
import type { Database } from './database';

/** The tables whose generic plans matter: a delivery's claim, record and bookkeeping read them by key. */
const HOT_TABLES = ['deliveries', 'delivery_attempts', 'events'];
/** Rows a table holds before its first ANALYZE is worth it. */
const MIN_ROWS = 500;

/**
 * The first ANALYZE of a new Postgres cluster's busy tables, without waiting for autovacuum
 * (its launcher looks every `autovacuum_naptime`, a minute by default). The claim-style statements
 * run with generic plans (src/db/database.ts), made once and kept until the table's statistics
 * change: on a new cluster they were made while `deliveries` was empty, and until the first
 * ANALYZE a claim of 100 deliveries took 100–200 ms (measured at fan-out 20 in the first minute of
 * `npm start`; 5–10 ms once analysed). Every `everyMs` this analyses each hot table that has
 * MIN_ROWS rows and was never analysed; once all were, it stops and autovacuum carries on.
 */
export function startFirstAnalyze(
  db: Database,
  log: Pick<Logger, 'info' | 'warn'>,
  opts: { everyMs?: number; tables?: string[]; minRows?: number } = {},
): { stop(): void; readonly stopped: boolean } {
  const { everyMs = 2_000, tables: hot = HOT_TABLES, minRows = MIN_ROWS } = opts;
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      const tables = await db.query<{ relname: string; analysed: boolean; rows: number }>(
        `select relname, (last_analyze is not null or last_autoanalyze is not null) as analysed, (n_live_tup + n_dead_tup)::int as rows
         from pg_stat_user_tables where relname = any($1::text[])`,
        [hot],
      );
      for (const t of tables.filter((t) => !t.analysed && t.rows >= minRows)) {
        const started = performance.now();
        await db.query(`analyze "${t.relname.replace(/"/g, '""')}"`);
        log.info('postgres.first_analyze', { table: t.relname, rows: t.rows, ms: Math.round(performance.now() - started) });
      }
      if (tables.length === hot.length && tables.every((t) => t.analysed)) stop();
    } catch (err) {
      log.warn('postgres.first_analyze.failed', { err: String(err) });
    } finally {
      running = false;
    }
  };
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  timer = setInterval(() => void tick(), everyMs);
  timer.unref();
  return {
    stop,
    get stopped() {
      return timer === undefined;
    },
  };
}
