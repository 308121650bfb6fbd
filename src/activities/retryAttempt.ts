import { ApplicationFailure, Context } from '@temporalio/activity';
import { checkBeforeSend, claimForAttempt, recordAttempts, type AttemptContext } from '../db/deliveries';
import { countHeldWakeup, reclaimFromDrain } from '../db/drain';
import { ATTEMPTED_SIGNAL, type AttemptNews } from '../domain/deliveryStory';
import { FailureType } from '../domain/errors';
import type { RetrySchedule } from '../domain/retrySchedule';
import { AttemptLease } from './attemptLease';
import type { Held } from './circuit';
import type { DeliveryActivityDeps } from './deliveryDeps';
import { LIMIT_MAX_WAIT_MS, type EndpointGuards } from './endpointGuards';
import type { Permit } from './endpointLimiter';
import { persistently } from './persistently';
import { callerWorkflowId, LEASE_LOST, STOPPED, stopReason, type Attempted, type AttemptSender } from './sendAttempt';

export interface PostWebhookInput {
  deliveryId: string;
  series: number;
  /** Epoch ms after which no attempt may start (acceptance + window). */
  windowEndsAtMs: number;
  schedule: RetrySchedule;
  /** Attempts made before this activity started (the first attempt runs as a local activity or in a batch). */
  attemptOffset?: number;
}

/** The postWebhook activity: one attempt of a delivery by its own retry workflow (src/workflows/deliverWebhook.ts). */
export function createRetryAttempt(deps: DeliveryActivityDeps, sender: AttemptSender, guards: EndpointGuards) {
  const { now, slots, stops, attempt, attemptRecord, logAttempt, requestTimeoutMs } = sender;
  const { circuit, limiter, endpointFailures, afterSuccesses, probeSucceeded, limitHolds, wakeLimitedDrain, applyThrottles, releaseBoth } = guards;

  /**
   * The endpoint's drain owns this delivery (sending it now): wait and look again, without a
   * request. A drain that died leaves an expired lease: the delivery is taken back.
   */
  async function drainingHold(ctx: AttemptContext, input: PostWebhookInput): Promise<ApplicationFailure> {
    const nowMs = await now();
    const leaseUntil = ctx.delivery.lease_until ? new Date(ctx.delivery.lease_until).getTime() : 0;
    if (leaseUntil < nowMs) await reclaimFromDrain(deps.db, { id: ctx.delivery.id, series: ctx.delivery.series, owner: callerWorkflowId(), nowMs });
    await countHeldWakeup(deps.db, ctx.delivery.id, ctx.delivery.series); // no request: it must not move the back-off
    const delayMs = Math.min(Math.max(1_000, leaseUntil - nowMs + 1_000 + Math.round(Math.random() * 2_000)), Math.max(1_000, input.windowEndsAtMs - nowMs - 1_000));
    return ApplicationFailure.create({
      type: FailureType.Held,
      message: `held: being sent by ${ctx.delivery.workflow_id}`,
      nextRetryDelay: delayMs,
      details: [{ nextRetryDelayMs: delayMs, held: 'draining' }],
    });
  }

  /** Records held wake-ups and returns what the activity throws: retried after the hold, no attempt logged. */
  async function heldFailure(owner: string, nowMs: number, held: Held[]): Promise<ApplicationFailure> {
    await persistently(() => circuit.hold(owner, nowMs, held));
    const { delayMs, detail, reason } = held[0];
    return ApplicationFailure.create({ type: FailureType.Held, message: `held: ${detail}`, nextRetryDelay: delayMs, details: [{ nextRetryDelayMs: delayMs, held: reason }] });
  }

  /**
   * One attempt of one delivery, by the workflow that owns it. Throws an ApplicationFailure
   * carrying the back-off when the attempt failed and another may follow.
   */
  async function postWebhook(input: PostWebhookInput): Promise<{ statusCode: number; attempt: number; finished: boolean }> {
    // A regular activity learns of its own timeout only through a heartbeat's answer (the lease does not depend on it).
    Context.current().heartbeat();
    const lease = new AttemptLease(requestTimeoutMs);
    try {
      return await postWebhookUnder(input, lease);
    } finally {
      await lease.release(deps.db).catch((err: Error) => deps.log.warn('delivery.fence_release_failed', { deliveryId: input.deliveryId, error: err.message }));
    }
  }

  /**
   * No request under this attempt's lease (another execution of this workflow holds the
   * delivery's fence, or this one's ran out): retried soon, without moving the back-off.
   */
  async function leaseHold(ctx: AttemptContext, input: PostWebhookInput, waitMs: number, why: string): Promise<ApplicationFailure> {
    await countHeldWakeup(deps.db, ctx.delivery.id, ctx.delivery.series);
    const nowMs = await now();
    const delayMs = Math.min(Math.max(1_000, waitMs + 1_000), Math.max(1_000, input.windowEndsAtMs - nowMs - 1_000));
    return ApplicationFailure.create({ type: FailureType.Held, message: `held: ${why}`, nextRetryDelay: delayMs, details: [{ nextRetryDelayMs: delayMs, held: 'attempt_lease' }] });
  }

  async function postWebhookUnder(input: PostWebhookInput, lease: AttemptLease): Promise<{ statusCode: number; attempt: number; finished: boolean }> {
    const info = Context.current().info;
    const wakeup = info.attempt + (input.attemptOffset ?? 0); // this series' wake-ups so far, this one included
    let mark = stops.mark();
    const [ctx] = await claimForAttempt(deps.db, [{ id: input.deliveryId, series: input.series }], callerWorkflowId(), lease.fence);
    const stop = (reason: string) => ApplicationFailure.create({ type: FailureType.Cancelled, message: reason, nonRetryable: true });
    if (!ctx) throw stop('delivery not found');
    // Re-run after a crash that followed a successful attempt: it is done, don't send again.
    if (ctx.delivery.series === input.series && ctx.delivery.status === 'delivered') return { statusCode: 0, attempt: ctx.delivery.attempt_count, finished: true };
    if (ctx.delivery.series !== input.series || ctx.delivery.status !== 'pending') throw stop(`delivery is ${ctx.delivery.status}, not pending`);
    if (!ctx.claimed && ctx.delivery.workflow_id?.startsWith('drain-')) throw await drainingHold(ctx, input);
    if (!ctx.claimed) {
      throw ApplicationFailure.create({ type: FailureType.Superseded, message: `delivery is owned by workflow ${ctx.delivery.workflow_id}`, nonRetryable: true });
    }
    // An earlier execution of this attempt (timed out, maybe still running) holds it: wait its lease out.
    if (!ctx.fenced) throw await leaseHold(ctx, input, ctx.fence_wait_ms, 'an earlier execution of this attempt may still be sending it');
    lease.took([ctx.delivery.id]);
    const why = stopReason(ctx);
    if (why) throw stop(why);

    // Circuit breaker (src/activities/circuit.ts): an open endpoint gets no request but its one probe.
    const nowMs = await now();
    const gate = await circuit.gate([ctx], callerWorkflowId(), nowMs, input, () => wakeup - 1);
    if (gate.held.length) throw await heldFailure(callerWorkflowId(), nowMs, gate.held);
    // Held wake-ups took activity attempts without a request: they don't move the back-off.
    const seriesAttempt = Math.max(1, wakeup - (ctx.delivery.held_wakeups ?? 0));

    // The endpoint's send limits (429 pause, maxInFlight, rate limit): no cost without them.
    let permit: Permit | undefined;
    if (ctx.limits) {
      const admission = await limiter.admit([ctx], callerWorkflowId(), nowMs, LIMIT_MAX_WAIT_MS);
      if (admission.held.length) {
        await wakeLimitedDrain(ctx);
        throw await heldFailure(
          callerWorkflowId(),
          nowMs,
          limitHolds(
            admission.held,
            nowMs,
            input,
            () => input.windowEndsAtMs,
            () => wakeup - 1,
          ),
        );
      }
      permit = admission.permits[0];
      await limiter.pace(permit);
    }

    // The claim was the check when a slot is free now (or at the rate-limit slot, ≤ 1 s later:
    // checking after that sleep would bunch paced requests); after waiting for one, check again.
    let release = slots.tryAcquire(ctx.url);
    if (!release) {
      release = await slots.acquire(ctx.url);
      Context.current().heartbeat();
      mark = stops.mark();
      const check = (await persistently(() => checkBeforeSend(deps.db, [{ id: ctx.delivery.id, series: input.series }], callerWorkflowId(), lease.token))).get(ctx.delivery.id);
      if (check?.owned && !check.fenced) {
        releaseBoth(release, permit)();
        throw await leaseHold(ctx, input, 0, "this execution's lease ended while it waited for a send slot");
      }
      const whyNow = check && (check.owned ? stopReason(check) : `delivery is ${check.status}, no longer this workflow's to send`);
      if (!check || whyNow) {
        releaseBoth(release, permit)();
        if (check?.owned) throw stop(whyNow!);
        if (check?.status === 'pending') throw ApplicationFailure.create({ type: FailureType.Superseded, message: whyNow!, nonRetryable: true });
        throw stop(whyNow ?? 'delivery not found');
      }
    }
    let sent: Attempted | undefined | typeof LEASE_LOST;
    try {
      sent = await attempt(ctx, seriesAttempt, input, mark, lease);
    } finally {
      releaseBoth(release, permit)();
    }
    if (sent === LEASE_LOST) throw await leaseHold(ctx, input, 0, 'not sent: this execution outlived its lease or was cancelled');
    if (!sent) throw stop(STOPPED);
    const a = sent;
    // The request is out: a database blip now must not turn into a second POST, so the write is
    // retried here for a while before the attempt as a whole is failed (and later repeated).
    const [attemptNumber] = await persistently(() => recordAttempts(deps.db, [attemptRecord(a)]));
    lease.recorded(a.ctx.delivery.id);
    logAttempt(a, attemptNumber);
    afterSuccesses([a]);
    await persistently(() => applyThrottles([a!]));
    if (a.ok && gate.probes.size) await probeSucceeded(ctx);
    if (a.ok) return { statusCode: a.result.statusCode!, attempt: attemptNumber, finished: true };
    if ((await endpointFailures([a], input.schedule, gate.probes)).size) {
      throw ApplicationFailure.create({
        type: FailureType.Cancelled,
        message: 'endpoint auto-disabled after failing for too long',
        nonRetryable: true,
        details: [{ attempt: attemptNumber }],
      });
    }
    // Temporal retries this activity on its server: tell the workflow, for its current details in the Web UI.
    if (!info.isLocal)
      tellWorkflow(input.deliveryId, { attempt: attemptNumber, error: a.error, nextAtMs: a.nextAttemptAtMs === undefined ? undefined : (await now()) + a.delayMs });
    throw ApplicationFailure.create({
      type: a.failureType,
      message: a.error ?? 'attempt failed',
      nonRetryable: a.nonRetryable,
      nextRetryDelay: a.nonRetryable ? undefined : a.delayMs,
      // Also as a detail: local-activity failures reach the workflow without nextRetryDelay. The
      // attempt's number in the delivery log is for the workflow's current details.
      details: [{ ...(a.nonRetryable ? {} : { nextRetryDelayMs: a.delayMs }), attempt: attemptNumber }],
    });
  }

  /**
   * Signals the delivery's workflow (attempted, src/workflows/deliverWebhook.ts) that an attempt
   * failed and when the next is due. Best effort and not waited for: only the Web UI reads it, the
   * attempt's failure carries its number too, and a signal that arrives late (or after the workflow
   * ended) changes nothing.
   */
  function tellWorkflow(deliveryId: string, news: AttemptNews): void {
    const told = (err: Error) => deps.log.debug('delivery.story_not_told', { deliveryId, error: err.message });
    try {
      const { client } = Context.current();
      const workflowId = callerWorkflowId();
      client.withDeadline(Date.now() + 5_000, () => client.workflow.getHandle(workflowId).signal(ATTEMPTED_SIGNAL, news)).catch(told);
    } catch (err) {
      told(err as Error);
    }
  }

  return postWebhook;
}
