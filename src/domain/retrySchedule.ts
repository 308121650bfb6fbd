/**
 * The one back-off module: a pure function of (attempt, last response) → delay before the
 * next attempt. The activity hands the result to Temporal as `nextRetryDelay`, so this is
 * the schedule receivers actually see; Temporal's own retry policy (same numbers, no jitter)
 * only applies when an attempt dies without answering (worker crash, task timeout).
 */
export interface RetrySchedule {
  initialIntervalMs: number;
  backoffCoefficient: number;
  maximumIntervalMs: number;
  /** ±fraction of random spread, 0 for none. */
  jitter: number;
  windowMs: number;
}

export interface AttemptResult {
  /** HTTP status, absent when no response arrived (network error, timeout). */
  statusCode?: number;
  timedOut?: boolean;
  /** Parsed Retry-After in ms, when the receiver sent one. */
  retryAfterMs?: number;
}

/** Slow down on 429 and timeouts: at least this long before trying again. */
export const MIN_DELAY_AFTER_THROTTLE_MS = 60_000;
/** A Retry-After above this is not trusted (a receiver asking for a week is misconfigured). */
export const MAX_RETRY_AFTER_MS = 6 * 3_600_000;

/** The un-jittered delay after attempt `attempt` (1-based) failed. */
export function baseDelayMs(schedule: RetrySchedule, attempt: number): number {
  const raw = schedule.initialIntervalMs * Math.pow(schedule.backoffCoefficient, Math.max(0, attempt - 1));
  return Math.min(raw, schedule.maximumIntervalMs);
}

export function retryDelayMs(schedule: RetrySchedule, attempt: number, result: AttemptResult, random: () => number = Math.random): number {
  let delay = baseDelayMs(schedule, attempt);
  if (schedule.jitter > 0) delay *= 1 + schedule.jitter * (2 * random() - 1);
  const throttled = result.statusCode === 429 || result.timedOut === true;
  if (throttled) delay = Math.max(delay, MIN_DELAY_AFTER_THROTTLE_MS);
  if (result.retryAfterMs !== undefined && (result.statusCode === 429 || result.statusCode === 503)) {
    delay = Math.max(delay, Math.min(result.retryAfterMs, MAX_RETRY_AFTER_MS));
  }
  return Math.max(1_000, Math.round(delay));
}

/** Parses a Retry-After header: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/** The nominal schedule, for documentation and the README table: [attempt, delayBefore, elapsed]. */
export function nominalSchedule(schedule: RetrySchedule): { attempt: number; delayMs: number; elapsedMs: number }[] {
  const rows = [{ attempt: 1, delayMs: 0, elapsedMs: 0 }];
  let elapsed = 0;
  for (let attempt = 1; ; attempt++) {
    const delay = baseDelayMs(schedule, attempt);
    if (elapsed + delay > schedule.windowMs) break;
    elapsed += delay;
    rows.push({ attempt: attempt + 1, delayMs: delay, elapsedMs: elapsed });
  }
  return rows;
}
