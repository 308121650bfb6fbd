import { NativeConnection, Worker } from '@temporalio/worker';
import { createDeliveryActivities } from '../activities/delivery';
import type { DeliveryActivityDeps } from '../activities/deliveryDeps';
import { createRetentionActivities } from '../activities/retention';
import type { Config } from '../config';
import type { CircuitSettings } from '../activities/circuit';
import { tracingEnabled, workerTracing } from '../tracing';
import { bundleInChild } from './bundleInChild';
import { WORKFLOW_INTERCEPTOR_MODULES, workflowCode, type WorkflowCode } from './workflowBundle';

export { workflowBundleOptions } from './workflowBundle';
import { bulkTaskQueue } from '../services/burstLane';

export interface DeliveryWorkerOptions {
  connection: NativeConnection;
  cfg: Config;
  activityDeps: DeliveryActivityDeps;
  /** A pre-built bundle (bundleWorkflowCode with workflowBundleOptions(): workflows and their interceptors) skips webpack at start-up; tests share one. Unset: see workflowCode(). */
  workflowBundle?: { code: string };
  taskQueue?: string;
  /**
   * bulk: the worker of the bulk lane (src/services/burstLane.ts): few batches at a time, so a
   * bursting account's backlog waits in Temporal's fair queue rather than in this process's memory.
   */
  lane?: 'main' | 'bulk';
}

/** First-attempt batches the bulk lane's worker runs at once: enough to keep the sockets of a few origins busy. */
export const BULK_LANE_BATCHES = 16;

/** The worker serving the delivery and retention workflows and their activities on one task queue. */
export async function createDeliveryWorker(opts: DeliveryWorkerOptions): Promise<Worker> {
  const tracing = workerTracing();
  const traced = tracingEnabled();
  let workflows: WorkflowCode = opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : workflowCode(opts.cfg.WORKFLOW_BUNDLE, traced);
  if ('workflowsPath' in workflows) {
    // From the sources: webpack runs in a child process (its memory leaves with it), not in this one.
    const bundled = await bundleInChild(traced);
    if (bundled) workflows = { workflowBundle: bundled };
  }
  const bulk = opts.lane === 'bulk';
  return Worker.create({
    connection: opts.connection,
    namespace: opts.cfg.TEMPORAL_NAMESPACE,
    taskQueue: opts.taskQueue ?? (bulk ? bulkTaskQueue(opts.cfg.TEMPORAL_TASK_QUEUE) : opts.cfg.TEMPORAL_TASK_QUEUE),
    ...workflows,
    // A bundle carries the workflow interceptors already (or not); bundled by the worker itself, only with tracing on.
    interceptors: { activity: tracing.activityInterceptors, ...('workflowBundle' in workflows ? {} : { workflowModules: traced ? WORKFLOW_INTERCEPTOR_MODULES : [] }) },
    sinks: tracing.sinks,
    activities: {
      ...deliveryActivities(opts.cfg, opts.activityDeps),
      ...createRetentionActivities(opts.activityDeps),
    },
    maxConcurrentActivityTaskExecutions: bulk ? 4 : 200, // the bulk lane has no activity tasks, only batches' local activities
    maxConcurrentWorkflowTaskExecutions: bulk ? BULK_LANE_BATCHES : 100,
    maxConcurrentLocalActivityExecutions: bulk ? BULK_LANE_BATCHES * 2 : 200,
    // Autoscaling pollers: measured 65 → 108 deliveries/s on the embedded default (see README, Performance).
    workflowTaskPollerBehavior: { type: 'autoscaling', maximum: bulk ? 8 : 64 },
    activityTaskPollerBehavior: bulk ? { type: 'autoscaling', minimum: 1, initial: 1, maximum: 2 } : { type: 'autoscaling', maximum: 32 },
    // Short-lived workflows: a small cache keeps memory flat however many deliveries wait in
    // back-off; an evicted one is replayed from its (short) history when its timer fires.
    maxCachedWorkflows: opts.cfg.WORKER_MAX_CACHED_WORKFLOWS,
    shutdownGraceTime: '20s',
    // Shutdown is bounded: an activity that ignores its cancellation (a request to a receiver that
    // never answers, a drain page mid-round) cannot hold the process past this; its attempt is then
    // retried elsewhere, and the attempt fence keeps it from being sent twice.
    shutdownForceTime: '45s',
  });
}

/**
 * The delivery activities with this configuration's circuit and attempt timeout: a worker
 * registers them, and `npm start` also calls their first-attempt batch directly (src/services/inlineFirstAttempts.ts).
 */
export function deliveryActivities(cfg: Config, deps: DeliveryActivityDeps) {
  return createDeliveryActivities({ circuit: circuitSettings(cfg), attemptTimeoutMs: cfg.ATTEMPT_TIMEOUT, ...deps });
}

/** The circuit breaker's settings from the configuration. */
export function circuitSettings(cfg: Config): CircuitSettings {
  return { openAfter: cfg.CIRCUIT_OPEN_AFTER, probeMaxIntervalMs: cfg.CIRCUIT_PROBE_MAX_INTERVAL, probeLeaseMs: cfg.ATTEMPT_TIMEOUT + 30_000 };
}
