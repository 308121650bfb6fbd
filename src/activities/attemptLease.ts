import { Context } from '@temporalio/activity';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Queryable } from '../db/database';
import { releaseFences } from '../db/deliveries';

/** A request must end this long before the lease does (timer slack, the send's own set-up). */
const SEND_MARGIN_MS = 2_000;

/** A first-attempt batch run in the process rather than in a workflow: the owner it claims as, and what stops its sends (shutdown). */
export interface InlineRun {
  owner: string;
  signal: AbortSignal;
}

/**
 * One activity execution's hold on the deliveries it claimed (their attempt fence, see
 * claimForAttempt in src/db/deliveries.ts). Temporal retries an attempt that timed out while the
 * old one may still be running (a slow database, a stalled process): both belong to the same
 * workflow, so ownership alone lets both send. The fence tells them apart:
 *
 * - the claim takes each delivery's fence for this execution for its start-to-close timeout,
 *   counted from the database's clock when the claim started: no later attempt takes it before then;
 * - before each request, `canSend()` asks, on this process's monotonic clock (no clock
 *   agreement needed), whether the request would end (it times out after `requestTimeoutMs`)
 *   before that lease can, and whether Temporal cancelled the activity (a local activity's
 *   timeout, a regular one's via its heartbeat, a worker shutting down): if not, it is not sent.
 *   A check that waited for a slot also re-reads the fence (checkBeforeSend);
 * - the attempt record releases the fence; `release()` frees the ones left without an attempt,
 *   so the next attempt need not wait for the lease.
 *
 * So two executions never have requests to one delivery in flight at once, and one that lost
 * its fence sends nothing more. What stays at-least-once: a 2xx whose record was lost (the
 * process died after the request) is sent again by the next attempt, as after any crash.
 */
export class AttemptLease {
  readonly token: string;
  readonly leaseMs: number;
  private readonly sendBy: number;
  private readonly signal: AbortSignal;
  private readonly held = new Set<string>();

  /**
   * Call right before the claim statement: the lease is counted from here. It lasts the activity's
   * start-to-close timeout, or `maxLeaseMs` when shorter: how long a re-run after a crash waits
   * for it (a request that could not start within it is not sent; the caller hands it on).
   */
  constructor(requestTimeoutMs: number, maxLeaseMs = Infinity, inline?: InlineRun) {
    if (inline) {
      // Outside any activity (src/services/inlineFirstAttempts.ts): no timeout of Temporal's to match.
      this.token = `${inline.owner}#1#${randomUUID().slice(0, 8)}`;
      this.leaseMs = Math.min(maxLeaseMs, requestTimeoutMs + 30_000);
      this.signal = inline.signal;
    } else {
      const ctx = Context.current();
      const info = ctx.info;
      this.token = `${info.workflowExecution?.workflowId ?? info.activityId}#${info.attempt}#${randomUUID().slice(0, 8)}`;
      this.leaseMs = Math.min(maxLeaseMs, info.startToCloseTimeoutMs > 0 ? info.startToCloseTimeoutMs : requestTimeoutMs + 30_000);
      this.signal = ctx.cancellationSignal;
    }
    this.sendBy = performance.now() + this.leaseMs - requestTimeoutMs - SEND_MARGIN_MS;
  }

  get fence(): { token: string; leaseMs: number } {
    return { token: this.token, leaseMs: this.leaseMs };
  }

  /** Whether a request started now ends before this execution's lease, and the activity was not cancelled. */
  canSend(): boolean {
    return !this.signal.aborted && performance.now() < this.sendBy;
  }

  /** The claim took these fences. */
  took(ids: string[]): void {
    for (const id of ids) this.held.add(id);
  }

  /** An attempt record released this fence. */
  recorded(id: string): void {
    this.held.delete(id);
  }

  /** Frees the fences still held (no attempt recorded under them); a no-op for any another execution took since. */
  async release(db: Queryable): Promise<void> {
    if (this.held.size === 0) return;
    const ids = [...this.held];
    this.held.clear();
    await releaseFences(db, ids, this.token);
  }
}
