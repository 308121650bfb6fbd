import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Config } from '../config';
import type { Database } from '../db/database';
import { markDispatched, undispatched } from '../db/deliveries';
import type { RetrySchedule } from '../domain/retrySchedule';
import type { Logger } from '../logger';
import type { DeliverWebhookInput } from '../workflows/deliverWebhook';
import { RrAccountId, RrDeliveryStatus, RrEndpointId, RrEventType } from '../workflows/searchAttributes';

const START_DEADLINE_MS = 5_000;

/** `delivery-<id>` for the first series (the convention), `delivery-<id>-<n>` for resends. */
export function workflowIdFor(deliveryId: string, series: number): string {
  return series === 1 ? `delivery-${deliveryId}` : `delivery-${deliveryId}-${series}`;
}

export function scheduleFrom(cfg: Config): RetrySchedule {
  return {
    initialIntervalMs: cfg.RETRY_INITIAL_INTERVAL,
    backoffCoefficient: cfg.RETRY_BACKOFF_COEFFICIENT,
    maximumIntervalMs: cfg.RETRY_MAXIMUM_INTERVAL,
    jitter: cfg.RETRY_JITTER,
    windowMs: cfg.DELIVERY_WINDOW,
  };
}

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

/**
 * Starts delivery workflows. The database row is the durable acceptance; the start is
 * idempotent through the workflow id (REJECT_DUPLICATE), so the request path and the
 * reconciler may both try without a delivery ever running twice.
 */
export class Dispatcher {
  constructor(
    private readonly client: Client,
    private readonly db: Database,
    private readonly cfg: Config,
    private readonly log: Logger,
    /** The client shares a NativeConnection with a worker on the task queue: let the server hand it the first task directly. */
    private readonly opts: { eagerStart?: boolean } = {},
  ) {}

  /** Starts one delivery's workflow (idempotent) and records that it was started. */
  async dispatch(target: DispatchTarget): Promise<void> {
    await this.start(target);
    await markDispatched(this.db, [target]);
  }

  private async start(target: DispatchTarget): Promise<void> {
    const useAttributes = this.cfg.TEMPORAL_SEARCH_ATTRIBUTES;
    const input: DeliverWebhookInput = { deliveryId: target.id, series: target.series, schedule: scheduleFrom(this.cfg), attemptTimeoutMs: this.cfg.ATTEMPT_TIMEOUT, searchAttributes: useAttributes };
    const meta = target.meta ?? (await this.meta(target.id));
    try {
      // Bounded: with Temporal unreachable the request path answers anyway and the reconciler starts it later.
      await this.client.withDeadline(Date.now() + START_DEADLINE_MS, () => this.client.workflow.start('deliverWebhook', {
        taskQueue: this.cfg.TEMPORAL_TASK_QUEUE,
        workflowId: workflowIdFor(target.id, target.series),
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        requestEagerStart: this.opts.eagerStart,
        args: [input],
        staticSummary: `${meta.eventType} → ${meta.url}`,
        ...(useAttributes
          ? {
              typedSearchAttributes: [
                { key: RrAccountId, value: meta.accountId },
                { key: RrEndpointId, value: meta.endpointId },
                { key: RrEventType, value: meta.eventType },
                { key: RrDeliveryStatus, value: 'pending' },
              ],
            }
          : {}),
      }));
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
   * Best effort for the request path: starts all in parallel and records the started ones in
   * one write; a failure here is repaired by the reconciler.
   */
  async dispatchAll(targets: DispatchTarget[]): Promise<void> {
    const started: DispatchTarget[] = [];
    await Promise.all(
      targets.map((t) =>
        this.start(t).then(
          () => started.push(t),
          (err: Error) => this.log.warn('dispatch.deferred', { deliveryId: t.id, error: err.message }),
        ),
      ),
    );
    if (started.length) await markDispatched(this.db, started).catch((err: Error) => this.log.warn('dispatch.unrecorded', { error: err.message }));
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

  /** One pass: start workflows for accepted deliveries that a crash left unstarted. */
  async reconcileOnce(graceMs = 2_000, batch = 200): Promise<number> {
    const rows = await undispatched(this.db, graceMs, batch);
    for (const row of rows) await this.dispatch(row);
    if (rows.length) this.log.info('dispatch.reconciled', { count: rows.length });
    return rows.length;
  }

  startReconciler(intervalMs: number): () => Promise<void> {
    let stopped = false;
    let running: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      if (stopped) return;
      running = this.reconcileOnce().catch((err: Error) => this.log.warn('dispatch.reconcile_failed', { error: err.message }));
    }, intervalMs);
    return async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    };
  }
}
