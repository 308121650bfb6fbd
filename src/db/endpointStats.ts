import { addHistograms, FAILURE_CLASSES, LATENCY_BOUNDS_MS, percentileMs, STATS_WINDOWS, windowBuckets, type FailureClass, type StatsWindow } from '../domain/endpointStats';
import type { Queryable } from './database';

/**
 * Per-endpoint stats, read from the per-minute rollup that recordAttempts keeps
 * (endpoint_attempt_stats, see src/db/deliveries.ts): a window reads at most one row per minute
 * of its length (10 080 for 7 days) through the primary key, whatever the number of attempts.
 */

export type FailedBy = Record<FailureClass, number>;

export interface StatsFigures {
  attempts: number;
  succeeded: number;
  failed: number;
  failedBy: FailedBy;
  /** succeeded / attempts; null without attempts. */
  successRate: number | null;
  /** Response-time percentiles (attempts that got an HTTP answer), estimated from the histogram; null without any. */
  p50Ms: number | null;
  p95Ms: number | null;
}

export interface EndpointStats {
  window: StatsWindow;
  bucketSeconds: number;
  from: Date;
  to: Date;
  totals: StatsFigures;
  buckets: (StatsFigures & { start: Date })[];
  /** The latest failed attempt in the window. */
  lastError: { at: Date; error: string } | null;
}

interface Acc {
  attempts: number;
  succeeded: number;
  failedBy: FailedBy;
  latency: number[];
}

const emptyAcc = (): Acc => ({
  attempts: 0,
  succeeded: 0,
  failedBy: Object.fromEntries(FAILURE_CLASSES.map((c) => [c, 0])) as FailedBy,
  latency: new Array<number>(LATENCY_BOUNDS_MS.length).fill(0),
});

function figures(a: Acc): StatsFigures {
  const failed = a.attempts - a.succeeded;
  return {
    attempts: a.attempts,
    succeeded: a.succeeded,
    failed,
    failedBy: a.failedBy,
    successRate: a.attempts === 0 ? null : Math.round((a.succeeded / a.attempts) * 10_000) / 10_000,
    p50Ms: percentileMs(a.latency, 0.5),
    p95Ms: percentileMs(a.latency, 0.95),
  };
}

export async function endpointStats(db: Queryable, endpointId: string, window: StatsWindow, nowMs = Date.now()): Promise<EndpointStats> {
  const { fromMs, toMs, bucketMs, count } = windowBuckets(window, nowMs);
  const params = [endpointId, new Date(fromMs), new Date(toMs), bucketMs / 1000];
  const bucketOf = `floor((extract(epoch from minute) - extract(epoch from $2::timestamptz)) / $4)::int`;
  // One pass over the window's rows: the histogram summed element by element (no unnest).
  const sums = LATENCY_BOUNDS_MS.map((_b, i) => `sum(latency[${i + 1}])::int`).join(', ');
  const rows = await db.query<{ b: number; attempts: number; succeeded: number; f3: number; f4: number; f5: number; ft: number; fn: number; fr: number; latency: number[] }>(
    `select ${bucketOf} as b, sum(attempts)::int as attempts, sum(succeeded)::int as succeeded,
       sum(failed_3xx)::int as f3, sum(failed_4xx)::int as f4, sum(failed_5xx)::int as f5,
       sum(failed_timeout)::int as ft, sum(failed_network)::int as fn, sum(failed_refused)::int as fr,
       array[${sums}] as latency
     from endpoint_attempt_stats where endpoint_id = $1 and minute >= $2 and minute < $3 group by 1`,
    params,
  );
  const [last] = await db.query<{ last_error: string | null; last_error_at: Date }>(
    `select last_error, last_error_at from endpoint_attempt_stats
     where endpoint_id = $1 and minute >= $2 and minute < $3 and last_error_at is not null order by minute desc limit 1`,
    params.slice(0, 3),
  );

  const accs = Array.from({ length: count }, emptyAcc);
  const total = emptyAcc();
  for (const r of rows) {
    const a = accs[r.b];
    if (!a) continue;
    a.attempts = r.attempts;
    a.succeeded = r.succeeded;
    a.failedBy = { '3xx': r.f3, '4xx': r.f4, '5xx': r.f5, timeout: r.ft, network: r.fn, refused: r.fr };
    a.latency = r.latency.map((n) => n ?? 0);
    total.attempts += r.attempts;
    total.succeeded += r.succeeded;
    for (const c of FAILURE_CLASSES) total.failedBy[c] += a.failedBy[c];
  }
  for (const a of accs) addHistograms(total.latency, a.latency);

  return {
    window,
    bucketSeconds: STATS_WINDOWS[window].bucketSeconds,
    from: new Date(fromMs),
    to: new Date(toMs),
    totals: figures(total),
    buckets: accs.map((a, k) => ({ start: new Date(fromMs + k * bucketMs), ...figures(a) })),
    lastError: last ? { at: new Date(last.last_error_at), error: last.last_error ?? '' } : null,
  };
}

/** Retention: rollup rows older than the longest window are never read again. */
export async function purgeStats(db: Queryable, before: Date, batchSize: number): Promise<number> {
  const rows = await db.query(
    `delete from endpoint_attempt_stats where (endpoint_id, minute) in
       (select endpoint_id, minute from endpoint_attempt_stats where minute < $1 limit $2) returning 1`,
    [before, batchSize],
  );
  return rows.length;
}
