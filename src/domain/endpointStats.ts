/**
 * Per-endpoint delivery stats: the windows the API offers, the failure classes, and the latency
 * histogram the rollup keeps (endpoint_attempt_stats.latency) with the percentile estimate read
 * from it. Pure logic; src/db/endpointStats.ts does the I/O.
 */

export const STATS_WINDOWS = {
  '1h': { seconds: 3_600, bucketSeconds: 60 },
  '24h': { seconds: 86_400, bucketSeconds: 900 },
  '7d': { seconds: 604_800, bucketSeconds: 3_600 },
} as const;
export type StatsWindow = keyof typeof STATS_WINDOWS;

/** Failure classes, as the metrics name them (src/metrics.ts statusClass); 2xx is success. */
export const FAILURE_CLASSES = ['3xx', '4xx', '5xx', 'timeout', 'network', 'refused'] as const;
export type FailureClass = (typeof FAILURE_CLASSES)[number];

/**
 * Lower bounds (ms) of the latency histogram's buckets: 1-1.2-1.5-2-2.5-3-4-5-6-8 per decade,
 * so a bucket is at most ~25 % wide and an interpolated percentile is within ~12 % of the exact
 * one; the last bucket is everything from 60 s (longer than any attempt timeout allows).
 * Append-only: stored histograms are indexed by position.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400, 500, 600, 800, 1_000, 1_200, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_000,
  8_000, 10_000, 12_000, 15_000, 20_000, 25_000, 30_000, 40_000, 50_000, 60_000,
];

/** The histogram bucket (0-based) of a response time. */
export function latencyBucket(ms: number): number {
  let lo = 0;
  let hi = LATENCY_BOUNDS_MS.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (LATENCY_BOUNDS_MS[mid] <= ms) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The q-quantile (0 < q ≤ 1) of a histogram, interpolated linearly inside the bucket that holds
 * it (the open last bucket reads as its lower bound); null when the histogram is empty.
 */
export function percentileMs(histogram: readonly number[], q: number): number | null {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < histogram.length; i++) {
    const n = histogram[i];
    if (n > 0 && below + n >= rank) {
      const lo = LATENCY_BOUNDS_MS[i];
      const hi = LATENCY_BOUNDS_MS[i + 1];
      if (hi === undefined) return lo;
      return Math.round(lo + ((hi - lo) * (rank - below)) / n);
    }
    below += n;
  }
  return LATENCY_BOUNDS_MS[histogram.length - 1];
}

/** Element-wise sum (histograms of different lengths: the shorter reads as zeros beyond its end). */
export function addHistograms(a: number[], b: readonly number[]): number[] {
  for (let i = 0; i < b.length; i++) a[i] = (a[i] ?? 0) + b[i];
  return a;
}

/** The window's buckets: aligned to multiples of bucketSeconds (UTC), the last one holding `nowMs`. */
export function windowBuckets(window: StatsWindow, nowMs: number): { fromMs: number; toMs: number; bucketMs: number; count: number } {
  const { seconds, bucketSeconds } = STATS_WINDOWS[window];
  const bucketMs = bucketSeconds * 1000;
  const toMs = (Math.floor(nowMs / bucketMs) + 1) * bucketMs;
  const count = seconds / bucketSeconds;
  return { fromMs: toMs - count * bucketMs, toMs, bucketMs, count };
}
