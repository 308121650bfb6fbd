import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Queryable } from '../db/database';
import {
  checkBeforeSend,
  claimForAttempt,
  finishDelivery,
  handOver,
  keepWithBatch,
  oldestFirst,
  recordAttempts,
  type AttemptContext,
  type AttemptRecord,
  type SendCheck,
} from '../db/deliveries';
import { activeSecrets, disableEndpoint } from '../db/endpoints';
import { FailureType, finalOutcome, type DeliveryStatus } from '../domain/errors';
import { workflowIdFor } from '../domain/workflowIds';
import { parseRetryAfter, retryDelayMs, type RetrySchedule } from '../domain/retrySchedule';
import { redactUrl } from '../domain/redact';
import { signatureHeaders } from '../domain/signing';
import { requestHeaders } from '../domain/customHeaders';
import { openHeaders } from '../db/endpointSecrets';
import { SendSlots } from '../http/sendSlots';
import { SendStops } from '../http/sendStops';
import type { SendResult, WebhookSender } from '../http/sendWebhook';
import type { Logger } from '../logger';
import { statusClass, type DeliveryMetrics } from '../metrics';
import { createCircuit, type CircuitSettings, type GateResult, type Held, type Probe } from './circuit';
import { endpointRateLimit } from '../db/endpointLimits';
import { claimDrainPage, countHeldWakeup, handBackFromDrain, hasPending, reclaimFromDrain, releaseProbeLease } from '../db/drain';
import { healthOf, takeProbeLease } from '../db/endpointHealth';
import { limitHoldDelayMs } from '../domain/endpointGate';
import { createEndpointLimiter, type LimitHeld, type Permit } from './endpointLimiter';
import { AttemptLease } from './attemptLease';

/** The recovery drain claims this many deliveries per page and sends this many at once. */
const DRAIN_PAGE_SIZE = 200;
const DRAIN_CONCURRENCY = 50;
/** A drain's claim lasts this long (it sends a page in a few rounds of requests of ≤ ATTEMPT_TIMEOUT). */
const DRAIN_LEASE_MS = 120_000;
/** A rate-limited send waits at most this long for its slot; later ones are held (the drain sends them). */
const LIMIT_MAX_WAIT_MS = 1_000;
/** A drain page of a rate-limited endpoint holds about this many seconds of its rate. */
const DRAIN_PAGE_SECONDS = 10;
/** A drain waits inside its page for a pause up to this long; a longer one ends the page (a durable timer waits). */
const DRAIN_MAX_INLINE_PAUSE_MS = 5_000;

export const USER_AGENT = 'rr-webhooks/0.1 (+https://github.com/rr-webhooks)';

export interface PostWebhookInput {
  deliveryId: string;
  series: number;
  /** Epoch ms after which no attempt may start (acceptance + window). */
  windowEndsAtMs: number;
  schedule: RetrySchedule;
  /** Attempts made before this activity started (the first attempt runs as a local activity or in a batch). */
  attemptOffset?: number;
}

export interface PostBatchInput {
  deliveries: { deliveryId: string; series: number }[];
  windowEndsAtMs: number;
  schedule: RetrySchedule;
}

/** A delivery whose first attempt failed and that continues in its own retry workflow. */
export interface HandOff {
  deliveryId: string;
  series: number;
  /** Wait before the next attempt. */
  delayMs: number;
  /** For the retry workflow's search attributes and summary (unknown when the batch itself failed). */
  meta?: { endpointId: string; eventType: string; url: string };
}

/** What starting the retry workflows of a batch needs (the batch workflow's own input and clock). */
export interface RetryStartRequest {
  batchId: string;
  accountId: string;
  retrying: HandOff[];
  windowEndsAtMs: number;
  schedule: RetrySchedule;
  attemptTimeoutMs: number;
  searchAttributes?: boolean;
}

export interface PostBatchResult {
  delivered: number;
  /** Ended without delivery (410, forbidden destination, endpoint gone or disabled). */
  finished: number;
  /** Already done, or owned by another workflow: not sent by this batch. */
  skipped: number;
  retrying: HandOff[];
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

/** A request to (start and) wake an endpoint's recovery drain. */
export interface DrainWakeRequest {
  endpointId: string;
  accountId: string;
  reason: string;
  deliveryIds?: string[];
  forceProbe?: boolean;
  /** Only deliveries held by the endpoint's send limits. */
  heldOnly?: boolean;
}

export interface RecordOutcomeInput {
  deliveryId: string;
  series: number;
  status: Exclude<DeliveryStatus, 'pending'>;
  reason?: string;
  /** The endpoint answered 410 Gone: disable it too. */
  disableEndpoint?: boolean;
}

export interface DeliveryActivityDeps {
  db: Queryable;
  send: WebhookSender;
  log: Logger;
  metrics?: DeliveryMetrics;
  /** Disable an endpoint whose every attempt failed for this long (AUTO_DISABLE_AFTER). */
  autoDisableAfterMs: number;
  /** Clock for attempt times and webhook-timestamp; tests pass the time-skipping server's clock. */
  now?: () => number | Promise<number>;
  /** Starts `delivery-<id>` retry workflows (idempotent): the worker's Dispatcher. */
  startRetryWorkflows?: (request: RetryStartRequest) => Promise<void>;
  /** Requests outstanding per origin (default: REQUESTS_PER_ORIGIN for this set of activities). */
  slots?: SendSlots;
  /** Shared with the API when both run in one process: its stops abort requests not yet on the wire. */
  sendStops?: SendStops;
  /** Endpoint circuit breaker settings (default: src/activities/circuit.ts DEFAULT_CIRCUIT). */
  circuit?: CircuitSettings;
  /** Starts or signals the endpoint's recovery drain (`drain-<endpointId>`): the Dispatcher. */
  wakeDrain?: (request: DrainWakeRequest) => Promise<void>;
  /**
   * A state change that emits operational events was recorded (src/db/operational.ts): start their
   * deliveries now (the Dispatcher's kickOperational). Without it, the reconciler starts them.
   */
  operationalEmitted?: () => void;
  /** The HTTP sender's timeout (ATTEMPT_TIMEOUT): a request starts only if it ends before its attempt's lease (src/activities/attemptLease.ts). */
  attemptTimeoutMs?: number;
}

/** attempt() did not send: this execution's lease would end before the request could (or Temporal cancelled it). */
const LEASE_LOST = Symbol('lease lost');

/** One attempt's facts: what was sent, what came back, and what follows. */
interface Attempted {
  ctx: AttemptContext;
  seriesAttempt: number;
  startedAtMs: number;
  result: SendResult;
  ok: boolean;
  failureType: string;
  nonRetryable: boolean;
  delayMs: number;
  /** Undefined when no attempt follows (success, permanent failure, or past the window). */
  nextAttemptAtMs?: number;
  error?: string;
}

/** Retries a database write for up to ~15 s (server restart, failover) before giving up. */
async function persistently<T>(write: () => Promise<T>): Promise<T> {
  for (let delay = 100; ; delay *= 2) {
    try {
      return await write();
    } catch (err) {
      if (delay > 8_000) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** The workflow this activity runs for: it claims the deliveries it attempts. */
function callerWorkflowId(): string {
  const id = Context.current().info.workflowExecution?.workflowId;
  if (!id) throw new Error('delivery activities run inside a workflow');
  return id;
}

/**
 * Records a batch's attempts in as few statements as their finishing times allow: a write goes
 * out once every outstanding attempt has finished, or when the oldest unwritten one has waited
 * `lingerMs`. So a fast batch costs one write, and a slow receiver never holds back the record of
 * the fast ones for long (a crash then re-sends only what was really in flight). After a write
 * fails for good, every later record fails too: the batch as a whole is retried or handed over.
 */
interface AttemptRecorder {
  record(record: AttemptRecord): Promise<number>;
  /** One of the expected attempts will not be made (the delivery was cancelled before its wave). */
  drop(): void;
  /** A write failed for good: no further request may start (it could not be recorded). */
  readonly failed: boolean;
}

function attemptRecorder(db: Queryable, expected: number, lingerMs = 100): AttemptRecorder {
  let queue: { record: AttemptRecord; resolve(n: number): void; reject(err: unknown): void }[] = [];
  let outstanding = expected;
  let writing = false;
  let timer: NodeJS.Timeout | undefined;
  let failed: unknown;
  const write = async () => {
    clearTimeout(timer);
    timer = undefined;
    if (writing || queue.length === 0) return;
    writing = true;
    const taken = queue;
    queue = [];
    outstanding -= taken.length;
    try {
      if (failed) throw failed;
      const numbers = await persistently(() =>
        recordAttempts(
          db,
          taken.map((t) => t.record),
        ),
      );
      taken.forEach((t, i) => t.resolve(numbers[i]));
    } catch (err) {
      failed = err;
      taken.forEach((t) => t.reject(err));
    }
    writing = false;
    schedule();
  };
  const schedule = () => {
    if (writing || queue.length === 0) return;
    if (queue.length >= outstanding || failed) void write();
    else timer ??= setTimeout(() => void write(), lingerMs);
  };
  return {
    record: (record) =>
      new Promise<number>((resolve, reject) => {
        queue.push({ record, resolve, reject });
        schedule();
      }),
    drop() {
      outstanding--;
      schedule();
    },
    get failed() {
      return failed !== undefined;
    },
  };
}

/** Why a pending delivery must not be attempted any more, if it must not. */
function stopReason(ctx: Pick<AttemptContext, 'endpoint_deleted' | 'endpoint_enabled' | 'plan' | 'payload_purged'>): string | undefined {
  if (ctx.endpoint_deleted) return 'endpoint deleted';
  if (!ctx.endpoint_enabled) return 'endpoint disabled';
  if (ctx.plan !== 'paid') return 'account is not on a paid plan';
  if (ctx.payload_purged) return 'payload purged by retention';
  return undefined;
}

/** Activities of the delivery workflows; the worker injects the database, HTTP sender and clock. */
export function createDeliveryActivities(deps: DeliveryActivityDeps) {
  const now = deps.now ?? Date.now;
  const slots = deps.slots ?? new SendSlots();
  const stops = deps.sendStops ?? new SendStops();
  const STOPPED = 'stopped before the request was sent: endpoint deleted or disabled, or account downgraded';
  const requestTimeoutMs = deps.attemptTimeoutMs ?? 15_000;

  /**
   * Signs and sends one attempt (the endpoint's current URL and secrets) and classifies the answer.
   * `mark` was taken before the check that cleared it; undefined when the API stopped the
   * endpoint since (in this process) and nothing was sent.
   */
  async function attempt(
    ctx: AttemptContext,
    seriesAttempt: number,
    input: { schedule: RetrySchedule; windowEndsAtMs: number },
    mark: number,
    lease: AttemptLease,
  ): Promise<Attempted | undefined | typeof LEASE_LOST> {
    const startedAtMs = await now();
    // The endpoint's custom headers go first and can never replace the service's (requestHeaders).
    const headers = requestHeaders(openHeaders(ctx.delivery.endpoint_id, ctx.custom_headers), {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      ...signatureHeaders(activeSecrets(ctx, new Date(startedAtMs), ctx.delivery.endpoint_id), ctx.delivery.id, Math.floor(startedAtMs / 1000), ctx.body),
    });
    const ticket = stops.ticket(ctx.delivery.endpoint_id, mark);
    if (!ticket) return undefined;
    // Last thing before the wire, with nothing awaited after it: a zombie attempt stops here.
    if (!lease.canSend()) {
      ticket.done();
      return LEASE_LOST;
    }
    let result: SendResult;
    try {
      result = await deps.send(ctx.url, headers, ctx.body, ticket.signal);
    } finally {
      ticket.done();
    }
    if (result.aborted) return undefined;
    const ok = result.statusCode !== undefined && result.statusCode >= 200 && result.statusCode < 300;
    deps.metrics?.attempts.inc({ outcome: statusClass(result) });
    deps.metrics?.attemptSeconds.observe(result.durationMs / 1000);

    let failureType: string = FailureType.AttemptFailed;
    let nonRetryable = false;
    if (result.forbidden) {
      failureType = FailureType.DestinationForbidden;
      nonRetryable = true;
    } else if (result.statusCode === 410) {
      failureType = FailureType.EndpointGone;
      nonRetryable = true;
    }
    const delayMs = retryDelayMs(input.schedule, seriesAttempt, {
      statusCode: result.statusCode,
      timedOut: result.timedOut,
      retryAfterMs: parseRetryAfter(result.retryAfter, startedAtMs),
    });
    const nextAttemptAtMs = !ok && !nonRetryable && startedAtMs + delayMs < input.windowEndsAtMs ? startedAtMs + delayMs : undefined;
    const error = ok ? undefined : (result.error ?? `HTTP ${result.statusCode}`);
    return { ctx, seriesAttempt, startedAtMs, result, ok, failureType, nonRetryable, delayMs, nextAttemptAtMs, error };
  }

  function attemptRecord(a: Attempted, handOverTo?: string): AttemptRecord {
    return {
      deliveryId: a.ctx.delivery.id,
      series: a.ctx.delivery.series,
      startedAt: new Date(a.startedAtMs),
      durationMs: a.result.durationMs,
      statusCode: a.result.statusCode,
      error: a.error,
      responseBody: a.result.bodyExcerpt,
      nextAttemptAt: a.nextAttemptAtMs === undefined ? undefined : new Date(a.nextAttemptAtMs),
      delivered: a.ok,
      handOverTo,
      fence: a.ctx.fenced ? (a.ctx.delivery.attempt_token ?? undefined) : undefined,
      outcome: statusClass(a.result),
    };
  }

  function logAttempt(a: Attempted, attemptNumber: number): void {
    if (a.ok) deps.metrics?.finished.inc({ status: 'delivered' });
    const d = a.ctx.delivery;
    deps.log.info('delivery.attempted', {
      deliveryId: d.id,
      accountId: d.account_id,
      endpointId: d.endpoint_id,
      eventType: d.event_type,
      attempt: attemptNumber,
      series: d.series,
      seriesAttempt: a.seriesAttempt,
      ok: a.ok,
      statusCode: a.result.statusCode ?? null,
      durationMs: a.result.durationMs,
      error: a.error ?? null,
      nextAttemptAt: a.nextAttemptAtMs === undefined ? null : new Date(a.nextAttemptAtMs).toISOString(),
    });
  }

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

  const limiter = createEndpointLimiter({ db: deps.db, log: deps.log, leaseMs: circuit.settings.probeLeaseMs });
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

  /**
   * One page of an endpoint's recovery drain (its `drain-<endpointId>` workflow): claims parked
   * deliveries oldest first (or the given ones), sends them in rounds of DRAIN_CONCURRENCY, and
   * records each attempt with the delivery handed back to its retry workflow. While the circuit is
   * open it sends nothing, unless forced: then its first request is the probe.
   */
  async function drainPage(input: DrainPageInput): Promise<DrainPageResult> {
    const lease = new AttemptLease(requestTimeoutMs);
    try {
      return await drainPageUnder(input, lease);
    } finally {
      await lease.release(deps.db).catch((err: Error) => deps.log.warn('delivery.fence_release_failed', { endpointId: input.endpointId, error: err.message }));
    }
  }

  async function drainPageUnder(input: DrainPageInput, lease: AttemptLease): Promise<DrainPageResult> {
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
      await back(contexts.slice(i));
      if (probe) await releaseProbeLease(deps.db, input.endpointId, owner);
      return { ...out, done: false, after: cursorOf(contexts[i - 1]), pausedUntilMs: untilMs };
    };
    for (let i = 0; i < contexts.length;) {
      // The endpoint's send limits (429 pause, maxInFlight, rate limit) pace the rounds; none: 50 at once.
      const roundAt = await now();
      const admission = await persistently(() => limiter.admit(contexts.slice(i, i + roundSize), owner, roundAt, LIMIT_MAX_WAIT_MS));
      if (admission.permits.length === 0) {
        const retryAtMs = Math.min(...admission.held.map((h) => h.retryAtMs));
        if (retryAtMs - roundAt > DRAIN_MAX_INLINE_PAUSE_MS) return pause(i, retryAtMs);
        await Context.current().sleep(Math.max(50, retryAtMs - roundAt)); // rejects when cancelled (worker shutdown)
        continue;
      }
      const round = admission.permits.map((p) => p.ctx);
      // As in a batch: a send slot, then the last check right before the request (a delete,
      // disable or downgrade the API has answered stops every request of the drain not yet started).
      // The round's check is one read right after the admission; each request then leaves at its
      // rate-limit slot (≤ LIMIT_MAX_WAIT_MS later). Checking after that sleep would bunch paced
      // requests behind a slow read; in one process, the API's stops still abort them (attempt()).
      const sent = await Promise.all(
        admission.permits.map(async (permit): Promise<Attempted | 'stopped' | undefined | typeof LEASE_LOST> => {
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
        }),
      );
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
      const numbers = await persistently(() => recordAttempts(deps.db, records));
      attempted.forEach((a, k) => {
        lease.recorded(a.ctx.delivery.id);
        logAttempt(a, numbers[k]);
      });
      afterSuccesses(attempted);
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
    return out;
  }

  /** A drain page holds DRAIN_PAGE_SIZE deliveries, or about DRAIN_PAGE_SECONDS of a rate-limited endpoint's rate. */
  async function drainPageSize(endpointId: string): Promise<number> {
    const rate = await endpointRateLimit(deps.db, endpointId);
    return rate === null ? DRAIN_PAGE_SIZE : Math.max(1, Math.min(DRAIN_PAGE_SIZE, Math.ceil(rate * DRAIN_PAGE_SECONDS)));
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
    if ((await endpointFailures([a], input.schedule, gate.probes)).size) throw stop('endpoint auto-disabled after failing for too long');
    throw ApplicationFailure.create({
      type: a.failureType,
      message: a.error ?? 'attempt failed',
      nonRetryable: a.nonRetryable,
      nextRetryDelay: a.nonRetryable ? undefined : a.delayMs,
      // Also as a detail: local-activity failures reach the workflow without nextRetryDelay.
      details: a.nonRetryable ? undefined : [{ nextRetryDelayMs: a.delayMs }],
    });
  }

  /**
   * Checks deliveries that waited for a send slot right before they are sent, gathering those
   * whose slots came free together (in the same turn of the event loop, or while the previous
   * check ran) into one read.
   */
  function waveChecker(workflowId: string, fenceToken: string): (id: string, series: number) => Promise<{ check?: SendCheck; mark: number }> {
    let wave: { id: string; series: number; resolve(c: { check?: SendCheck; mark: number }): void; reject(err: unknown): void }[] = [];
    let running = false;
    let scheduled = false;
    const run = async () => {
      scheduled = false;
      if (running || wave.length === 0) return;
      running = true;
      const taken = wave;
      wave = [];
      try {
        const mark = stops.mark();
        const checks = await persistently(() => checkBeforeSend(deps.db, taken, workflowId, fenceToken));
        for (const t of taken) t.resolve({ check: checks.get(t.id), mark });
      } catch (err) {
        for (const t of taken) t.reject(err);
      }
      running = false;
      if (wave.length) void run();
    };
    return (id, series) =>
      new Promise((resolve, reject) => {
        wave.push({ id, series, resolve, reject });
        if (!scheduled && !running) {
          scheduled = true;
          setImmediate(() => void run());
        }
      });
  }

  /**
   * The first attempt of a batch of deliveries (one account), sent concurrently and recorded in
   * as few writes as their finishing times allow. No request waits in a queue after its check:
   * one that cannot start at once (its origin's slots are taken) is checked again when it can,
   * so a delete, disable or downgrade answered by the API stops every request not yet started.
   * Deliveries that must be retried are handed over to their own retry workflow (the owner is
   * switched in the same write) and returned for the batch workflow to start.
   */
  async function postBatch(input: PostBatchInput): Promise<PostBatchResult> {
    // As long as a retry attempt's (not the batch activity's longer timeout): a batch re-run after
    // a worker crash hands the dead run's deliveries to their retry workflows, which wait it out.
    const lease = new AttemptLease(requestTimeoutMs, requestTimeoutMs + 30_000);
    try {
      return await postBatchUnder(input, lease);
    } finally {
      await lease.release(deps.db).catch((err: Error) => deps.log.warn('delivery.fence_release_failed', { batchId: callerWorkflowId(), error: err.message }));
    }
  }

  async function postBatchUnder(input: PostBatchInput, lease: AttemptLease): Promise<PostBatchResult> {
    const batchId = callerWorkflowId();
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
    const handOff = (ctx: AttemptContext, delayMs: number): HandOff => ({
      deliveryId: ctx.delivery.id,
      series: ctx.delivery.series,
      delayMs,
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
        out.retrying.push(handOff(a.ctx, a.delayMs));
      }
    }
    return out;
  }

  async function recordOutcome(input: RecordOutcomeInput): Promise<boolean> {
    const at = new Date(await now());
    const changed = await finishDelivery(deps.db, { deliveryId: input.deliveryId, series: input.series, status: input.status, reason: input.reason, at });
    if (input.disableEndpoint) {
      const [d] = await deps.db.query<{ endpoint_id: string }>('select endpoint_id from deliveries where id = $1', [input.deliveryId]);
      if (d) await disableEndpoint(deps.db, d.endpoint_id, input.reason ?? 'receiver answered 410 Gone', at);
    }
    if (changed) deps.metrics?.finished.inc({ status: input.status });
    if ((changed && input.status === 'undeliverable') || input.disableEndpoint) deps.operationalEmitted?.(); // delivery.exhausted, endpoint.disabled
    deps.log.info('delivery.finished', { deliveryId: input.deliveryId, series: input.series, status: input.status, reason: input.reason ?? null, changed });
    return changed;
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
    const finished = request.retrying.filter((r) => !owned.has(r.deliveryId));
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

  return { postWebhook, postBatch, startRetries, recordOutcome, drainPage };
}

export type DeliveryActivities = ReturnType<typeof createDeliveryActivities>;
