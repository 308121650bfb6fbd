import { randomUUID } from 'node:crypto';
import type { Queryable } from '../db/database';
import type { AttemptContext } from '../db/deliveries';
import { clearThrottleStreak, releaseInFlightSlots, reserveSendSlots, takeInFlightSlots, throttleEndpoint } from '../db/endpointLimits';
import type { LimitReason } from '../domain/endpointGate';
import { MAX_RETRY_AFTER_MS } from '../domain/retrySchedule';
import type { Logger } from '../logger';

/** Leave to send one delivery: not before `startAtMs`, holding concurrency slot `slot` (if the endpoint has maxInFlight) until released. */
export interface Permit {
  ctx: AttemptContext;
  startAtMs: number;
  /** The same moment on this process's Date.now() clock (the callers' clock may be a test's skipped one). */
  localAtMs: number;
  /** Spacing of the endpoint's rate-limit slots (0: no rate limit). */
  intervalMs: number;
  release(): Promise<void>;
}

export interface LimitHeld {
  ctx: AttemptContext;
  reason: LimitReason;
  /** When the endpoint may take a request again (as far as this caller knows). */
  retryAtMs: number;
  detail: string;
}

export interface Admission {
  permits: Permit[];
  held: LimitHeld[];
}

/** An attempt's answer, as the limiter needs it. */
export interface LimitOutcome {
  endpointId: string;
  accountId: string;
  startedAtMs: number;
  ok: boolean;
  statusCode?: number;
  retryAfterMs?: number;
}

const noop = async () => {};
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The endpoints' last paced request in this process, shared by every limiter in it (a process may
 * run two workers, src/services/burstLane.ts): one process never bunches its own requests.
 */
const lastPaced = new Map<string, { chain: Promise<void>; lastAt: number }>();

/**
 * The endpoint's send limits as every sender applies them (first-attempt batches, retry
 * attempts, the recovery drain): a receiver's 429 pause, `maxInFlight` concurrent requests and
 * `rateLimitPerSecond`, all shared through the database (src/db/endpointLimits.ts) so they hold
 * across worker processes. An endpoint with none of them costs nothing: no statement.
 * `pacing`: the share of an endpoint's rate its slots use (src/db/endpointLimits.ts PACING).
 */
export function createEndpointLimiter(deps: { db: Queryable; log: Logger; leaseMs: number; pacing?: number }) {
  /**
   * Admits deliveries of ONE endpoint, oldest first: each admitted one gets a start time within
   * `maxWaitMs` (its rate-limit slot) and a concurrency slot; the rest are held with the reason.
   */
  async function admit(group: AttemptContext[], holderPrefix: string, nowMs: number, maxWaitMs: number): Promise<Admission> {
    const limits = group[0]?.limits;
    const localNow = Date.now();
    const now = (ctx: AttemptContext): Permit => ({ ctx, startAtMs: nowMs, localAtMs: localNow, intervalMs: 0, release: noop });
    if (!limits) return { permits: group.map(now), held: [] };
    const endpointId = group[0].delivery.endpoint_id;
    const throttledUntil = limits.throttled_until ? new Date(limits.throttled_until).getTime() : 0;
    if (throttledUntil > nowMs) {
      const detail = `the endpoint answered 429 Too Many Requests: nothing is sent to it until ${iso(throttledUntil)}`;
      return { permits: [], held: group.map((ctx) => ({ ctx, reason: 'throttled', retryAtMs: throttledUntil, detail })) };
    }
    if (limits.rate_limit_per_second === null && limits.max_in_flight === null) return { permits: group.map(now), held: [] };

    const holder = `${holderPrefix}:${randomUUID().slice(0, 8)}`;
    let slots: number[] | undefined;
    let k = group.length;
    if (limits.max_in_flight !== null) {
      slots = await takeInFlightSlots(deps.db, endpointId, holder, Math.min(k, limits.max_in_flight), nowMs, deps.leaseMs);
      k = slots.length;
      if (k === 0) {
        const detail = `the endpoint's limit of ${limits.max_in_flight} requests in flight is reached`;
        return { permits: [], held: group.map((ctx) => ({ ctx, reason: 'max_in_flight', retryAtMs: nowMs + 1_000, detail })) };
      }
    }
    let firstAtMs = nowMs;
    let intervalMs = 0;
    let granted = k;
    if (limits.rate_limit_per_second !== null) {
      const r = await reserveSendSlots(deps.db, endpointId, k, nowMs, maxWaitMs, deps.pacing);
      if (r) ({ firstAtMs, intervalMs, granted } = r);
    }
    if (slots && granted < slots.length) await releaseInFlightSlots(deps.db, endpointId, holder, slots.slice(granted));
    const permits = group.slice(0, granted).map((ctx, i): Permit => {
      const slot = slots?.[i];
      return {
        ctx,
        startAtMs: firstAtMs + i * intervalMs,
        localAtMs: localNow + (firstAtMs + i * intervalMs - nowMs),
        intervalMs,
        release: slot === undefined ? noop : () => releaseInFlightSlots(deps.db, endpointId, holder, [slot]),
      };
    });
    const rest = group.slice(granted);
    // Fewer than the concurrency slots taken: the rate limit held them back; otherwise the slots did.
    const reason: LimitReason = granted < k ? 'rate_limited' : 'max_in_flight';
    const detail =
      reason === 'rate_limited'
        ? `the endpoint's rate limit of ${limits.rate_limit_per_second}/s: its next free send slot is at ${iso(Math.max(firstAtMs + granted * intervalMs, nowMs))}`
        : `the endpoint's limit of ${limits.max_in_flight} requests in flight is reached`;
    const retryAtMs = reason === 'rate_limited' ? Math.max(firstAtMs + granted * intervalMs, nowMs) : nowMs + 1_000;
    return { permits, held: rest.map((ctx) => ({ ctx, reason, retryAtMs, detail })) };
  }

  /**
   * After attempts: a 429 (or a 503 with Retry-After) pauses the whole endpoint for its
   * Retry-After; a 2xx clears the pause streak. Returns the endpoints paused now, with the pause end.
   */
  async function afterAttempts(outcomes: LimitOutcome[], streaks: Map<string, number>): Promise<Map<string, number>> {
    const paused = new Map<string, number>();
    const cleared = new Set<string>();
    for (const o of outcomes) {
      if (o.statusCode === 429 || (o.statusCode === 503 && o.retryAfterMs !== undefined)) {
        if (paused.has(o.endpointId)) continue;
        const until = await throttleEndpoint(deps.db, o.endpointId, o.startedAtMs, o.retryAfterMs === undefined ? undefined : Math.min(o.retryAfterMs, MAX_RETRY_AFTER_MS)); // capped as a delivery's own wait
        paused.set(o.endpointId, until.getTime());
        deps.log.warn('endpoint.throttled', {
          endpointId: o.endpointId,
          accountId: o.accountId,
          statusCode: o.statusCode,
          retryAfterMs: o.retryAfterMs ?? null,
          until: until.toISOString(),
        });
      } else if (o.ok && (streaks.get(o.endpointId) ?? 0) > 0) cleared.add(o.endpointId);
    }
    await clearThrottleStreak(
      deps.db,
      [...cleared].filter((id) => !paused.has(id)),
    );
    return paused;
  }

  /**
   * Waits until the permit's slot, and in this process never less than the slot spacing after the
   * endpoint's previous paced request: timers that fire late together (a busy event loop, a
   * descheduled process) leave one after the other, not in a bunch.
   */
  function pace(permit: Permit): Promise<void> {
    if (permit.intervalMs <= 0) return Promise.resolve();
    const endpointId = permit.ctx.delivery.endpoint_id;
    const entry = lastPaced.get(endpointId) ?? { chain: Promise.resolve(), lastAt: -Infinity };
    const turn = entry.chain.then(async () => {
      // Never more than a second past the permit's own slot: a rate lowered since the previous
      // request (a longer spacing) must not hold a request its reservation already allowed.
      const wait = Math.max(permit.localAtMs, Math.min(entry.lastAt + permit.intervalMs, permit.localAtMs + 1_000)) - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      entry.lastAt = Date.now();
    });
    entry.chain = turn;
    lastPaced.set(endpointId, entry);
    void turn.then(() => {
      if (lastPaced.get(endpointId)?.chain === turn) lastPaced.delete(endpointId);
    });
    return turn;
  }

  return { admit, afterAttempts, pace };
}

export type EndpointLimiter = ReturnType<typeof createEndpointLimiter>;
