import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createDeliveryActivities, type DeliveryActivityDeps } from '../activities/delivery';
import { createRetentionActivities } from '../activities/retention';
import type { Config } from '../config';
import type { CircuitSettings } from '../activities/circuit';
import { workerTracing } from '../tracing';

/** Bundled with the workflows (bundleWorkflowCode's workflowInterceptorModules, or at worker start). */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('../workflows/interceptors')];

/** What bundleWorkflowCode needs for the bundle a worker loads: the workflows and their interceptors. */
export function workflowBundleOptions(): { workflowsPath: string; workflowInterceptorModules: string[] } {
  return { workflowsPath: require.resolve('../workflows'), workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES };
}

export interface DeliveryWorkerOptions {
  connection: NativeConnection;
  cfg: Config;
  activityDeps: DeliveryActivityDeps;
  /** A pre-built bundle (bundleWorkflowCode with WORKFLOW_INTERCEPTOR_MODULES) skips webpack at start-up; tests share one. */
  workflowBundle?: { code: string };
  taskQueue?: string;
}

/** The worker serving the delivery and retention workflows and their activities on one task queue. */
export function createDeliveryWorker(opts: DeliveryWorkerOptions): Promise<Worker> {
  const workflows: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> = opts.workflowBundle
    ? { workflowBundle: opts.workflowBundle }
    : { workflowsPath: require.resolve('../workflows') };
  const tracing = workerTracing();
  return Worker.create({
    connection: opts.connection,
    namespace: opts.cfg.TEMPORAL_NAMESPACE,
    taskQueue: opts.taskQueue ?? opts.cfg.TEMPORAL_TASK_QUEUE,
    ...workflows,
    // A pre-built bundle carries the workflow interceptors already.
    interceptors: { activity: tracing.activityInterceptors, ...(opts.workflowBundle ? {} : { workflowModules: WORKFLOW_INTERCEPTOR_MODULES }) },
    sinks: tracing.sinks,
    activities: { ...createDeliveryActivities({ circuit: circuitSettings(opts.cfg), ...opts.activityDeps }), ...createRetentionActivities(opts.activityDeps) },
    maxConcurrentActivityTaskExecutions: 200,
    maxConcurrentWorkflowTaskExecutions: 100,
    maxConcurrentLocalActivityExecutions: 200,
    // Autoscaling pollers: measured 65 → 108 deliveries/s on the embedded default (see README, Performance).
    workflowTaskPollerBehavior: { type: 'autoscaling', maximum: 64 },
    activityTaskPollerBehavior: { type: 'autoscaling', maximum: 32 },
    // Short-lived workflows: a small cache keeps memory flat however many deliveries wait in
    // back-off; an evicted one is replayed from its (short) history when its timer fires.
    maxCachedWorkflows: opts.cfg.WORKER_MAX_CACHED_WORKFLOWS,
    shutdownGraceTime: '20s',
  });
}

/** The circuit breaker's settings from the configuration. */
export function circuitSettings(cfg: Config): CircuitSettings {
  return { openAfter: cfg.CIRCUIT_OPEN_AFTER, probeMaxIntervalMs: cfg.CIRCUIT_PROBE_MAX_INTERVAL, probeLeaseMs: cfg.ATTEMPT_TIMEOUT + 30_000 };
}
