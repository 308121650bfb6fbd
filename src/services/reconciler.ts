import type { Database } from '../db/database';
import { undispatched } from '../db/deliveries';
import type { Logger } from '../logger';
import type { DispatchTarget } from './dispatcher';

/**
 * Crash recovery of the publish path. An event and its deliveries are committed before their
 * workflows start, so a process that dies in between (or a Temporal that is unreachable) leaves
 * accepted deliveries without a workflow; the reconciler finds those older than a grace period
 * and never dispatched, and starts them through the dispatcher (idempotent workflow ids).
 */
export class Reconciler {
  constructor(
    private readonly dispatcher: { dispatchAll(targets: DispatchTarget[]): Promise<void> },
    private readonly db: Database,
    private readonly log: Logger,
  ) {}

  /**
   * One pass: start workflows for accepted deliveries that a crash left unstarted, as the request
   * path does (first attempts in their account's batches, all at once): one start at a time, a
   * backlog of thousands (starts that timed out on an overloaded Temporal) cost as many round
   * trips in a row. Those that fail again wait for the next pass.
   */
  async once(graceMs = 2_000, batch = 200): Promise<number> {
    const rows = await undispatched(this.db, graceMs, batch);
    await this.dispatcher.dispatchAll(rows);
    if (rows.length) this.log.info('dispatch.reconciled', { count: rows.length });
    return rows.length;
  }

  /** A pass every `intervalMs`; the returned function stops it and waits for the pass under way. */
  start(intervalMs: number): () => Promise<void> {
    let stopped = false;
    let running: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      if (stopped) return;
      running = this.once().catch((err: Error) => this.log.warn('dispatch.reconcile_failed', { error: err.message }));
    }, intervalMs);
    return async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    };
  }
}
