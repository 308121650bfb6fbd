/**
 * Which first-attempt lane an account's next batch takes. An account that dispatched more than
 * `perSecond` deliveries a second over the last `windowMs` is bursting: its batches go to the
 * bulk lane (a task queue of their own, with worker slots of their own), so its backlog can hold
 * every bulk slot without delaying a first attempt of any other account in the main lane.
 * Within each lane Temporal's fairness keys share the slots between accounts.
 *
 * When the process runs the main lane's worker too (the embedded default), a bursting account
 * stays in the main lane for as long as that lane keeps up (`mainLaneBusy` says no): its batches
 * then start eagerly on this worker, where a bulk-lane batch first waits for Temporal's matching
 * (~45 ms per batch on the dev server, measured: README, Performance), and no one waits behind
 * them. Once the main lane has a backlog of batches, a bursting account's next ones go to the
 * bulk lane as before.
 */
export class BurstLanes {
  private readonly recent = new Map<string, { at: number; n: number }[]>();

  constructor(
    readonly perSecond = BULK_LANE_PER_SECOND,
    readonly windowMs = 2_000,
    /** Whether the main lane is behind (unknown without a worker in this process: then always). */
    private readonly mainLaneBusy: () => boolean = () => true,
  ) {}

  /** Counts `deliveries` for the account at `nowMs` and says whether its batch goes to the bulk lane. */
  take(accountId: string, deliveries: number, nowMs = Date.now()): 'main' | 'bulk' {
    const since = nowMs - this.windowMs;
    const list = (this.recent.get(accountId) ?? []).filter((e) => e.at > since);
    list.push({ at: nowMs, n: deliveries });
    this.recent.set(accountId, list);
    this.forgetIdle(since);
    const total = list.reduce((sum, e) => sum + e.n, 0);
    return total > (this.perSecond * this.windowMs) / 1000 && this.mainLaneBusy() ? 'bulk' : 'main';
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

/**
 * Local activities (first-attempt batches) in flight on the main lane's worker from which that lane
 * counts as busy. Measured (bench, embedded default): at a sustained 300 deliveries/s of one account
 * it runs 0–2 at a time; while one account floods 20 endpoints as fast as 32 publishers go, up to 23.
 * With 3, the other account's p99 in that flood stayed under 1 s (README, Performance).
 */
export const MAIN_LANE_BUSY_BATCHES = 3;

/** The bulk lane's task queue (the worker runs a second Worker on it; only first-attempt batches use it). */
export const bulkTaskQueue = (taskQueue: string) => `${taskQueue}-bulk`;
