import type { Database, Queryable } from './database';

/**
 * A diagnostic for performance work (`DB_PROFILE=1`): where the database time goes, per
 * statement. Every statement and transaction goes through one queue, so each statement's time is
 * its own execution, not time spent waiting behind others — the right measure for PGlite, which
 * runs one statement at a time anyway; on a pooled Postgres it serialises the pool, so use it
 * there only to rank statements. The table is printed to stderr every `everyMs` and at close.
 */
export function profiled(db: Database, everyMs = 30_000, print: (text: string) => void = (t) => process.stderr.write(t)): Database {
  const stats = new Map<string, { n: number; ms: number }>();
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };
  const timed =
    (q: Queryable) =>
    async <R>(sql: string, params?: unknown[]): Promise<R[]> => {
      const t0 = performance.now();
      try {
        return await q.query<R>(sql, params);
      } finally {
        const ms = performance.now() - t0;
        const key = sql.replace(/\s+/g, ' ').trim().slice(0, 140);
        const s = stats.get(key) ?? { n: 0, ms: 0 };
        s.n++;
        s.ms += ms;
        stats.set(key, s);
      }
    };
  const report = () => {
    print(`[db-profile] ${table(stats, (total, n) => `${total.toFixed(0)} ms in ${n} statements`)}`);
    // PGlite: what each statement cost the event loop itself, free of queueing (the figures above include it under load).
    if (db.statementCosts) print(`[db-profile] ${table(db.statementCosts, (total) => `PGlite's own time on the event loop: ${total.toFixed(0)} ms`)}`);
  };
  const timer = setInterval(report, everyMs);
  timer.unref();
  const plain = timed(db);
  return {
    kind: db.kind,
    soleClient: db.soleClient,
    statementCosts: db.statementCosts,
    query: <R>(sql: string, params?: unknown[]) => serial(() => plain<R>(sql, params)),
    transaction: (fn, opts) => serial(() => db.transaction((tx) => fn({ query: timed(tx) }), opts)),
    close: async () => {
      clearInterval(timer);
      report();
      await db.close();
    },
  };
}

/** The 25 costliest statements of `costs`, under a heading made from their total ms and count. */
function table(costs: Map<string, { n: number; ms: number }>, heading: (totalMs: number, statements: number) => string): string {
  const rows = [...costs.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((t, [, s]) => t + s.ms, 0);
  const lines = rows
    .slice(0, 25)
    .map(
      ([sql, s]) =>
        `${((s.ms / total) * 100).toFixed(1).padStart(5)}% ${s.ms.toFixed(0).padStart(8)} ms ${String(s.n).padStart(8)}× ${(s.ms / s.n).toFixed(2).padStart(7)} ms avg  ${sql.replace(/\s+/g, ' ').trim().slice(0, 140)}`,
    );
  return `${heading(
    total,
    rows.reduce((t, [, s]) => t + s.n, 0),
  )}\n${lines.join('\n')}\n`;
}
