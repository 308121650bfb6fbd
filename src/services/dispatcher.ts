import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { DrainWakeRequest, RetryStartRequest } from '../activities/deliveryDeps';
import type { Config } from '../config';
import type { Database } from '../db/database';
import { markDispatched, undispatched } from '../db/deliveries';
import { PLATFORM_ACCOUNT_ID } from '../domain/operationalEvents';
import { utc } from '../domain/deliveryStory';
import { formatDuration } from '../domain/duration';
import { redactUrl } from '../domain/redact';
import { batchWorkflowId, workflowIdFor } from '../domain/workflowIds';
import type { Logger } from '../logger';
import { BurstLanes, bulkTaskQueue } from './burstLane';
import type { AcceptedNotifier } from './acceptedOutbox';
import type { InlineFirstAttempts } from './inlineFirstAttempts';
import { fairnessFor, PRIORITY, scheduleFrom } from './workflowStartOptions';
import type { DeliverBatchInput } from '../workflows/deliverBatch';
import type { DeliverWebhookInput } from '../workflows/deliverWebhook';
import type { DrainEndpointInput, DrainWake } from '../workflows/drainEndpoint';
import { RrAccountId, RrDeliveryStatus, RrEndpointId, RrEventType } from '../workflows/searchAttributes';

const START_DEADLINE_MS = 5_000;

/**
 * Published deliveries that may await their start while their publishes have answered already
 * (Dispatcher.dispatchAccepted). At a steady 300/s of one account about 10 do; at saturation the
 * publishes beyond this wait for their start, so the backlog (and the latency it adds, about
 * this many deliveries' sending time) stays small.
 */
export const PUBLISHED_AHEAD_OF_START = 32;

export interface DispatchTarget {
  id: string;
  series: number;
  /** Known on the publish path; looked up otherwise. */
  meta?: DispatchMeta;
}

/** What a start needs besides the id: shown in the Web UI as search attributes and summary. */
export interface DispatchMeta {
  accountId: string;
  endpointId: string;
  eventType: string;
  url: string;
}

/** Deliveries of one account waiting for their batch to start, and the requests waiting on it. */
interface OpenBatch {
  targets: DispatchTarget[];
  waiters: (() => void)[];
  /** Cancels the pending flush (the next turn of the event loop, or the window's end). */
  cancel: () => void;
}

/** One account's first-attempt batches: the one gathering (if any) and when the last one was started. */
interface AccountBatches {
  open?: OpenBatch;
  lastStartAt: number;
}

/**
 * Starts delivery workflows. The database row is the durable acceptance. Newly published
 * deliveries become first-attempt batch workflows, per account: an account none of whose batches
 * started within the last DISPATCH_BATCH_WINDOW is idle, and its new batch starts at once (on the
 * next turn of the event loop, so the deliveries of one publish, and of publishes committed
 * together, go along); a busy account's new deliveries are gathered for the window (at most
 * DISPATCH_BATCH_MAX). An idle account's webhook thus waits for no window, and a busy account
 * still makes at most one batch per window: each batch costs a workflow start and task (README,
 * Performance: starting batches while the previous one starts cost more CPU and latency at
 * 100/s). Everything else (resends, the reconciler) starts the delivery's own workflow, which
 * is idempotent through its workflow id. Whichever workflow claims a delivery in the database
 * first is the only one that sends it, so the request path and the reconciler may both try
 * without a delivery ever being sent twice by two workflows.
 */
export class Dispatcher {
  private readonly batches = new Map<string, AccountBatches>();

  constructor(
    private readonly client: Client,
    private readonly db: Database,
    private readonly cfg: Config,
    private readonly log: Logger,
    /**
     * eagerStart: the client shares a NativeConnection with a worker on the task queue: let the
     * server hand it the first task directly. bulkLane: a worker serves the bulk lane too, so a
     * bursting account's batches go there (with TEMPORAL_FAIRNESS; see BurstLanes), while
     * mainLaneBusy (given when this process runs the main lane's worker) says the main lane is behind.
     * inline: this process runs the worker's activities, so first attempts may be sent from here
     * (src/services/inlineFirstAttempts.ts) while it has room; the others start batch workflows.
     * outbox: an API process of its own (DISPATCH_OUTBOX): newly published deliveries are announced
     * to the workers, which take and send them (src/services/acceptedOutbox.ts), instead of started here.
     */
    private readonly opts: {
      eagerStart?: boolean;
      bulkLane?: boolean;
      mainLaneBusy?: () => boolean;
      inline?: InlineFirstAttempts;
      onBulkLane?: () => void;
      outbox?: AcceptedNotifier;
    } = {},
  ) {
    this.lanes = opts.bulkLane && cfg.TEMPORAL_FAIRNESS ? new BurstLanes(undefined, undefined, opts.mainLaneBusy) : undefined;
  }

  private readonly lanes?: BurstLanes;

  /** TEMPORAL_FAIRNESS: the publish path takes its per-account share too (src/services/accountShare.ts). */
  get fairness(): boolean {
    return this.cfg.TEMPORAL_FAIRNESS;
  }

  /** Starts one delivery's workflow (idempotent) and records that it was started. */
  async dispatch(target: DispatchTarget): Promise<void> {
    await this.start(target);
    await markDispatched(this.db, [{ ...target, workflowId: workflowIdFor(target.id, target.series) }]);
  }

  private async start(target: DispatchTarget): Promise<void> {
    const input: DeliverWebhookInput = {
      deliveryId: target.id,
      series: target.series,
      schedule: scheduleFrom(this.cfg),
      attemptTimeoutMs: this.cfg.ATTEMPT_TIMEOUT,
      searchAttributes: this.cfg.TEMPORAL_SEARCH_ATTRIBUTES,
    };
    const meta = target.meta ?? (await this.meta(target.id));
    // Bounded: with Temporal unreachable the request path answers anyway and the reconciler starts it later.
    await this.client.withDeadline(Date.now() + START_DEADLINE_MS, () =>
      this.startDeliveryWorkflow(input, meta.accountId, meta, { reusePolicy: 'REJECT_DUPLICATE', eager: this.opts.eagerStart }),
    );
  }

  /**
   * Starts a delivery's own workflow with its Web UI summary and search attributes; one already
   * running with that id carries on.
   */
  private async startDeliveryWorkflow(
    input: DeliverWebhookInput,
    accountId: string,
    meta: Omit<DispatchMeta, 'accountId'> | undefined,
    opts: { reusePolicy: 'REJECT_DUPLICATE' | 'ALLOW_DUPLICATE'; eager?: boolean; startDelayMs?: number },
  ): Promise<void> {
    try {
      await this.client.workflow.start('deliverWebhook', {
        taskQueue: this.cfg.TEMPORAL_TASK_QUEUE,
        workflowId: workflowIdFor(input.deliveryId, input.series),
        workflowIdReusePolicy: opts.reusePolicy,
        requestEagerStart: opts.eager,
        ...(opts.startDelayMs ? { startDelay: opts.startDelayMs } : {}),
        priority: { priorityKey: PRIORITY.retry, ...fairnessFor(this.cfg, accountId) },
        args: [input],
        staticSummary: meta ? `${meta.eventType} → ${redactUrl(meta.url)}` : `delivery ${input.deliveryId}`,
        staticDetails: deliveryDetails(input, meta),
        ...(input.searchAttributes
          ? {
              typedSearchAttributes: [
                { key: RrAccountId, value: accountId },
                ...(meta
                  ? [
                      { key: RrEndpointId, value: meta.endpointId },
                      { key: RrEventType, value: meta.eventType },
                    ]
                  : []),
                { key: RrDeliveryStatus, value: 'pending' },
              ],
            }
          : {}),
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }

  private async meta(deliveryId: string): Promise<DispatchMeta> {
    const [row] = await this.db.query<DispatchMeta>(
      `select d.account_id as "accountId", d.endpoint_id as "endpointId", d.event_type as "eventType", e.url
       from deliveries d join endpoints e on e.id = d.endpoint_id where d.id = $1`,
      [deliveryId],
    );
    if (!row) throw new Error(`delivery ${deliveryId} not found`);
    return row;
  }

  /**
   * Best effort for the request path: starts all (new deliveries in their account's next batch)
   * and records the started ones; a failure here is repaired by the reconciler. Resolves once
   * they were started or deferred.
   */
  async dispatchAll(targets: DispatchTarget[]): Promise<void> {
    const batchable = this.cfg.DISPATCH_BATCH_WINDOW > 0 ? targets.filter((t) => t.meta && t.series === 1) : [];
    const single = targets.filter((t) => !batchable.includes(t));
    const started: DispatchTarget[] = [];
    await Promise.all([
      ...single.map((t) =>
        this.start(t).then(
          () => started.push(t),
          (err: Error) => this.log.warn('dispatch.deferred', { deliveryId: t.id, error: err.message }),
        ),
      ),
      ...batchable.map((t) => this.joinBatch(t)),
    ]);
    if (started.length)
      await markDispatched(
        this.db,
        started.map((t) => ({ ...t, workflowId: workflowIdFor(t.id, t.series) })),
      ).catch((err: Error) => this.log.warn('dispatch.unrecorded', { error: err.message }));
  }

  /** Deliveries of the publish path whose batch or workflow start has not returned yet (see dispatchAccepted). */
  private awaitingStart = 0;

  /**
   * The publish path's dispatch. Its deliveries are committed (the durable acceptance), so the
   * publish may answer before their workflows start: a start that fails or a process that dies
   * first leaves them to the reconciler, as a start that times out does already. It waits for the
   * start only while more than PUBLISHED_AHEAD_OF_START of this process's published deliveries
   * await theirs: publishers faster than batches start are slowed down here, as before, instead of
   * growing a backlog in memory. Resolves when the publish may answer.
   */
  async dispatchAccepted(targets: DispatchTarget[]): Promise<void> {
    if (this.opts.outbox) return this.opts.outbox.notify(targets);
    this.awaitingStart += targets.length;
    const started = this.dispatchAll(targets)
      .catch((err: Error) => this.log.warn('dispatch.deferred', { deliveries: targets.length, error: err.message }))
      .finally(() => (this.awaitingStart -= targets.length));
    if (this.awaitingStart > PUBLISHED_AHEAD_OF_START) await started;
    // Sent from this process: a long backlog of the account's waiting here holds its publishers instead.
    const accountId = targets[0]?.meta?.accountId;
    const backlog = accountId === undefined ? undefined : this.opts.inline?.backlog(accountId);
    if (backlog) await backlog;
  }

  /** Published deliveries awaiting their start (for tests). */
  get deliveriesAwaitingStart(): number {
    return this.awaitingStart;
  }

  /** Adds a new delivery to its account's open batch; resolves when that batch was started (or deferred). */
  private joinBatch(target: DispatchTarget): Promise<void> {
    const accountId = target.meta!.accountId;
    const batch = this.openBatch(accountId);
    batch.targets.push(target);
    const done = new Promise<void>((resolve) => batch.waiters.push(resolve));
    if (batch.targets.length >= this.cfg.DISPATCH_BATCH_MAX) this.flush(accountId, batch);
    return done;
  }

  /** The account's open batch, or a new one: started at once when the account is idle, else at the end of the window. */
  private openBatch(accountId: string): OpenBatch {
    let account = this.batches.get(accountId);
    if (!account) this.batches.set(accountId, (account = { lastStartAt: -Infinity }));
    if (account.open) return account.open;
    const opened: OpenBatch = { targets: [], waiters: [], cancel: () => {} };
    // A batch sent from here costs a claim and a record, not a workflow start and task: its window
    // is DISPATCH_INLINE_WINDOW (0 by default: under load its batches gather while waiting for room
    // in the process instead; at 300/s a 5 ms window was 5 of the 7 ms p50).
    const window = this.opts.inline?.hasRoom(accountId) ? this.cfg.DISPATCH_INLINE_WINDOW : this.cfg.DISPATCH_BATCH_WINDOW;
    if (performance.now() - account.lastStartAt >= window) {
      const immediate = setImmediate(() => this.flush(accountId, opened));
      opened.cancel = () => clearImmediate(immediate);
    } else {
      const timer = setTimeout(() => this.flush(accountId, opened), window);
      opened.cancel = () => clearTimeout(timer);
    }
    account.open = opened;
    return opened;
  }

  /** Starts an account's open batch (once: a later call for the same batch does nothing). */
  private flush(accountId: string, batch: OpenBatch): void {
    const account = this.batches.get(accountId);
    if (!account || account.open !== batch) return;
    batch.cancel();
    account.open = undefined;
    account.lastStartAt = performance.now();
    void this.startBatch(accountId, batch.targets).finally(() => batch.waiters.forEach((w) => w()));
    // Forgotten once idle (its next batch starts at once then anyway).
    setTimeout(() => {
      if (this.batches.get(accountId) === account && !account.open && performance.now() - account.lastStartAt >= this.cfg.DISPATCH_BATCH_WINDOW) this.batches.delete(accountId);
    }, this.cfg.DISPATCH_BATCH_WINDOW + 1).unref();
  }

  /** Accounts with a batch gathering or started within the last window (for tests): idle ones are forgotten. */
  get batchingAccounts(): number {
    return this.batches.size;
  }

  /** Starts a batch workflow for first attempts the process let wait too long, or was stopped with (src/services/inlineFirstAttempts.ts). */
  startBatchWorkflow(batch: { accountId: string; deliveries: { deliveryId: string; series: number }[] }): Promise<void> {
    return this.startBatch(
      batch.accountId,
      batch.deliveries.map((d) => ({ id: d.deliveryId, series: d.series })),
      false,
    );
  }

  private async startBatch(accountId: string, targets: DispatchTarget[], inline = true): Promise<void> {
    const input: DeliverBatchInput = {
      accountId,
      deliveries: targets.map((t) => ({ deliveryId: t.id, series: t.series })),
      schedule: scheduleFrom(this.cfg),
      attemptTimeoutMs: this.cfg.ATTEMPT_TIMEOUT,
      searchAttributes: this.cfg.TEMPORAL_SEARCH_ATTRIBUTES,
    };
    // Sent from here: recorded as dispatched by its attempt records and hand-overs, not here.
    if (inline && this.opts.inline?.tryRun(input)) return;
    const bulk = this.lanes?.take(accountId, targets.length) === 'bulk';
    if (bulk) this.opts.onBulkLane?.();
    try {
      await this.client.withDeadline(Date.now() + START_DEADLINE_MS, () =>
        this.client.workflow.start('deliverBatch', {
          taskQueue: bulk ? bulkTaskQueue(this.cfg.TEMPORAL_TASK_QUEUE) : this.cfg.TEMPORAL_TASK_QUEUE,
          workflowId: batchWorkflowId(targets[0].id),
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          // Eager tasks skip the fair queue: a bursting account's would take every slot that frees.
          requestEagerStart: this.opts.eagerStart && !bulk,
          priority: fairnessFor(this.cfg, accountId, targets.length),
          args: [input],
          staticSummary: `first attempt of ${targets.length} ${targets.length === 1 ? 'delivery' : 'deliveries'}`,
          ...(input.searchAttributes ? { typedSearchAttributes: [{ key: RrAccountId, value: accountId }] } : {}),
        }),
      );
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) {
        this.log.warn('dispatch.deferred', { batch: targets.length, firstDeliveryId: targets[0].id, error: (err as Error).message });
        return;
      }
      if (targets.length > 1) {
        // A batch named after the same first delivery exists (that delivery was dispatched again
        // while its first batch was starting: the reconciler, an operational pass). Only that one
        // is surely in it: the rest go in a batch of their own (a delivery in both is claimed once).
        await this.startBatch(accountId, targets.slice(0, 1), inline);
        return this.startBatch(accountId, targets.slice(1), inline);
      }
    }
    const workflowId = batchWorkflowId(targets[0].id);
    await markDispatched(
      this.db,
      targets.map((t) => ({ ...t, workflowId })),
    ).catch((err: Error) => this.log.warn('dispatch.unrecorded', { error: err.message }));
  }

  /** Starts the retry workflow of each delivery a first-attempt batch handed over (idempotent). */
  async startRetryWorkflows(req: RetryStartRequest): Promise<void> {
    await Promise.all(
      req.retrying.map((r) =>
        this.startDeliveryWorkflow(
          {
            deliveryId: r.deliveryId,
            series: r.series,
            schedule: req.schedule,
            attemptTimeoutMs: req.attemptTimeoutMs,
            searchAttributes: req.searchAttributes,
            after: { batchId: req.batchId, delayMs: r.delayMs, windowEndsAtMs: req.windowEndsAtMs, attempts: r.attempts, lastError: r.lastError, delayedStart: true },
          },
          req.accountId,
          r.meta,
          // A closed run of this id (the reconciler's, superseded by the batch's claim) must not
          // block the retries; a running one (an earlier run of this batch started it) carries on.
          // The first back-off is the start's delay, waited out on the server (see `delayedStart`).
          { reusePolicy: 'ALLOW_DUPLICATE', startDelayMs: r.delayMs },
        ),
      ),
    );
    // Until this is recorded, the operator's link of a handed-over delivery is its batch (src/api/mappers.ts).
    await markDispatched(
      this.db,
      req.retrying.map((r) => ({ id: r.deliveryId, series: r.series, workflowId: workflowIdFor(r.deliveryId, r.series) })),
    ).catch((err: Error) => this.log.warn('dispatch.unrecorded', { error: err.message }));
  }

  /**
   * Starts the endpoint's recovery drain (`drain-<endpointId>`) or signals the running one: one at
   * a time per endpoint (signalWithStart).
   */
  async wakeDrain(req: DrainWakeRequest): Promise<void> {
    const input: DrainEndpointInput = { endpointId: req.endpointId, accountId: req.accountId, schedule: scheduleFrom(this.cfg), attemptTimeoutMs: this.cfg.ATTEMPT_TIMEOUT };
    const wake: DrainWake = { reason: req.reason, deliveryIds: req.deliveryIds, forceProbe: req.forceProbe, ...(req.heldOnly ? { heldOnly: true } : {}) };
    await this.client.workflow.signalWithStart('drainEndpoint', {
      taskQueue: this.cfg.TEMPORAL_TASK_QUEUE,
      workflowId: `drain-${req.endpointId}`,
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      priority: { priorityKey: PRIORITY.drain, ...fairnessFor(this.cfg, req.accountId) },
      args: [input],
      signal: 'wake',
      signalArgs: [wake],
      staticSummary: `recovery drain of ${req.endpointId}`,
    });
  }

  /** Which of these workflow ids Temporal knows, running or closed (not yet deleted by its retention). */
  async existingWorkflows(workflowIds: string[]): Promise<Set<string>> {
    const found = await Promise.all(
      workflowIds.map((id) =>
        this.client.workflow
          .getHandle(id)
          .describe()
          .then(
            () => id,
            (err: unknown) => {
              if (err instanceof WorkflowNotFoundError) return undefined;
              throw err;
            },
          ),
      ),
    );
    return new Set(found.filter((id): id is string => id !== undefined));
  }

  /** Cancels a running delivery workflow; a finished or unknown one is fine. */
  async cancel(target: DispatchTarget): Promise<void> {
    try {
      await this.client.workflow.getHandle(workflowIdFor(target.id, target.series)).cancel();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return;
      this.log.warn('dispatch.cancel_failed', { deliveryId: target.id, error: (err as Error).message });
    }
  }

  private operational?: Promise<void>;
  private operationalAgain = false;

  /**
   * Operational events were (or may have been) emitted: start their deliveries now rather than at
   * the reconciler's next pass (which starts them anyway if this fails or the process dies).
   * Calls while a pass runs are coalesced into one more pass.
   */
  kickOperational(): void {
    if (this.operational) {
      this.operationalAgain = true;
      return;
    }
    this.operational = (async () => {
      do {
        this.operationalAgain = false;
        const rows = await undispatched(this.db, 0, 200, PLATFORM_ACCOUNT_ID);
        if (rows.length) await this.dispatchAll(rows);
      } while (this.operationalAgain);
    })()
      .catch((err: Error) => this.log.warn('dispatch.operational_failed', { error: err.message }))
      .finally(() => {
        this.operational = undefined;
      });
  }

  /** Resolves when the operational pass under way (if any) is done. */
  async operationalSettled(): Promise<void> {
    while (this.operational) await this.operational;
  }
}

/**
 * A delivery workflow's static details in the Web UI (Temporal markdown): what it delivers, who
 * made the first attempt and until when it retries. Its current details (src/domain/deliveryStory.ts)
 * tell the attempts.
 */
function deliveryDetails(input: DeliverWebhookInput, meta: Omit<DispatchMeta, 'accountId'> | undefined): string {
  const what = meta
    ? `Delivery \`${input.deliveryId}\` (series ${input.series}) of \`${meta.eventType}\` to endpoint \`${meta.endpointId}\` (${redactUrl(meta.url)}).`
    : `Delivery \`${input.deliveryId}\` (series ${input.series}).`;
  const firstBy = input.after?.batchId.startsWith('inline-')
    ? `the service process that accepted it (\`${input.after.batchId}\`, no batch workflow)`
    : `\`${input.after?.batchId}\``;
  const who = input.after
    ? `Its first attempt was made by ${firstBy}; this workflow retries it until ${utc(input.after.windowEndsAtMs)}, when the delivery window ends.`
    : `This workflow makes its first attempt and retries it for ${formatDuration(input.schedule.windowMs)} (the delivery window).`;
  const after = input.after;
  const waiting = after?.delayedStart
    ? `The first attempt failed${after.lastError ? ` (${after.lastError})` : ''}; the server starts this workflow after the first back-off, at ${utc(Date.now() + after.delayMs)}: until then it has no events or current details.`
    : undefined;
  return [
    what,
    who,
    ...(waiting ? [waiting] : []),
    `Attempts are numbered as in the delivery log (\`GET /v1/deliveries/${input.deliveryId}\`); the current details show the last one.`,
  ].join('\n\n');
}
