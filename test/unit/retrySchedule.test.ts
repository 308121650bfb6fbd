import { baseDelayMs, MAX_RETRY_AFTER_MS, nominalSchedule, parseRetryAfter, retryDelayMs, type RetrySchedule } from '../../src/domain/retrySchedule';

const s: RetrySchedule = { initialIntervalMs: 10_000, backoffCoefficient: 3, maximumIntervalMs: 12 * 3_600_000, jitter: 0, windowMs: 3 * 86_400_000 };
const H = 3_600_000;

test.each([
  [1, 10_000],
  [2, 30_000],
  [3, 90_000],
  [4, 270_000],
  [5, 810_000],
  [6, 2_430_000],
  [7, 7_290_000],
  [8, 21_870_000],
  [9, 12 * H], // 65,610 s capped at 12 h
  [20, 12 * H],
])('when attempt %i failed, then the base delay is %i ms', (attempt, delay) => {
  expect(baseDelayMs(s, attempt)).toBe(delay);
  expect(retryDelayMs(s, attempt, { statusCode: 500 })).toBe(delay);
});

test('when jitter is 20%, then every delay stays within ±20% of the base and they differ', () => {
  const j = { ...s, jitter: 0.2 };
  expect(retryDelayMs(j, 3, { statusCode: 500 }, () => 0)).toBe(72_000);
  expect(retryDelayMs(j, 3, { statusCode: 500 }, () => 1)).toBe(108_000);
  const seen = new Set(Array.from({ length: 50 }, () => retryDelayMs(j, 3, { statusCode: 500 })));
  expect(seen.size).toBeGreaterThan(10);
  for (const d of seen) expect(d >= 72_000 && d <= 108_000).toBe(true);
});

test.each([
  ['429 waits at least a minute', { statusCode: 429 }, 1, 60_000],
  ['a timeout waits at least a minute', { timedOut: true }, 1, 60_000],
  ['Retry-After on 429 is honoured', { statusCode: 429, retryAfterMs: 300_000 }, 1, 300_000],
  ['Retry-After on 503 is honoured', { statusCode: 503, retryAfterMs: 120_000 }, 1, 120_000],
  ['Retry-After is capped', { statusCode: 503, retryAfterMs: 7 * 86_400_000 }, 1, MAX_RETRY_AFTER_MS],
  ['Retry-After never shortens the back-off', { statusCode: 503, retryAfterMs: 1_000 }, 5, 810_000],
  ['Retry-After on a 500 is ignored', { statusCode: 500, retryAfterMs: 300_000 }, 1, 10_000],
])('when %s', (_name, result, attempt, expected) => {
  expect(retryDelayMs(s, attempt, result)).toBe(expected);
});

test('when Retry-After is parsed, then seconds and HTTP dates both work and garbage is ignored', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  expect(parseRetryAfter('120', now)).toBe(120_000);
  expect(parseRetryAfter('Thu, 01 Jan 2026 00:05:00 GMT', now)).toBe(300_000);
  expect(parseRetryAfter('soon', now)).toBeUndefined();
  expect(parseRetryAfter(undefined, now)).toBeUndefined();
});

test('when the nominal schedule is listed, then it stays inside the 3-day window with ~14 attempts', () => {
  const rows = nominalSchedule(s);
  expect(rows[0]).toEqual({ attempt: 1, delayMs: 0, elapsedMs: 0 });
  expect(rows[rows.length - 1].elapsedMs).toBeLessThanOrEqual(s.windowMs);
  expect(rows.length).toBe(14);
});
