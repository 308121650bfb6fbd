import { claimForAttempt, handOver, keepWithBatch, oldestFirst, type AttemptContext, type SendCheck } from '../db/deliveries';
import { finalOutcome } from '../domain/errors';
import { redactUrl } from '../domain/redact';
import type { RetrySchedule } from '../domain/retrySchedule';
import { workflowIdFor } from '../domain/workflowIds';
import { AttemptLease, type InlineRun } from './attemptLease';
import { attemptRecorder } from './attemptRecorder';
import type { GateResult } from './circuit';
import type { DeliveryActivityDeps, HandOff, RetryStartRequest } from './deliveryDeps';
import { LIMIT_MAX_WAIT_MS, type EndpointGuards } from './endpointGuards';
import type { LimitHeld, Permit } from './endpointLimiter';
import { persistently } from './persistently';
import type { RecordOutcome } from './recordOutcome';
import { callerWorkflowId, LEASE_LOST, STOPPED, stopReason, type Attempted, type AttemptSender } from './sendAttempt';

export interface PostBatchInput {
  deliveries: { deliveryId: string; series: number }[];
  windowEndsAtMs: number;
  schedule: RetrySchedule;
}

export interface PostBatchResult {
  delivered: number;
  /** Ended without delivery (410, forbidden destination, endpoint gone or disabled). */
  finished: number;
  /** Already done, or owned by another workflow: not sent by this batch. */
  skipped: number;
  retrying: HandOff[];
}

/**
 * The activities of the first-attempt batch workflow (src/workflows/deliverBatch.ts): postBatch
 * sends the batch's first attempts, startRetries starts the retry workflows it handed deliveries to.
 */
export function createFirstAttemptBatch(deps: DeliveryActivityDeps, sender: AttemptSender, guards: EndpointGuards, recordOutcome: RecordOutcome) {
  const { now, slots, stops, attempt, attemptRecord, logAttempt, waveChecker, requestTimeoutMs } = sender;
  const { circuit, limiter, endpointFailures, afterSuccesses, probeSucceeded, limitHolds, wakeLimitedDrain, applyThrottles, releaseBoth } = guards;

  /**
   * The first attempt of a batch of deliveries (one account), sent concurrently and recorded in
   * as few writes as their finishing times allow. No request waits in a queue after its check:
   * one that cannot start at once (its origin's slots are taken) is checked again when it can,
   * so a delete, disable or downgrade answered by the API stops every request not yet started.
   * Deliveries that must be retried are handed over to their own retry workflow (the owner is
   * switched in the same write) and returned for the batch workflow to start.
   */
  async function postBatch(given: PostBatchInput, inline?: InlineRun): Promise<PostBatchResult> {
    // A delivery listed twice (dispatched again by the reconciler while its batch was gathering)
    // would be claimed twice under one fence, and sent twice at once: each once.
    const seen = new Set<string>();
    const input = { ...given, deliveries: given.deliveries.filter((d) => !seen.has(d.deliveryId) && seen.add(d.deliveryId)) };
    const batchId = inline?.owner ?? callerWorkflowId();
    // As long as a retry attempt's (not the batch activity's longer timeout): a batch re-run after
    // a worker crash hands the dead run's deliveries to their retry workflows, which wait it out.
    const lease = new AttemptLease(requestTimeoutMs, requestTimeoutMs + 30_000, inline);
    try {
      return await postBatchUnder(input, lease, batchId);
    } finally {
      await lease.release(deps.db).catch((err: Error) => deps.log.warn('delivery.fence_release_failed', { batchId, error: err.message }));
    }
  }

  async function postBatchUnder(input: PostBatchInput, lease: AttemptLease, batchId: string): Promise<PostBatchResult> {
    const series = new Map(input.deliveries.map((d) => [d.deliveryId, d.series]));
    const claimMark = stops.mark();
    const contexts = await claimForAttempt(
      deps.db,
      input.deliveries.map((d) => ({ id: d.deliveryId, series: d.series })),
      batchId,
      lease.fence,
    );
    lease.took(contexts.filter((c) => c.fenced).map((c) => c.delivery.id));
    const out: PostBatchResult = { delivered: 0, finished: 0, skipped: 0, retrying: [] };
    /** Each attempt's number in the delivery log, for the retry workflow's current details. */
    const numbers = new Map<string, number>();
    const handOff = (ctx: AttemptContext, delayMs: number, lastError?: string): HandOff => ({
      deliveryId: ctx.delivery.id,
      series: ctx.delivery.series,
      delayMs,
      attempts: numbers.get(ctx.delivery.id) ?? ctx.delivery.attempt_count,
      lastError,
      // Into the batch's history (a local activity result): scheme and host only.
      meta: { endpointId: ctx.delivery.endpoint_id, eventType: ctx.delivery.event_type, url: redactUrl(ctx.url) },
    });
    // Sorted without awaiting anything: the claim is the check of the requests that start at once,
    // so nothing may run between it and them (the bookkeeping below waits until they started).
    const toSend: AttemptContext[] = [];
    const stopped: { ctx: AttemptContext; why: string }[] = [];
    const resumed: AttemptContext[] = [];
    for (const ctx of contexts) {
      const d = ctx.delivery;
      if (d.series !== series.get(d.id) || d.status !== 'pending') {
        out.skipped++; // done already (a re-run of this batch) or resent since
      } else if (!ctx.claimed) {
        // Handed over by an earlier run of this batch whose result was lost: start its workflow
        // again (idempotent). Owned by anyone else: that workflow sends it.
        if (d.workflow_id === workflowIdFor(d.id, d.series) || d.workflow_id?.startsWith('drain-')) resumed.push(ctx);
        else out.skipped++;
      } else if (!ctx.fenced) {
        // An earlier run of this batch (timed out, maybe still sending) holds it: its retry workflow sends it after that lease.
        out.retrying.push(handOff(ctx, ctx.fence_wait_ms + 1_000));
      } else {
        const why = stopReason(ctx);
        if (why) stopped.push({ ctx, why });
        else toSend.push(ctx);
      }
    }

    // Circuit breaker: an open endpoint's deliveries go to their retry workflows without a request
    // (held), but for its one probe. A closed circuit costs nothing here (no await before the sends).
    let gate: GateResult = { send: toSend, probes: new Map(), held: [] };
    if (toSend.some((c) => c.health && c.health.state !== 'healthy' && c.health.state !== 'failing')) {
      const nowMs = await now();
      gate = await persistently(() => circuit.gate(toSend, batchId, nowMs, input, () => 0));
      if (gate.held.length) {
        await persistently(() => circuit.hold(batchId, nowMs, gate.held, (ctx) => workflowIdFor(ctx.delivery.id, ctx.delivery.series)));
        for (const x of gate.held) out.retrying.push(handOff(x.ctx, x.delayMs));
      }
    }
    let sendNow = gate.send;

    // Send limits (429 pause, maxInFlight, rate limit) per endpoint that has any: what cannot go
    // within LIMIT_MAX_WAIT_MS is held, handed to its retry workflow, and sent by the endpoint's drain.
    const permits = new Map<string, { permit: Permit }>();
    if (sendNow.some((c) => c.limits)) {
      const nowMs = await now();
      const byEndpoint = new Map<string, AttemptContext[]>();
      const free: AttemptContext[] = [];
      for (const ctx of sendNow) {
        if (!ctx.limits) free.push(ctx);
        else byEndpoint.set(ctx.delivery.endpoint_id, [...(byEndpoint.get(ctx.delivery.endpoint_id) ?? []), ctx]);
      }
      const held: LimitHeld[] = [];
      for (const group of byEndpoint.values()) {
        group.sort(oldestFirst);
        const admission = await persistently(() => limiter.admit(group, batchId, nowMs, LIMIT_MAX_WAIT_MS));
        for (const p of admission.permits) {
          free.push(p.ctx);
          permits.set(p.ctx.delivery.id, { permit: p });
        }
        held.push(...admission.held);
      }
      if (held.length) {
        const holds = limitHolds(
          held,
          nowMs,
          input,
          () => input.windowEndsAtMs,
          () => 0,
        );
        await persistently(() => circuit.hold(batchId, nowMs, holds, (ctx) => workflowIdFor(ctx.delivery.id, ctx.delivery.series)));
        for (const x of holds) out.retrying.push(handOff(x.ctx, x.delayMs));
        for (const ctx of new Map(held.map((h) => [h.ctx.delivery.endpoint_id, h.ctx])).values()) await wakeLimitedDrain(ctx);
      }
      sendNow = free;
    }

    const recorder = attemptRecorder(deps.db, sendNow.length);
    const send = async (ctx: AttemptContext, release: () => void, mark: number): Promise<Attempted | 'finished' | 'lease'> => {
      let a: Attempted | undefined | typeof LEASE_LOST;
      try {
        a = await attempt(ctx, 1, input, mark, lease);
      } finally {
        release();
      }
      if (a === LEASE_LOST) {
        recorder.drop();
        return 'lease';
      }
      if (!a) {
        // Nothing was sent. The API cancels it too; recording it here leaves nothing pending if it could not.
        recorder.drop();
        await persistently(() => recordOutcome({ deliveryId: ctx.delivery.id, series: ctx.delivery.series, status: 'cancelled', reason: STOPPED }));
        return 'finished';
      }
      // A failed one is handed to its own retry workflow in the same write.
      const n = await recorder.record(attemptRecord(a, a.nextAttemptAtMs === undefined ? undefined : workflowIdFor(ctx.delivery.id, ctx.delivery.series)));
      lease.recorded(ctx.delivery.id);
      logAttempt(a, n);
      numbers.set(ctx.delivery.id, n);
      return a;
    };
    // Requests start only when they can start at once (a free slot of their origin). The claim
    // above was the check for those that can; the others wait for a slot and are checked again,
    // in one read per wave, right before they are sent.
    const checkedWave = waveChecker(batchId, lease.token);
    const sending = sendNow.map(async (ctx): Promise<Attempted | 'finished' | 'skipped' | 'lease'> => {
      const limited = permits.get(ctx.delivery.id);
      // Its rate-limit slot (≤ LIMIT_MAX_WAIT_MS away): the claim stays its check, as a check after
      // the sleep would bunch paced requests behind a slow read.
      if (limited) await limiter.pace(limited.permit);
      const free = slots.tryAcquire(ctx.url);
      if (free) return send(ctx, releaseBoth(free, limited?.permit), claimMark);
      const release = releaseBoth(await slots.acquire(ctx.url), limited?.permit);
      let checked: { check?: SendCheck; mark: number };
      try {
        if (recorder.failed) throw new Error('recording this batch failed: no further request may start');
        checked = await checkedWave(ctx.delivery.id, ctx.delivery.series);
      } catch (err) {
        release();
        throw err;
      }
      const { check, mark } = checked;
      if (check?.owned && !check.fenced) {
        release();
        recorder.drop();
        return 'lease'; // this run's lease ended while it waited for a slot: its retry workflow sends it
      }
      const why = !check ? 'delivery not found' : check.owned ? stopReason(check) : `delivery is ${check.status}, no longer this batch's to send`;
      if (!why) return send(ctx, release, mark);
      release();
      recorder.drop();
      if (!check?.owned) return check?.status === 'cancelled' ? 'finished' : 'skipped'; // cancelled by the API, or handed over
      await persistently(() => recordOutcome({ deliveryId: ctx.delivery.id, series: ctx.delivery.series, status: 'cancelled', reason: why }));
      return 'finished';
    });
    // Bookkeeping that could wait until the first requests started.
    const bookkeeping = Promise.allSettled([
      (async () => {
        for (const { ctx, why } of stopped) {
          await persistently(() => recordOutcome({ deliveryId: ctx.delivery.id, series: ctx.delivery.series, status: 'cancelled', reason: why }));
          out.finished++;
        }
        const nowMs = await now();
        for (const ctx of resumed) out.retrying.push(handOff(ctx, Math.max(0, (ctx.delivery.next_attempt_at?.getTime() ?? nowMs) - nowMs)));
      })(),
    ]);
    // Settled, not all: when a write fails, no request of this run may still be in flight once
    // the batch hands everything over to retry workflows.
    const settled = await Promise.allSettled(sending);
    const failed = [...settled, ...(await bookkeeping)].find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const attempted: Attempted[] = [];
    (settled as PromiseFulfilledResult<Attempted | 'finished' | 'skipped' | 'lease'>[]).forEach((r, k) => {
      if (r.value === 'finished') out.finished++;
      else if (r.value === 'skipped') out.skipped++;
      else if (r.value === 'lease')
        out.retrying.push(handOff(sendNow[k], 1_000)); // not sent
      else attempted.push(r.value);
    });
    await persistently(() => applyThrottles(attempted));
    afterSuccesses(attempted);
    const autoDisabled = await persistently(() =>
      endpointFailures(
        attempted.filter((a) => !a.ok),
        input.schedule,
        gate.probes,
      ),
    );
    for (const a of attempted) if (a.ok && gate.probes.get(a.ctx.delivery.endpoint_id)?.deliveryId === a.ctx.delivery.id) await probeSucceeded(a.ctx);

    for (const a of attempted) {
      const d = a.ctx.delivery;
      if (a.ok) {
        out.delivered++;
      } else if (autoDisabled.has(d.endpoint_id)) {
        out.finished++; // cancelled with the rest of the endpoint's pending deliveries
      } else if (a.nextAttemptAtMs === undefined) {
        // A permanent failure (410, forbidden destination), or the next attempt would fall after the window.
        const final = finalOutcome(a.failureType, a.error ?? 'attempt failed');
        await persistently(() => recordOutcome({ deliveryId: d.id, series: d.series, ...final }));
        out.finished++;
      } else {
        out.retrying.push(handOff(a.ctx, a.delayMs, a.error));
      }
    }
    return out;
  }

  /**
   * Starts the retry workflow of each delivery a batch handed over, straight from the worker's
   * client (idempotent by workflow id): cheaper for the Temporal server than child workflows,
   * which cost the parent a command, an event pair and a workflow task each.
   */
  async function startRetries(request: RetryStartRequest): Promise<void> {
    if (!deps.startRetryWorkflows) throw new Error('this worker cannot start retry workflows (no startRetryWorkflows dependency)');
    // Ownership first (a no-op for those the attempt record already handed over): a retry
    // workflow only sends what it owns, and one the batch no longer owns (finished, resent)
    // needs no retry workflow.
    const owned = new Set(
      await persistently(() =>
        handOver(
          deps.db,
          request.batchId,
          request.retrying.map((r) => ({ id: r.deliveryId, series: r.series, workflowId: workflowIdFor(r.deliveryId, r.series) })),
        ),
      ),
    );
    const retrying = request.retrying.filter((r) => owned.has(r.deliveryId));
    let finished = request.retrying.filter((r) => !owned.has(r.deliveryId));
    // An earlier execution of this activity (its worker died before the batch's workflow task
    // completed) may have started a retry workflow that has since finished the delivery: that
    // workflow stays its owner.
    if (finished.length && deps.existingWorkflows) {
      const started = await deps.existingWorkflows(finished.map((r) => workflowIdFor(r.deliveryId, r.series)));
      finished = finished.filter((r) => !started.has(workflowIdFor(r.deliveryId, r.series)));
    }
    if (finished.length)
      await persistently(() =>
        keepWithBatch(
          deps.db,
          request.batchId,
          finished.map((r) => ({ id: r.deliveryId, workflowId: workflowIdFor(r.deliveryId, r.series) })),
        ),
      );
    if (retrying.length) await deps.startRetryWorkflows({ ...request, retrying });
  }

  return { postBatch, startRetries };
}
