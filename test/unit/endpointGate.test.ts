import { decideGate, holdDelayMs, nextProbeDelayMs, probeIntervalMs } from '../../src/domain/endpointGate';
import type { RetrySchedule } from '../../src/domain/retrySchedule';

const schedule: RetrySchedule = { initialIntervalMs: 10_000, backoffCoefficient: 3, maximumIntervalMs: 12 * 3_600_000, jitter: 0, windowMs: 3 * 86_400_000 };
const NOW = Date.parse('2030-01-01T00:00:00Z');
const at = (ms: number) => new Date(NOW + ms);

test.each([
  ['no record', null, { kind: 'send' }],
  ['healthy', { state: 'healthy', next_probe_at: null, probe_owner: null, probe_lease_until: null }, { kind: 'send' }],
  ['failing', { state: 'failing', next_probe_at: null, probe_owner: null, probe_lease_until: null }, { kind: 'send' }],
  ['open, probe not due', { state: 'open', next_probe_at: at(1), probe_owner: null, probe_lease_until: null }, { kind: 'hold', reason: 'circuit_open' }],
  ['open, probe due', { state: 'open', next_probe_at: at(0), probe_owner: null, probe_lease_until: null }, { kind: 'probe' }],
  ['probing, another owner, live lease', { state: 'probing', next_probe_at: at(-5), probe_owner: 'delivery-x', probe_lease_until: at(1) }, { kind: 'hold', reason: 'probing' }],
  ['probing, own lease (a re-run)', { state: 'probing', next_probe_at: at(-5), probe_owner: 'me', probe_lease_until: at(1) }, { kind: 'probe' }],
  ['probing, lease expired', { state: 'probing', next_probe_at: at(-5), probe_owner: 'delivery-x', probe_lease_until: at(-1) }, { kind: 'probe' }],
] as const)('when the endpoint is %s, then decideGate answers as the circuit breaker says', (_name, health, expected) => {
  expect(decideGate(health as never, NOW, 'me')).toEqual(expected);
});

test('when probes keep failing, then their interval follows the retry schedule up to the cap', () => {
  expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => probeIntervalMs(schedule, n, 3_600_000))).toEqual([10_000, 30_000, 90_000, 270_000, 810_000, 2_430_000, 3_600_000, 3_600_000]);
});

test('when a delivery is held, then it parks until 10–30 % of a probe interval after the next probe, at least its own back-off two steps further on, and within its window', () => {
  const base = { nowMs: NOW, nextProbeAtMs: NOW + 600_000, probeIntervalMs: 90_000, schedule, windowEndsAtMs: NOW + 86_400_000 };
  expect(holdDelayMs({ ...base, wakeups: 1, random: () => 0 })).toBe(600_000 + 9_000);
  expect(holdDelayMs({ ...base, wakeups: 1, random: () => 1 })).toBe(600_000 + 27_000);
  expect(holdDelayMs({ ...base, nextProbeAtMs: NOW + 10_000, wakeups: 1, random: () => 0 })).toBe(90_000); // a first hold parks 1m30s, not 10 s
  expect(holdDelayMs({ ...base, wakeups: 5, random: () => 0 })).toBe(7_290_000); // its own back-off (step 7) is longer
  // Never past the window while more than 2 s of it is left: it stays pending to the end.
  expect(holdDelayMs({ ...base, wakeups: 9, windowEndsAtMs: NOW + 100_000, random: () => 0 })).toBe(99_000);
  // Less than 2 s left: it lands past the window, which ends the delivery undeliverable.
  expect(holdDelayMs({ ...base, wakeups: 9, windowEndsAtMs: NOW + 1_500, random: () => 0 })).toBeGreaterThan(1_500);
});

test("when a probe fails some time into the failure streak, then the next is due at the next point of the retry schedule anchored at the streak's start, or after the cap once the schedule's step reaches it", () => {
  // Points of the schedule: 10 s, 40 s, 2m10s, 6m40s, 20m10s, 1h40s, 3h2m10s, …
  expect(nextProbeDelayMs(schedule, 0, 12 * 3_600_000)).toBe(10_000);
  expect(nextProbeDelayMs(schedule, 10_000, 12 * 3_600_000)).toBe(30_000); // a lone delivery's attempt 2 → its attempt 3
  expect(nextProbeDelayMs(schedule, 130_050, 12 * 3_600_000)).toBe(270_000 - 50); // 50 ms of drift: still its next attempt
  expect(nextProbeDelayMs(schedule, 10 * 3_600_000, 12 * 3_600_000)).toBe(12 * 3_600_000);
  expect(nextProbeDelayMs(schedule, 1_300_000, 3_600_000)).toBe(2_430_000 - (1_300_000 - 1_210_000)); // 40m30s step, under the 1 h cap
  expect(nextProbeDelayMs(schedule, 4 * 3_600_000, 3_600_000)).toBe(3_600_000);
});
