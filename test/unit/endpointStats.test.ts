import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LATENCY_BOUNDS_MS, latencyBucket, percentileMs, windowBuckets } from '../../src/domain/endpointStats';

test('when a response time is bucketed, then it lands in the bucket whose lower bound is the largest not above it', () => {
  expect([0, 1, 7, 8, 99, 100, 119, 120, 59_999, 60_000, 600_000].map(latencyBucket).map((i) => LATENCY_BOUNDS_MS[i])).toEqual([
    0, 1, 6, 8, 80, 100, 100, 120, 50_000, 60_000, 60_000,
  ]);
});

test('when percentiles are read from a histogram, then they interpolate inside the bucket that holds the rank', () => {
  const h = new Array(LATENCY_BOUNDS_MS.length).fill(0);
  h[latencyBucket(100)] = 3;
  h[latencyBucket(200)] = 1;
  expect(percentileMs(h, 0.5)).toBe(113); // rank 2 of 3 in [100, 120)
  expect(percentileMs(h, 0.95)).toBe(240); // rank 3.8: 0.8 of [200, 250)
  expect(percentileMs(new Array(LATENCY_BOUNDS_MS.length).fill(0), 0.5)).toBeNull();
  const slow = new Array(LATENCY_BOUNDS_MS.length).fill(0);
  slow[LATENCY_BOUNDS_MS.length - 1] = 1;
  expect(percentileMs(slow, 0.5)).toBe(60_000);
});

test('when a window is cut into buckets, then they are aligned, cover the window and the last holds now', () => {
  const now = Date.parse('2025-02-09T03:07:31Z');
  expect(windowBuckets('1h', now)).toEqual({ fromMs: Date.parse('2025-02-09T02:08:00Z'), toMs: Date.parse('2025-02-09T03:08:00Z'), bucketMs: 60_000, count: 60 });
  expect(windowBuckets('24h', now).count).toBe(96);
  expect(windowBuckets('7d', now)).toMatchObject({ toMs: Date.parse('2025-02-09T04:00:00Z'), count: 168 });
});

test('when the stats migration backfills the rollup, then it uses the same latency buckets as the code', () => {
  const source = readFileSync(join(__dirname, '../../src/db/migrations.ts'), 'utf8');
  expect(source).toContain(`array[${LATENCY_BOUNDS_MS.join(',')}]`);
  expect(source).toContain(`generate_series(1, ${LATENCY_BOUNDS_MS.length})`);
});
