import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';

/**
 * Installs the Temporal runtime once, with a logger that drops the SDK's per-failure
 * "Activity failed" warnings: every attempt already has our own `delivery.attempted` line,
 * and a receiver that is down for days would otherwise print a stack trace per retry.
 */
export function installTemporalRuntime(opts: { level?: LogLevel; ownSignals?: boolean } = {}): void {
  const inner = new DefaultLogger(opts.level ?? 'WARN');
  const logger = new DefaultLogger(opts.level ?? 'WARN', (entry) => {
    if (entry.message === 'Activity failed' || entry.message === 'Activity failed with nonRetryable error') return;
    inner.log(entry.level, entry.message, entry.meta);
  });
  try {
    Runtime.install({ logger, ...(opts.ownSignals ? { shutdownSignals: [] } : {}) });
  } catch {
    /* already installed (tests that share a process) */
  }
}
