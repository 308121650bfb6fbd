import type { Config } from '../config';
import type { RetrySchedule } from '../domain/retrySchedule';

// What every workflow start of the Dispatcher (src/services/dispatcher.ts) derives from the
// configuration: the retry schedule in its input, and the task-queue fairness and priority.

/** The retry schedule (RETRY_*, DELIVERY_WINDOW) that every delivery workflow gets in its input. */
export function scheduleFrom(cfg: Config): RetrySchedule {
  return {
    initialIntervalMs: cfg.RETRY_INITIAL_INTERVAL,
    backoffCoefficient: cfg.RETRY_BACKOFF_COEFFICIENT,
    maximumIntervalMs: cfg.RETRY_MAXIMUM_INTERVAL,
    jitter: cfg.RETRY_JITTER,
    windowMs: cfg.DELIVERY_WINDOW,
  };
}

/**
 * Task-queue fairness between accounts: the account id as fairness key, so the server's matching
 * dispatches one account's backlog in turn with every other account's tasks instead of first in,
 * first out (activities of the workflow inherit it). Undefined with TEMPORAL_FAIRNESS=false.
 */
export function fairnessFor(cfg: Pick<Config, 'TEMPORAL_FAIRNESS'>, accountId: string, deliveries = 1): { fairnessKey: string; fairnessWeight?: number } | undefined {
  if (!cfg.TEMPORAL_FAIRNESS) return undefined;
  // Fair by deliveries, not by tasks: a batch of n advances its account's turn n times as far.
  return deliveries > 1 ? { fairnessKey: accountId, fairnessWeight: Math.max(0.001, 1 / deliveries) } : { fairnessKey: accountId };
}

/**
 * Task priorities (Temporal's priorityKey, 1 = first; the default is 3): an endpoint's recovery
 * drain goes before everything (it sends what waited longest, and its pages must not queue behind
 * thousands of held wake-ups), retry workflows after first attempts (a burst of held or failing
 * deliveries must not delay fresh deliveries to healthy endpoints). Inherited by their activities.
 */
export const PRIORITY = { drain: 1, retry: 4 } as const;
