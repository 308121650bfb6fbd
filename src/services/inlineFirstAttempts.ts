import { randomUUID } from 'node:crypto';
import type { InlineRun } from '../activities/attemptLease';
import type { RetryStartRequest } from '../activities/deliveryDeps';
import type { PostBatchInput, PostBatchResult } from '../activities/firstAttemptBatch';
import type { RetrySchedule } from '../domain/retrySchedule';
import type { Queryable } from '../db/database';
import { markFinishedDispatched } from '../db/deliveries';
import { inlineBatchContext, type Logger } from '../logger';
import { inCurrentTraceContext, traceInlineBatch } from '../tracing';

/** First-attempt batches run in the process at once, and per account. */
export const INLINE_BATCHES = 12;
export const INLINE_BATCHES_PER_ACCOUNT = 8;
/** Deliveries of one account, and of all, waiting here for room; past that batches start batch workflows. */
export const INLINE_QUEUED_PER_ACCOUNT = 2_000;
export const INLINE_QUEUED_TOTAL = 10_000;
/** Most deliveries in one batch when queued batches of an account are sent together (DISPATCH_BATCH_MAX's default). */
export const INLINE_MERGED_BATCH = 100;
/**
 * Past this many of an account's deliveries waiting here, its publishes answer only once the
 * backlog is under it again (Dispatcher.dispatchAccepted): a flood of one account is slowed to the
 * rate it is sent at instead of overflowing INLINE_QUEUED_PER_ACCOUNT into batch workflows. 32
 * publishes of 20 deliveries each stay under the allowance from here.
 */
export const INLINE_QUEUE_MARK = 1_000;
/** The limits of the process's first-attempt batches (`npm start`, and a worker taking from the outbox). */
export function inlineLimitsFor(cfg: { DISPATCH_BATCH_MAX: number }): { total: number; perAccount: number; mergedBatch: number } {
  return { total: INLINE_BATCHES, perAccount: INLINE_BATCHES_PER_ACCOUNT, mergedBatch: Math.min(cfg.DISPATCH_BATCH_MAX, INLINE_MERGED_BATCH) };
}
/** How long a batch may wait here; then it is handed to a batch workflow (an account whose batches hang on slow receivers). */
export const INLINE_MAX_WAIT_MS = 1_000;

/** Retries of a failed retry-workflow start before the reconciler is left to it. */
const START_RETRIES = 3;

export interface InlineBatchSender {
  postBatch(input: PostBatchInput, inline: InlineRun): Promise<PostBatchResult>;
  startRetries(request: RetryStartRequest): Promise<void>;
}

export interface InlineBatch {
  accountId: string;
  deliveries: { deliveryId: string; series: number }[];
  schedule: RetrySchedule;
  attemptTimeoutMs: number;
  searchAttributes?: boolean;
}

/** A batch waiting for room: since when, and the trace context of the request that queued it. */
interface Waiting {
  batch: InlineBatch;
  since: number;
  within: <T>(fn: () => T) => T;
}

/**
 * First attempts sent straight from the process that accepted them, where the worker runs too
 * (`npm start`): the same claim, send and record as a first-attempt batch workflow's local
 * activity (src/activities/firstAttemptBatch.ts), without the workflow's start and task (about
 * 16 ms and most of the Temporal server's CPU per batch). Each delivery that must be retried is
 * handed to its own `delivery-<id>` workflow as from a batch workflow, so the retry clock is on
 * the Temporal server as before.
 *
 * Durability does not depend on this process: the deliveries are committed before, and a
 * delivery counts as dispatched only once its attempt is recorded as delivered, it finished, or
 * its retry workflow's start is recorded. A process that dies in between leaves it undispatched,
 * claimed by an `inline-…` owner under an attempt lease (ATTEMPT_TIMEOUT + 30 s); once that lease
 * ended the reconciler dispatches it again and the new claim takes it over (claimForAttempt), so
 * a request in flight when the process died is never overlapped by another.
 *
 * Only a few batches run so at once (INLINE_BATCHES, INLINE_BATCHES_PER_ACCOUNT). A batch of an
 * account at its share waits here behind that account's own batches, and when a batch ends the
 * waiting accounts take the room in turn (the one served longest ago first); an account's waiting
 * batches go together up to the batch size. A batch goes to a batch workflow, as before, when other
 * accounts fill the process, when it waited INLINE_MAX_WAIT_MS (slow receivers hold the room),
 * past INLINE_QUEUED_PER_ACCOUNT / INLINE_QUEUED_TOTAL waiting deliveries, and at shutdown; there a
 * fair task queue keeps one flooding account from holding back the others. Measured (README,
 * Performance): a batch workflow costs the Temporal server a start and a task while the sending
 * runs on this process's event loop either way; waiting here instead was faster at fan-out 5 and 20.
 * A delivery already waiting or running here is not taken again (the reconciler dispatches one
 * that waited past its grace). Waiting deliveries are committed: if the process dies they are the
 * reconciler's, as any undispatched delivery.
 */
export class InlineFirstAttempts {
  private inFlight = 0;
  private readonly perAccount = new Map<string, number>();
  /** Accounts with batches waiting for room, in the order they take it (served ones go to the back). */
  private readonly waiting = new Map<string, Waiting[]>();
  private readonly waitingDeliveries = new Map<string, number>();
  /** Publishes of an account waiting for its backlog here to fall under INLINE_QUEUE_MARK. */
  private readonly backlogWaiters = new Map<string, (() => void)[]>();
  private waitingTotal = 0;
  /** Deliveries waiting or running here: one dispatched again meanwhile (the reconciler) is not taken twice. */
  private readonly here = new Set<string>();
  private expiry: NodeJS.Timeout | undefined;
  private readonly handingOff = new Set<Promise<void>>();
  private readonly running = new Set<Promise<void>>();
  private readonly stop = new AbortController();

  /** `handOff` starts a batch workflow for a batch that waited too long here, or was waiting at shutdown. */
  constructor(
    private readonly sender: InlineBatchSender,
    private readonly db: Queryable,
    private readonly log: Logger,
    private readonly limits: {
      total: number;
      perAccount: number;
      queuedPerAccount?: number;
      queuedTotal?: number;
      mergedBatch?: number;
      maxWaitMs?: number;
      queueMark?: number;
    } = {
      total: INLINE_BATCHES,
      perAccount: INLINE_BATCHES_PER_ACCOUNT,
    },
    private readonly handOff: (batch: InlineBatch) => Promise<void> = () => Promise.resolve(),
  ) {}

  /** Whether a batch of this account would run here now. */
  hasRoom(accountId: string): boolean {
    return !this.stop.signal.aborted && this.inFlight < this.limits.total && (this.perAccount.get(accountId) ?? 0) < this.limits.perAccount;
  }

  /**
   * Runs the batch here now, or once this account's own batches leave room (true); or leaves it to
   * the caller (false: start a batch workflow). Only an account at its own share waits, behind its
   * own batches: when other accounts fill the process, a batch goes to a workflow as before.
   */
  tryRun(given: InlineBatch): boolean {
    if (this.stop.signal.aborted) return false;
    const deliveries = given.deliveries.filter((d) => !this.here.has(d.deliveryId));
    if (!deliveries.length) return true; // all of them are waiting or running here already
    const batch = { ...given, deliveries };
    const { accountId } = batch;
    if (this.hasRoom(accountId) && !this.waiting.has(accountId)) {
      this.start(batch);
      return true;
    }
    const atShare = (this.perAccount.get(accountId) ?? 0) >= this.limits.perAccount || this.waiting.has(accountId);
    const queued = this.waitingDeliveries.get(accountId) ?? 0;
    if (
      !atShare ||
      queued + deliveries.length > (this.limits.queuedPerAccount ?? INLINE_QUEUED_PER_ACCOUNT) ||
      this.waitingTotal + deliveries.length > (this.limits.queuedTotal ?? INLINE_QUEUED_TOTAL)
    )
      return false;
    const list = this.waiting.get(accountId);
    const entry = { batch, since: performance.now(), within: inCurrentTraceContext() };
    if (list) list.push(entry);
    else this.waiting.set(accountId, [entry]);
    this.waitingDeliveries.set(accountId, queued + deliveries.length);
    this.waitingTotal += deliveries.length;
    for (const d of deliveries) this.here.add(d.deliveryId);
    this.expiry ??= setInterval(
      () => this.handOffWaiting(performance.now() - (this.limits.maxWaitMs ?? INLINE_MAX_WAIT_MS)),
      Math.max(50, (this.limits.maxWaitMs ?? INLINE_MAX_WAIT_MS) / 4),
    ).unref();
    this.pump();
    return true;
  }

  /**
   * Undefined while fewer than INLINE_QUEUE_MARK of the account's deliveries wait here; else a
   * promise that resolves once fewer do (batches take room, are merged, handed off after
   * INLINE_MAX_WAIT_MS, or the process stops): the publish path's back-pressure.
   */
  backlog(accountId: string): Promise<void> | undefined {
    if ((this.waitingDeliveries.get(accountId) ?? 0) < (this.limits.queueMark ?? INLINE_QUEUE_MARK)) return undefined;
    return new Promise<void>((resolve) => {
      const list = this.backlogWaiters.get(accountId);
      if (list) list.push(resolve);
      else this.backlogWaiters.set(accountId, [resolve]);
    });
  }

  private releaseBacklog(accountId: string): void {
    const list = this.backlogWaiters.get(accountId);
    if (!list) return;
    this.backlogWaiters.delete(accountId);
    for (const resolve of list) resolve();
  }

  /** Deliveries waiting here for room (for tests). */
  get deliveriesWaiting(): number {
    return this.waitingTotal;
  }

  /** Takes an account's oldest waiting batches, merged up to the batch size (the account goes to the back of the turn). */
  private take(accountId: string, list: Waiting[], olderThan = Infinity): (InlineBatch & Pick<Waiting, 'within'>) | undefined {
    if (!list.length || list[0].since > olderThan) return undefined;
    const { batch: first, within } = list.shift()!;
    const deliveries = [...first.deliveries];
    const most = this.limits.mergedBatch ?? INLINE_MERGED_BATCH;
    while (list.length && list[0].since <= olderThan && deliveries.length + list[0].batch.deliveries.length <= most) deliveries.push(...list.shift()!.batch.deliveries);
    this.waiting.delete(accountId);
    if (list.length) this.waiting.set(accountId, list);
    const left = (this.waitingDeliveries.get(accountId) ?? 0) - deliveries.length;
    if (left > 0) this.waitingDeliveries.set(accountId, left);
    else this.waitingDeliveries.delete(accountId);
    if (left < (this.limits.queueMark ?? INLINE_QUEUE_MARK)) this.releaseBacklog(accountId);
    this.waitingTotal -= deliveries.length;
    if (!this.waiting.size && this.expiry) {
      clearInterval(this.expiry);
      this.expiry = undefined;
    }
    return { ...first, deliveries, within };
  }

  /** Gives free room to the waiting accounts in turn, each its oldest batches merged. */
  private pump(): void {
    for (let served = true; served && this.inFlight < this.limits.total && !this.stop.signal.aborted;) {
      served = false;
      for (const [accountId, list] of this.waiting) {
        if (this.inFlight >= this.limits.total) return;
        if ((this.perAccount.get(accountId) ?? 0) >= this.limits.perAccount) continue;
        const batch = this.take(accountId, list)!;
        batch.within(() => this.start(batch));
        served = true;
        break; // the turn's order changed: iterate afresh
      }
    }
  }

  /** Batches that waited since before `olderThan` (all by default) go to batch workflows. */
  private handOffWaiting(olderThan = Infinity): void {
    for (const [accountId, list] of [...this.waiting]) {
      for (let batch = this.take(accountId, list, olderThan); batch; batch = this.take(accountId, list, olderThan)) this.give(batch);
    }
  }

  private give(batch: InlineBatch): void {
    for (const d of batch.deliveries) this.here.delete(d.deliveryId);
    const handing = this.handOff(batch)
      .catch((err: Error) => this.log.warn('dispatch.deferred', { batch: batch.deliveries.length, firstDeliveryId: batch.deliveries[0].deliveryId, error: err.message }))
      .finally(() => this.handingOff.delete(handing));
    this.handingOff.add(handing);
  }

  private start(batch: InlineBatch): void {
    const mine = this.perAccount.get(batch.accountId) ?? 0;
    this.inFlight++;
    this.perAccount.set(batch.accountId, mine + 1);
    for (const d of batch.deliveries) this.here.add(d.deliveryId);
    const owner = `inline-${batch.deliveries[0].deliveryId}-${randomUUID().slice(0, 8)}`;
    const run = inlineBatchContext
      .run({ owner }, () => traceInlineBatch(owner, batch.deliveries.length, () => this.run(batch, owner)))
      .catch((err: Error) => this.log.warn('dispatch.inline_failed', { deliveries: batch.deliveries.length, firstDeliveryId: batch.deliveries[0]?.deliveryId, error: err.message }))
      .finally(() => {
        this.inFlight--;
        const left = (this.perAccount.get(batch.accountId) ?? 1) - 1;
        if (left > 0) this.perAccount.set(batch.accountId, left);
        else this.perAccount.delete(batch.accountId);
        for (const d of batch.deliveries) this.here.delete(d.deliveryId);
        this.running.delete(run);
        this.pump();
      });
    this.running.add(run);
  }

  /** Batches running here now (for tests and the busy check). */
  get batchesInFlight(): number {
    return this.inFlight;
  }

  /**
   * Stops new requests (those not yet sent are handed to their retry workflows), hands the waiting
   * batches to batch workflows (Temporal keeps them across the restart), and waits for both.
   */
  async shutdown(): Promise<void> {
    this.stop.abort();
    this.handOffWaiting();
    await Promise.all([...this.running, ...this.handingOff]);
  }

  private async run(batch: InlineBatch, owner: string): Promise<void> {
    const { schedule } = batch;
    const windowEndsAtMs = Date.now() + schedule.windowMs;
    let result: PostBatchResult;
    try {
      result = await this.sender.postBatch({ deliveries: batch.deliveries, windowEndsAtMs, schedule }, { owner, signal: this.stop.signal });
    } catch (err) {
      // As in the batch workflow: the database failed, not a receiver. Every delivery continues in
      // its own workflow after the first back-off (one that was finished is then found finished).
      this.log.warn('dispatch.inline_batch_failed', { owner, error: (err as Error).message });
      result = { delivered: 0, finished: 0, skipped: 0, retrying: batch.deliveries.map((d) => ({ ...d, delayMs: schedule.initialIntervalMs })) };
    }
    // Found finished (a lost bookkeeping write, a cancel before the claim): no start will record them.
    // Best effort: left undispatched, they cost the reconciler a look, and the retries below must start anyway.
    if (result.skipped)
      await markFinishedDispatched(
        this.db,
        batch.deliveries.map((d) => ({ id: d.deliveryId, series: d.series })),
      ).catch((err: Error) => this.log.warn('dispatch.unrecorded', { owner, error: err.message }));
    if (!result.retrying.length) return;
    const request: RetryStartRequest = {
      batchId: owner,
      accountId: batch.accountId,
      retrying: result.retrying,
      windowEndsAtMs,
      schedule,
      attemptTimeoutMs: batch.attemptTimeoutMs,
      searchAttributes: batch.searchAttributes,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.sender.startRetries(request);
      } catch (err) {
        // Unrecorded starts are the reconciler's: it finds these deliveries undispatched.
        if (attempt >= START_RETRIES) throw err;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }
}
