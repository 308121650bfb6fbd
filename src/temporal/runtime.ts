import { IllegalStateError } from '@temporalio/common';
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';

/**
 * Installs the Temporal runtime once, before any NativeConnection or Worker exists, with a logger
 * that drops the SDK's per-failure "Activity failed" warnings: every attempt already has our own
 * `delivery.attempted` line, and a receiver that is down for days would otherwise print a stack
 * trace per retry.
 *
 * `metricsAddress` (TEMPORAL_METRICS_ADDRESS, host:port) turns on the SDK's Prometheus exporter:
 * `GET http://<address>/metrics` serves the worker's temporal_* metrics (workflow task failures,
 * schedule-to-start latencies, slots, pollers; README, Telemetry). Durations in seconds.
 */
export function installTemporalRuntime(opts: { level?: LogLevel; ownSignals?: boolean; metricsAddress?: string } = {}): void {
  const inner = new DefaultLogger(opts.level ?? 'WARN');
  const logger = new DefaultLogger(opts.level ?? 'WARN', (entry) => {
    if (entry.message === 'Activity failed' || entry.message === 'Activity failed with nonRetryable error') return;
    inner.log(entry.level, entry.message, entry.meta);
  });
  try {
    Runtime.install({
      logger,
      ...(opts.ownSignals ? { shutdownSignals: [] } : {}),
      ...(opts.metricsAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: opts.metricsAddress, useSecondsForDurations: true } } } } : {}),
    });
  } catch (err) {
    // Already installed (tests that share a process); anything else (a taken metrics port) is fatal.
    if (!(err instanceof IllegalStateError || (err as Error)?.name === 'IllegalStateError')) throw err;
  }
}
