import type { AttemptContext } from '../db/deliveries';
import { limitHoldDelayMs } from '../domain/endpointGate';
import { parseRetryAfter, type RetrySchedule } from '../domain/retrySchedule';
import { createCircuit, type Held, type Probe } from './circuit';
import type { DeliveryActivityDeps } from './deliveryDeps';
import { createEndpointLimiter, type LimitHeld, type Permit } from './endpointLimiter';
import { PACING, SOLE_PROCESS_PACING } from '../db/endpointLimits';
import type { Attempted } from './sendAttempt';

/** A rate-limited send waits at most this long for its slot; later ones are held (the drain sends them). */
export const LIMIT_MAX_WAIT_MS = 1_000;

/**
 * What guards an endpoint around its attempts: the circuit breaker (src/activities/circuit.ts) and
 * the send limits (src/activities/endpointLimiter.ts), with the drain wake-ups they call for.
 */
export function createEndpointGuards(deps: DeliveryActivityDeps) {
  const circuit = createCircuit({
    db: deps.db,
    log: deps.log,
    autoDisableAfterMs: deps.autoDisableAfterMs,
    settings: deps.circuit,
    operationalEmitted: deps.operationalEmitted,
    // The circuit just opened: the endpoint's drain workflow becomes its prober (held wake-ups can probe too).
    circuitOpened: (endpointId, accountId) =>
      deps.wakeDrain?.({ endpointId, accountId, reason: 'circuit-opened' }).catch((err: Error) => deps.log.warn('drain.wake_failed', { endpointId, error: err.message })),
  });
  /**
   * After failed attempts: moves their endpoints' health records (src/activities/circuit.ts);
   * returns the endpoints whose failure streak just auto-disabled them (pending deliveries cancelled).
   */
  const endpointFailures = (failed: Attempted[], schedule: RetrySchedule, probes?: Map<string, Probe>) =>
    circuit.failed(
      failed.map((a) => ({
        deliveryId: a.ctx.delivery.id,
        endpointId: a.ctx.delivery.endpoint_id,
        accountId: a.ctx.delivery.account_id,
        startedAtMs: a.startedAtMs,
        statusCode: a.result.statusCode,
        error: a.error ?? 'attempt failed',
      })),
      schedule,
      probes,
    );

  /** A success to an endpoint that was failing may have closed its circuit, which emits endpoint.recovered. */
  const afterSuccesses = (attempted: Attempted[]) => {
    if (attempted.some((a) => a.ok && a.ctx.health && a.ctx.health.state !== 'healthy')) deps.operationalEmitted?.();
  };

  /** A probe went through (the circuit is closed): the endpoint's held deliveries are sent now by its drain. */
  async function probeSucceeded(ctx: AttemptContext): Promise<void> {
    deps.log.info('endpoint.recovered', { endpointId: ctx.delivery.endpoint_id, accountId: ctx.delivery.account_id, probeDeliveryId: ctx.delivery.id });
    await deps
      .wakeDrain?.({ endpointId: ctx.delivery.endpoint_id, accountId: ctx.delivery.account_id, reason: 'probe-succeeded' })
      .catch((err: Error) => deps.log.warn('drain.wake_failed', { endpointId: ctx.delivery.endpoint_id, error: err.message })); // held deliveries still wake on their own
  }

  const limiter = createEndpointLimiter({ db: deps.db, log: deps.log, leaseMs: circuit.settings.probeLeaseMs, pacing: deps.soleProcess ? SOLE_PROCESS_PACING : PACING });
  /** Deliveries held by their endpoint's send limits, with how long each parks. */
  const limitHolds = (
    held: LimitHeld[],
    nowMs: number,
    input: { schedule: RetrySchedule },
    windowEndsAtMs: (ctx: AttemptContext) => number,
    wakeups: (ctx: AttemptContext) => number,
  ): Held[] =>
    held.map((h) => ({
      ctx: h.ctx,
      reason: h.reason,
      detail: h.detail,
      delayMs: limitHoldDelayMs({ nowMs, retryAtMs: h.retryAtMs, schedule: input.schedule, wakeups: wakeups(h.ctx), windowEndsAtMs: windowEndsAtMs(h.ctx) }),
    }));
  /** The endpoint's drain sends what its limits held, at the endpoint's pace (its pause ended, or its next rate slots). */
  const wakeLimitedDrain = async (ctx: AttemptContext): Promise<void> => {
    await deps
      .wakeDrain?.({ endpointId: ctx.delivery.endpoint_id, accountId: ctx.delivery.account_id, reason: 'limited', heldOnly: true })
      .catch((err: Error) => deps.log.warn('drain.wake_failed', { endpointId: ctx.delivery.endpoint_id, error: err.message })); // held ones still wake on their own
  };
  /** A 429 pauses its whole endpoint; a 2xx after one clears the pause streak. */
  const applyThrottles = (attempted: Attempted[]) =>
    limiter.afterAttempts(
      attempted.map((a) => ({
        endpointId: a.ctx.delivery.endpoint_id,
        accountId: a.ctx.delivery.account_id,
        startedAtMs: a.startedAtMs,
        ok: a.ok,
        statusCode: a.result.statusCode,
        retryAfterMs: parseRetryAfter(a.result.retryAfter, a.startedAtMs),
      })),
      new Map(attempted.map((a) => [a.ctx.delivery.endpoint_id, a.ctx.limits?.throttle_streak ?? 0])),
    );
  /** Releases an origin send slot and the permit's concurrency slot (leased: a failed release frees itself). */
  const releaseBoth = (release: () => void, permit?: Permit) => () => {
    release();
    permit?.release().catch((err: Error) => deps.log.warn('endpoint.slot_release_failed', { endpointId: permit.ctx.delivery.endpoint_id, error: err.message }));
  };

  return { circuit, limiter, endpointFailures, afterSuccesses, probeSucceeded, limitHolds, wakeLimitedDrain, applyThrottles, releaseBoth };
}

export type EndpointGuards = ReturnType<typeof createEndpointGuards>;
