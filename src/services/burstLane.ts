/**
 * Which first-attempt lane an account's next batch takes. An account that dispatched more than
 * `perSecond` deliveries a second over the last `windowMs` is bursting: its batches go to the
 * bulk lane (a task queue of their own, with worker slots of their own), so its backlog can hold
 * every bulk slot without delaying a first attempt of any other account in the main lane.
 * Within each lane Temporal's fairness keys share the slots between accounts.
 */
export class BurstLanes {
  private readonly recent = new Map<string, { at: number; n: number }[]>();

  constructor(
    readonly perSecond = BULK_LANE_PER_SECOND,
    readonly windowMs = 2_000,
  ) {}

  /** Counts `deliveries` for the account at `nowMs` and says whether its batch goes to the bulk lane. */
  take(accountId: string, deliveries: number, nowMs = Date.now()): 'main' | 'bulk' {
    const since = nowMs - this.windowMs;
    const list = (this.recent.get(accountId) ?? []).filter((e) => e.at > since);
    list.push({ at: nowMs, n: deliveries });
    this.recent.set(accountId, list);
    this.forgetIdle(since);
    const total = list.reduce((sum, e) => sum + e.n, 0);
    return total > (this.perSecond * this.windowMs) / 1000 ? 'bulk' : 'main';
  }

  /** Accounts tracked (for tests): idle ones are forgotten. */
  get tracked(): number {
    return this.recent.size;
  }

  private lastSweep = 0;
  private forgetIdle(since: number): void {
    if (since - this.lastSweep < this.windowMs) return;
    this.lastSweep = since;
    for (const [id, list] of this.recent) if (list[list.length - 1].at <= since) this.recent.delete(id);
  }
}

/**
 * Deliveries per second above which an account's first attempts take the bulk lane: about a tenth
 * of what the embedded default sends at saturation (src/README Performance), so a quiet account
 * never shares the main lane's slots with more than a few bursting batches.
 */
export const BULK_LANE_PER_SECOND = 200;

/** The bulk lane's task queue (the worker runs a second Worker on it; only first-attempt batches use it). */
export const bulkTaskQueue = (taskQueue: string) => `${taskQueue}-bulk`;
