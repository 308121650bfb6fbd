import { parse, protocol, type PGlite } from '@electric-sql/pglite';
import { FEATURE_NOT_SUPPORTED, GENERIC_PLAN } from './sqlMarkers';

const { serialize } = protocol;
const concat = (parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);

let statementNames = 0;

/**
 * Named prepared statements on PGlite. `PGlite.query` parses, analyses and plans its statement
 * on every call (an unnamed statement); for this service's statements, CTEs over several joins,
 * that is most of their cost (a single delivery's claim: 3.7 ms as a plain query, 1.2 ms
 * prepared; README, Performance). PGlite is one session, so a statement prepared once serves
 * every later call with the same text. Takes PGlite's own locks in the same order as `query`, so
 * it waits for an open transaction as a query does. At most `max` texts are kept; others run as
 * plain queries.
 */
export class PglitePrepared {
  private readonly statements = new Map<string, { name: string; paramTypes: number[] }>();

  /**
   * With `measure` (DB_PROFILE): per statement text, the time it held the event loop (the WASM
   * execution, which runs synchronously inside the call, and parsing its result), without the
   * time spent waiting for PGlite's lock or for the event loop to get back to it.
   */
  readonly costs?: Map<string, { n: number; ms: number }>;

  constructor(
    private readonly pg: PGlite,
    private readonly max = 256,
    opts: { measure?: boolean } = {},
  ) {
    if (opts.measure) this.costs = new Map();
  }

  async query<R>(sql: string, params: unknown[] = []): Promise<R[]> {
    if (!this.statements.has(sql) && this.statements.size >= this.max) return (await this.pg.query<R>(sql, params)).rows;
    try {
      return await this.exclusive(() => this.run<R>(sql, params));
    } catch (err) {
      if ((err as { code?: string }).code !== FEATURE_NOT_SUPPORTED || !this.statements.has(sql)) throw err;
      // "cached plan must not change result type": a table changed under it; prepare it afresh.
      await this.exclusive(() => this.forget(sql));
      return this.exclusive(() => this.run<R>(sql, params));
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.pg._runExclusiveTransaction(() => this.pg._runExclusiveQuery(fn));
  }

  private async run<R>(sql: string, params: unknown[]): Promise<R[]> {
    const st = this.statements.get(sql) ?? (await this.prepare(sql));
    const values = params.map((v, i) => {
      if (v === null || v === undefined) return null;
      const ser = this.pg.serializers[st.paramTypes[i]];
      return ser ? ser(v) : String(v);
    });
    const t0 = performance.now();
    const generic = sql.startsWith(GENERIC_PLAN);
    const running = this.pg.execProtocol(
      concat([
        // plan_cache_mode is read when the statement is bound: set for this one only
        ...(generic ? [serialize.query('set plan_cache_mode = force_generic_plan')] : []),
        serialize.bind({ statement: st.name, values }),
        serialize.describe({ type: 'P' }),
        serialize.execute({}),
        serialize.sync(),
        ...(generic ? [serialize.query('reset plan_cache_mode')] : []),
      ]),
    );
    const executed = performance.now() - t0;
    const { messages } = await running;
    const t1 = performance.now();
    const rows = parse.parseResults(messages, this.pg.parsers)[generic ? 1 : 0]?.rows as R[];
    if (this.costs) {
      const c = this.costs.get(sql) ?? { n: 0, ms: 0 };
      c.n++;
      c.ms += executed + (performance.now() - t1);
      this.costs.set(sql, c);
    }
    return rows;
  }

  private async prepare(sql: string): Promise<{ name: string; paramTypes: number[] }> {
    const name = `rr_${++statementNames}`; // unique per process: two instances may share one PGlite
    const { messages } = await this.pg.execProtocol(concat([serialize.parse({ name, text: sql }), serialize.describe({ type: 'S', name }), serialize.sync()]));
    const st = { name, paramTypes: parse.parseDescribeStatementResults(messages) };
    this.statements.set(sql, st);
    return st;
  }

  private async forget(sql: string): Promise<void> {
    const st = this.statements.get(sql);
    if (!st) return;
    this.statements.delete(sql);
    await this.pg.execProtocol(concat([serialize.close({ type: 'S', name: st.name }), serialize.sync()]));
  }
}
