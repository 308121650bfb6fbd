import { Context } from '@temporalio/activity';
import { claimForAttempt, oldestFirst, recordAttempts, type AttemptContext, type SendCheck } from '../db/deliveries';
import { claimDrainPage, handBackFromDrain, hasPending, releaseProbeLease } from '../db/drain';
import { endpointRateLimit } from '../db/endpointLimits';
import { healthOf, takeProbeLease } from '../db/endpointHealth';
import type { RetrySchedule } from '../domain/retrySchedule';
import { workflowIdFor } from '../domain/workflowIds';
import { AttemptLease } from './attemptLease';
import type { Probe } from './circuit';
import type { DeliveryActivityDeps } from './deliveryDeps';
import { LIMIT_MAX_WAIT_MS, type EndpointGuards } from './endpointGuards';
import type { Admission, Permit } from './endpointLimiter';
import { persistently } from './persistently';
import { callerWorkflowId, LEASE_LOST, stopReason, type Attempted, type AttemptSender } from './sendAttempt';

/** The recovery drain claims this many deliveries per page and sends this many at once. */
const DRAIN_PAGE_SIZE = 200;
const DRAIN_CONCURRENCY = 50;
/** One drain activity goes on from page to page for about this long before it reports to its workflow. */
const DRAIN_RUN_MS = 10_000;
/** Passes from the oldest again after a pass that sent something (within twice DRAIN_RUN_MS). */
const DRAIN_SWEEPS = 3;
/** A drain's claim lasts this long (it sends a page in a few rounds of requests of ≤ ATTEMPT_TIMEOUT). */
const DRAIN_LEASE_MS = 120_000;
/** A drain page of a rate-limited endpoint holds about this many seconds of its rate. */
const DRAIN_PAGE_SECONDS = 10;
/** A drain waits inside its page for a pause up to this long; a longer one ends the page (a durable timer waits). */
const DRAIN_MAX_INLINE_PAUSE_MS = 5_000;

/** A drain page's record write that runs while its next round is sent. */
interface PendingWrite {
  current?: Promise<void>;
}

export interface DrainPageInput {
  endpointId: string;
  accountId: string;
  schedule: RetrySchedule;
  deliveryIds?: string[];
  forceProbe?: boolean;
  /** Only deliveries held by the endpoint's send limits (429 pause, rate limit, maxInFlight), not every parked one. */
  heldOnly?: boolean;
  /** Keyset cursor: the last delivery of the previous page. */
  after?: { createdAt: string; id: string };
}

export interface DrainPageResult {
  delivered: number;
  failed: number;
  /** Nothing (more) to claim. */
  done: boolean;
  /** The circuit is open (not probed, or the probe failed, or this page reopened it). */
  open?: boolean;
  /** This page's probe succeeded: the circuit closed. */
  recovered?: boolean;
  /** The endpoint was deleted or disabled, or the account left the paid plan. */
  stopped?: boolean;
  /** Open circuit with nothing pending: no probing needed. */
  idle?: boolean;
  /** Open circuit: when the drain (as the prober) should look again. */
  nextProbeAtMs?: number;
  /** The endpoint paused sending (429, or its rate limit is far ahead): continue from `after` then. */
  pausedUntilMs?: number;
  after?: { createdAt: string; id: string };
}

/** The drainPage activity of the endpoint's recovery drain workflow (src/workflows/drainEndpoint.ts). */
export function createDrainPage(deps: DeliveryActivityDeps, sender: AttemptSender, guards: EndpointGuards) {
  const { now, slots, attempt, attemptRecord, logAttempt, waveChecker, requestTimeoutMs } = sender;
  const { circuit, limiter, endpointFailures, afterSuccesses, applyThrottles, releaseBoth } = guards;

  /**
   * One page of an endpoint's recovery drain (its `drain-<endpointId>` workflow): claims parked
   * deliveries oldest first (or the given ones), sends them in rounds of DRAIN_CONCURRENCY, and
   * records each attempt with the delivery handed back to its retry workflow. While the circuit is
   * open it sends nothing, unless forced: then its first request is the probe.
   */
  async function drainPage(input: DrainPageInput): Promise<DrainPageResult> {
    // Page after page in one activity while the drain simply goes on: a round trip through the
    // workflow between pages cost more than a page when thousands of held retry workflows
    // competed for the worker (measured: 0.1–2.5 s gaps between 0.3-s pages).
    const startedMs = Date.now();
    const sum = { delivered: 0, failed: 0 };
    let page = input;
    let pass = { delivered: 0, sweeps: 0 };
    for (;;) {
      // A sweep never takes one this run already attempted: a failed one keeps its own back-off.
      const sweeping = pass.sweeps > 0;
      const r = await oneDrainPage(page, sweeping ? startedMs : undefined);
      sum.delivered += r.delivered;
      sum.failed += r.failed;
      pass.delivered += r.delivered;
      const clear = !r.open && !r.stopped && r.pausedUntilMs === undefined;
      // A pass skips what was busy when its cursor went by (a held wake-up in flight holds the
      // attempt fence, a batch still hands it over); parked a moment later, that one would wait
      // for its own next wake-up. So a pass that sent something is followed by one more from the
      // oldest, up to DRAIN_SWEEPS, with twice the time.
      const sweep = r.done && clear && !r.recovered && pass.delivered > 0 && pass.sweeps < DRAIN_SWEEPS;
      const budgetMs = sweeping || sweep ? 2 * DRAIN_RUN_MS : DRAIN_RUN_MS;
      const inTime = page.deliveryIds === undefined && Date.now() - startedMs < budgetMs && !Context.current().cancellationSignal.aborted;
      if (!inTime || !(r.recovered || (!r.done && clear) || sweep)) {
        // A sweep cut short ends the drain: the workflow would go on from its cursor without the sweep's exclusion.
        return sweeping && !r.done && clear ? { ...r, ...sum, done: true, after: undefined } : { ...r, ...sum };
      }
      // As the workflow does: after a successful probe everything parked goes, from the oldest; otherwise on from the cursor.
      if (r.recovered) page = { endpointId: input.endpointId, accountId: input.accountId, schedule: input.schedule, forceProbe: false };
      else page = { ...page, forceProbe: false, after: sweep ? undefined : r.after };
      if (sweep || r.recovered) pass = { delivered: 0, sweeps: pass.sweeps + (sweep ? 1 : 0) };
    }
  }

  async function oneDrainPage(input: DrainPageInput, attemptedBeforeMs?: number): Promise<DrainPageResult> {
    const lease = new AttemptLease(requestTimeoutMs);
    const writes: PendingWrite = {};
    try {
      return await drainPageUnder(input, lease, writes, attemptedBeforeMs);
    } finally {
      await writes.current?.catch(() => undefined); // its records release fences: never race the lease's release
      await lease.release(deps.db).catch((err: Error) => deps.log.warn('delivery.fence_release_failed', { endpointId: input.endpointId, error: err.message }));
    }
  }

  async function drainPageUnder(input: DrainPageInput, lease: AttemptLease, writes: PendingWrite, attemptedBeforeMs?: number): Promise<DrainPageResult> {
    /** Waits for the previous round's deferred record (see below); every way out of a round goes through it. */
    const settle = async () => {
      const w = writes.current;
      writes.current = undefined;
      await w;
    };
    const owner = callerWorkflowId();
    const nowMs = await now();
    const out: DrainPageResult = { delivered: 0, failed: 0, done: false };
    const health = (await healthOf(deps.db, [input.endpointId])).get(input.endpointId);
    let probe: Probe | undefined;
    if (health && (health.state === 'open' || health.state === 'probing')) {
      // The prober: nothing parked for this endpoint any more → its job is over.
      if (!(await hasPending(deps.db, input.endpointId))) return { ...out, open: true, done: true, idle: true };
      // Forced (retry-now), or the probe is due: one request, under the lease.
      const n = await takeProbeLease(deps.db, input.endpointId, owner, new Date(nowMs), circuit.settings.probeLeaseMs, input.forceProbe === true);
      if (n === undefined) {
        const lease = health.state === 'probing' && health.probe_lease_until ? new Date(health.probe_lease_until).getTime() : 0;
        const next = Math.max(health.next_probe_at ? new Date(health.next_probe_at).getTime() : nowMs, lease);
        return { ...out, open: true, done: true, nextProbeAtMs: next };
      }
      probe = { deliveryId: '', owner, probeAttempt: n, failingSinceMs: health.failing_since ? new Date(health.failing_since).getTime() : undefined };
    }
    const pageSize = probe ? 1 : await drainPageSize(input.endpointId);
    const claimed = await claimDrainPage(deps.db, {
      endpointId: input.endpointId,
      owner,
      nowMs,
      leaseMs: DRAIN_LEASE_MS,
      limit: pageSize,
      deliveryIds: input.deliveryIds,
      after: input.after,
      heldOnly: input.heldOnly,
      attemptedBeforeMs,
    });
    if (claimed.length === 0) {
      if (probe) await releaseProbeLease(deps.db, input.endpointId, owner);
      // Probe: nothing parked to send right now (all waking within 5 s, or owned elsewhere): a held wake-up probes; look again soon.
      return { ...out, done: true, open: probe ? true : undefined, nextProbeAtMs: probe ? nowMs + 10_000 : undefined };
    }
    const owned = (await claimForAttempt(deps.db, claimed, owner, lease.fence)).filter((c) => c.claimed && c.delivery.status === 'pending');
    owned.sort(oldestFirst);
    const contexts = owned.filter((c) => c.fenced);
    lease.took(contexts.map((c) => c.delivery.id));
    const cursorOf = (c: AttemptContext | undefined) => (c ? { createdAt: new Date(c.delivery.created_at).toISOString(), id: c.delivery.id } : input.after);
    out.after = cursorOf(owned[owned.length - 1]);
    out.done = claimed.length < pageSize || input.deliveryIds !== undefined;
    const back = (ctxs: AttemptContext[]) =>
      handBackFromDrain(
        deps.db,
        owner,
        ctxs.map((c) => ({ id: c.delivery.id, workflowId: workflowIdFor(c.delivery.id, c.delivery.series) })),
      );
    // An earlier execution of this page (timed out, maybe still sending) holds these: their retry workflows send them after its lease.
    if (contexts.length < owned.length) await back(owned.filter((c) => !c.fenced));
    if (contexts.length === 0) {
      if (probe) await releaseProbeLease(deps.db, input.endpointId, owner);
      return out;
    }
    if (contexts.some((c) => stopReason(c))) {
      await back(contexts); // the retry workflows end them (cancelled) at their next wake-up
      return { ...out, stopped: true, done: true };
    }
    if (probe) probe.deliveryId = contexts[0].delivery.id;
    const probes = new Map(probe ? [[input.endpointId, probe]] : []);
    const limits = contexts[0]?.limits;
    const rate = limits?.rate_limit_per_second ?? null;
    const roundSize = Math.max(1, Math.min(DRAIN_CONCURRENCY, limits?.max_in_flight ?? DRAIN_CONCURRENCY, rate === null ? DRAIN_CONCURRENCY : Math.ceil(rate)));
    const checkedWave = waveChecker(owner, lease.token);
    /** Ends the page early: the rest goes back to its retry workflows, and the drain continues after the last one handled. */
    const pause = async (i: number, untilMs: number): Promise<DrainPageResult> => {
      await settle();
      await back(contexts.slice(i));
      if (probe) await releaseProbeLease(deps.db, input.endpointId, owner);
      return { ...out, done: false, after: cursorOf(contexts[i - 1]), pausedUntilMs: untilMs };
    };
    // A rate-limited endpoint without maxInFlight: the next round's slots are reserved as soon as
    // this round's last request has left, while its answers come in. Reserved only after them, the
    // slots between the last request and the next reservation went unused (measured: 86.5/s
    // instead of the paced 90/s at a rate limit of 100/s). Never rejects: a failure falls back.
    const pipelined = rate !== null && limits?.max_in_flight == null;
    let ahead: Promise<Admission | undefined> | undefined;
    try {
      for (let i = 0; i < contexts.length;) {
        // The endpoint's send limits (429 pause, maxInFlight, rate limit) pace the rounds; none: 50 at once.
        const reserved = await ahead;
        ahead = undefined;
        const roundAt = await now(); // after the reservation made ahead: a pause below counts from now
        const admission = reserved ?? (await persistently(() => limiter.admit(contexts.slice(i, i + roundSize), owner, roundAt, LIMIT_MAX_WAIT_MS)));
        if (admission.permits.length === 0) {
          const retryAtMs = Math.min(...admission.held.map((h) => h.retryAtMs));
          if (retryAtMs - roundAt > DRAIN_MAX_INLINE_PAUSE_MS) return pause(i, retryAtMs);
          await Context.current().sleep(Math.max(50, retryAtMs - roundAt)); // rejects when cancelled (worker shutdown)
          continue;
        }
        const round = admission.permits.map((p) => p.ctx);
        const nextFrom = i + round.length;
        let unpaced = round.length;
        let allPaced!: () => void;
        const paced = new Promise<void>((resolve) => (allPaced = resolve));
        if (pipelined && nextFrom < contexts.length)
          ahead = paced.then(async () => limiter.admit(contexts.slice(nextFrom, nextFrom + roundSize), owner, await now(), LIMIT_MAX_WAIT_MS)).catch(() => undefined);
        // As in a batch: a send slot, then the last check right before the request (a delete,
        // disable or downgrade the API has answered stops every request of the drain not yet started).
        // The round's check is one read right after the admission; each request then leaves at its
        // rate-limit slot (≤ LIMIT_MAX_WAIT_MS later). Checking after that sleep would bunch paced
        // requests behind a slow read; in one process, the API's stops still abort them (attempt()).
        const sent = await Promise.all(
          admission.permits.map(async (permit): Promise<Attempted | 'stopped' | undefined | typeof LEASE_LOST> => {
            let counted = false;
            const leftOrPaced = () => {
              if (!counted && (counted = true) && --unpaced === 0) allPaced();
            };
            try {
              return await sendOne(permit, leftOrPaced);
            } finally {
              leftOrPaced();
            }
          }),
        );
        async function sendOne(permit: Permit, leftOrPaced: () => void): Promise<Attempted | 'stopped' | undefined | typeof LEASE_LOST> {
          const ctx = permit.ctx;
          let checked: { check?: SendCheck; mark: number };
          try {
            checked = await checkedWave(ctx.delivery.id, ctx.delivery.series);
          } catch (err) {
            releaseBoth(() => undefined, permit)();
            throw err;
          }
          const k = checked.check;
          if (k?.owned && !k.fenced) {
            releaseBoth(() => undefined, permit)();
            return LEASE_LOST;
          }
          if (!k || !k.owned || stopReason(k)) {
            releaseBoth(() => undefined, permit)();
            return 'stopped';
          }
          await limiter.pace(permit);
          leftOrPaced();
          const release = releaseBoth(await slots.acquire(ctx.url), permit);
          try {
            return await attempt(
              ctx,
              ctx.delivery.attempt_count + 1,
              { schedule: input.schedule, windowEndsAtMs: new Date(ctx.delivery.created_at).getTime() + input.schedule.windowMs },
              checked.mark,
              lease,
            );
          } finally {
            release();
          }
        }
        i += round.length;
        const attempted = sent.filter((a): a is Attempted => a !== undefined && a !== 'stopped' && a !== LEASE_LOST);
        const unsent = round.filter((_c, k) => sent[k] === undefined || sent[k] === 'stopped' || sent[k] === LEASE_LOST);
        if (unsent.length) await back(unsent); // stopped before the wire: their retry workflows end them (cancelled) or carry on
        // Delivered or not, each goes back to its retry workflow in the same write; a failed one is
        // retried on its own schedule, so its next_attempt_at (its retry workflow's wake-up) stays.
        const records = attempted.map((a) => ({
          ...attemptRecord(a, workflowIdFor(a.ctx.delivery.id, a.ctx.delivery.series)),
          nextAttemptAt: a.ok ? undefined : (a.ctx.delivery.next_attempt_at ?? undefined),
        }));
        const write = async () => {
          const numbers = await persistently(() => recordAttempts(deps.db, records));
          attempted.forEach((a, k) => {
            lease.recorded(a.ctx.delivery.id);
            logAttempt(a, numbers[k]);
          });
          afterSuccesses(attempted);
        };
        // A round that went through cleanly (every request sent and answered 2xx, not a probe, more
        // to send) is recorded while the next round is sent: the drain waits on the database once
        // per two rounds. At most one such write is outstanding; anything else waits for it first.
        const clean = attempted.length === round.length && attempted.every((a) => a.ok) && !probe && i < contexts.length;
        await settle();
        if (clean) {
          writes.current = write();
          writes.current.catch(() => undefined); // observed by settle(); this only keeps it from counting as unhandled meanwhile
        } else await write();
        const failed = attempted.filter((a) => !a.ok);
        out.delivered += attempted.length - failed.length;
        out.failed += failed.length;
        if (probe && attempted.length > 0 && failed.length === 0) out.recovered = true;
        if (sent.some((a) => a === 'stopped')) {
          await back(contexts.slice(i));
          return { ...out, stopped: true, done: true };
        }
        if (sent.some((a) => a === LEASE_LOST)) {
          // This page outlived its lease (or was cancelled): the rest goes back, a new page (a new lease) picks up from before this round.
          await back(contexts.slice(i));
          if (probe) await releaseProbeLease(deps.db, input.endpointId, owner);
          return { ...out, done: false, after: cursorOf(contexts[i - round.length - 1]) };
        }
        const paused = await persistently(() => applyThrottles(attempted));
        if (failed.length) {
          const disabled = await persistently(() => endpointFailures(failed, input.schedule, probes));
          const state = (await healthOf(deps.db, [input.endpointId])).get(input.endpointId)?.state;
          if (disabled.size || state === 'open' || state === 'probing') {
            await back(contexts.slice(i));
            const next = (await healthOf(deps.db, [input.endpointId])).get(input.endpointId)?.next_probe_at;
            return { ...out, open: !disabled.size, stopped: disabled.size > 0, done: true, nextProbeAtMs: next ? new Date(next).getTime() : undefined };
          }
        }
        const pausedUntil = paused.get(input.endpointId);
        if (pausedUntil !== undefined && i < contexts.length) return pause(i, pausedUntil);
      }
    } finally {
      await ahead; // a reservation no round used: its slots stay unused (no concurrency slots without maxInFlight)
    }
    await settle();
    return out;
  }

  /** A drain page holds DRAIN_PAGE_SIZE deliveries, or about DRAIN_PAGE_SECONDS of a rate-limited endpoint's rate. */
  async function drainPageSize(endpointId: string): Promise<number> {
    const rate = await endpointRateLimit(deps.db, endpointId);
    return rate === null ? DRAIN_PAGE_SIZE : Math.max(1, Math.min(DRAIN_PAGE_SIZE, Math.ceil(rate * DRAIN_PAGE_SECONDS)));
  }

  return drainPage;
}
