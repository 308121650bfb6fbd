import { baseDelayMs, type RetrySchedule } from './retrySchedule';

/**
 * The circuit breaker's decisions, pure: whether a delivery about to be attempted is sent, is
 * the endpoint's probe, or is held (no request); and how long a held one parks.
 */
export interface GateHealth {
  state: 'healthy' | 'failing' | 'open' | 'probing';
  next_probe_at: Date | null;
  probe_owner: string | null;
  probe_lease_until: Date | null;
}

/** Held by the open circuit, or by the endpoint's send limits (src/activities/endpointLimiter.ts). */
export type LimitReason = 'throttled' | 'rate_limited' | 'max_in_flight';
export type HoldReason = 'circuit_open' | 'probing' | LimitReason;
export const HOLD_REASONS: readonly HoldReason[] = ['circuit_open', 'probing', 'throttled', 'rate_limited', 'max_in_flight'];
export type GateDecision = { kind: 'send' } | { kind: 'probe' } | { kind: 'hold'; reason: HoldReason };

/**
 * `send` while the circuit is closed; `probe` when it is open and the probe is due, or the
 * probe's lease has expired (or is this caller's own: a re-run); `hold` otherwise. A `probe`
 * decision still has to win the lease (takeProbeLease) before it sends.
 */
export function decideGate(h: GateHealth | null | undefined, nowMs: number, owner: string): GateDecision {
  if (!h || h.state === 'healthy' || h.state === 'failing') return { kind: 'send' };
  if (h.state === 'open') {
    const due = h.next_probe_at === null || new Date(h.next_probe_at).getTime() <= nowMs;
    return due ? { kind: 'probe' } : { kind: 'hold', reason: 'circuit_open' };
  }
  const leaseOver = h.probe_lease_until === null || new Date(h.probe_lease_until).getTime() < nowMs;
  return leaseOver || h.probe_owner === owner ? { kind: 'probe' } : { kind: 'hold', reason: 'probing' };
}

/**
 * The wait before the next probe after a failure `elapsedMs` into the endpoint's failure streak:
 * the retry schedule anchored at the streak's start (as if one delivery had failed since then),
 * so a lone failing delivery is probed exactly on its own schedule; once the schedule's step
 * reaches `maxIntervalMs`, every `maxIntervalMs`.
 */
export function nextProbeDelayMs(schedule: RetrySchedule, elapsedMs: number, maxIntervalMs: number): number {
  let cumulative = 0;
  for (let attempt = 1; attempt < 1_000; attempt++) {
    const step = baseDelayMs(schedule, attempt);
    if (step >= maxIntervalMs) return maxIntervalMs;
    cumulative += step;
    if (cumulative > elapsedMs) return cumulative - elapsedMs;
  }
  return maxIntervalMs;
}

/** The probe interval after `probeAttempt` probes: the endpoint's own back-off (the retry schedule), capped. */
export function probeIntervalMs(schedule: RetrySchedule, probeAttempt: number, maxIntervalMs: number): number {
  return Math.min(baseDelayMs(schedule, Math.max(1, probeAttempt)), maxIntervalMs);
}

/**
 * A held delivery parks this many steps further along the retry schedule than its wake-ups: the
 * endpoint's drain probes and, once the endpoint is back, sends every parked delivery, so a held
 * one needs to wake only for its window's end (or if no drain runs). At the default schedule the
 * first hold is 1m30s, then 4m30s, 13m30s, … (~9 wake-ups in 3 days), not 10 s, 30 s, … — 10,000
 * held deliveries would otherwise wake hundreds of times a second in the first minutes of an outage.
 */
export const HOLD_PARK_STEPS = 2;

export interface HoldDelayInput {
  nowMs: number;
  /** When the next probe may go out (now or past while one is out). */
  nextProbeAtMs: number;
  /** The current probe interval. */
  probeIntervalMs: number;
  schedule: RetrySchedule;
  /** Wake-ups of this delivery in its series so far (real attempts and held ones): held deliveries park exponentially. */
  wakeups: number;
  windowEndsAtMs: number;
  random?: () => number;
}

/**
 * How long a held delivery parks: until a little after the next probe (spread over 10–30 % of the
 * probe interval, so the held ones do not all wake at once), and at least its own back-off for
 * its number of wake-ups plus HOLD_PARK_STEPS (so a long outage costs each held delivery ~9
 * wake-ups in 3 days, not one per probe). Clamped to end 1 s before the delivery window, so it stays pending (and retriable) to
 * the end; with less than 2 s of window left it lands past it, which ends the delivery `undeliverable`.
 */
export function holdDelayMs(i: HoldDelayInput): number {
  const random = i.random ?? Math.random;
  const afterProbe = Math.max(0, i.nextProbeAtMs - i.nowMs) + (0.1 + 0.2 * random()) * i.probeIntervalMs;
  const wanted = Math.round(Math.max(afterProbe, baseDelayMs(i.schedule, Math.max(1, i.wakeups) + HOLD_PARK_STEPS)));
  const left = i.windowEndsAtMs - i.nowMs;
  if (left < 2_000) return Math.max(wanted, left + 1_000, 1_000);
  return Math.min(Math.max(wanted, 1_000), left - 1_000);
}

/**
 * A delivery held by its endpoint's limits parks at least this long: the endpoint's drain (which
 * claims parked deliveries waking more than 5 s later) sends it well before, at the endpoint's
 * pace, so held deliveries do not race each other for slots; it wakes by itself only if no drain runs.
 */
export const LIMIT_HOLD_MIN_MS = 15_000;

export interface LimitHoldInput {
  nowMs: number;
  /** When the endpoint may take the next request (end of a 429 pause, next free rate slot). */
  retryAtMs: number;
  schedule: RetrySchedule;
  wakeups: number;
  windowEndsAtMs: number;
  random?: () => number;
}

/**
 * How long a delivery held by its endpoint's send limits parks: until the endpoint may take a
 * request again, and at least its own back-off for its number of wake-ups, plus up to 20 %
 * spread. Meanwhile the endpoint's drain sends the held ones at the endpoint's pace, so most
 * are delivered before they wake; one that wakes first tries again. Clamped to the window as
 * holdDelayMs.
 */
export function limitHoldDelayMs(i: LimitHoldInput): number {
  const random = i.random ?? Math.random;
  const wanted = Math.round(Math.max(i.retryAtMs - i.nowMs, baseDelayMs(i.schedule, Math.max(1, i.wakeups)), LIMIT_HOLD_MIN_MS) * (1 + 0.2 * random()));
  const left = i.windowEndsAtMs - i.nowMs;
  if (left < 2_000) return Math.max(wanted, left + 1_000, 1_000);
  return Math.min(Math.max(wanted, 1_000), left - 1_000);
}
