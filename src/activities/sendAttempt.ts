import { Context } from '@temporalio/activity';
import { checkBeforeSend, type AttemptContext, type AttemptRecord, type SendCheck } from '../db/deliveries';
import { activeSecrets } from '../db/endpoints';
import { openHeaders } from '../db/endpointSecrets';
import { recordedRequestHeaders } from '../domain/attemptHeaders';
import { requestHeaders } from '../domain/customHeaders';
import { FailureType } from '../domain/errors';
import { parseRetryAfter, retryDelayMs, type RetrySchedule } from '../domain/retrySchedule';
import { signatureHeaders } from '../domain/signing';
import { SendSlots } from '../http/sendSlots';
import { SendStops } from '../http/sendStops';
import type { SendResult } from '../http/sendWebhook';
import { statusClass } from '../metrics';
import type { AttemptLease } from './attemptLease';
import type { DeliveryActivityDeps } from './deliveryDeps';
import { persistently } from './persistently';

// One attempt of one delivery, shared by the first-attempt batch, the retry attempt and the drain
// page: the send itself, its record and log line, and the check right before a request leaves.

export const USER_AGENT = 'rr-webhooks/0.1 (+https://github.com/rr-webhooks)';

/** Why an attempt ends cancelled when the API stopped its endpoint (in this process) before the request left. */
export const STOPPED = 'stopped before the request was sent: endpoint deleted or disabled, or account downgraded';

/** attempt() did not send: this execution's lease would end before the request could (or Temporal cancelled it). */
export const LEASE_LOST = Symbol('lease lost');

/** One attempt's facts: what was sent, what came back, and what follows. */
export interface Attempted {
  ctx: AttemptContext;
  seriesAttempt: number;
  startedAtMs: number;
  /** The request's headers as the log keeps them (custom values redacted: recordedRequestHeaders). */
  requestHeaders: Record<string, string>;
  result: SendResult;
  ok: boolean;
  failureType: string;
  nonRetryable: boolean;
  delayMs: number;
  /** Undefined when no attempt follows (success, permanent failure, or past the window). */
  nextAttemptAtMs?: number;
  error?: string;
}

/** The workflow this activity runs for: it claims the deliveries it attempts. */
export function callerWorkflowId(): string {
  const id = Context.current().info.workflowExecution?.workflowId;
  if (!id) throw new Error('delivery activities run inside a workflow');
  return id;
}

/** Why a pending delivery must not be attempted any more, if it must not. */
export function stopReason(ctx: Pick<AttemptContext, 'endpoint_deleted' | 'endpoint_enabled' | 'plan' | 'payload_purged'>): string | undefined {
  if (ctx.endpoint_deleted) return 'endpoint deleted';
  if (!ctx.endpoint_enabled) return 'endpoint disabled';
  if (ctx.plan !== 'paid') return 'account is not on a paid plan';
  if (ctx.payload_purged) return 'payload purged by retention';
  return undefined;
}

/** The attempt machinery of one set of delivery activities: its clock, origin send slots and the API's stops. */
export function createAttemptSender(deps: DeliveryActivityDeps) {
  const now = deps.now ?? Date.now;
  const slots = deps.slots ?? new SendSlots();
  const stops = deps.sendStops ?? new SendStops();
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
    const service = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      ...signatureHeaders(activeSecrets(ctx, new Date(startedAtMs), ctx.delivery.endpoint_id), ctx.delivery.id, Math.floor(startedAtMs / 1000), ctx.body),
    };
    const headers = requestHeaders(openHeaders(ctx.delivery.endpoint_id, ctx.custom_headers), service);
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
    // What the log keeps of the request: every header sent, custom values redacted (they may be credentials).
    const recorded = recordedRequestHeaders(headers, service, Buffer.byteLength(ctx.body, 'utf8'));
    return { ctx, seriesAttempt, startedAtMs, requestHeaders: recorded, result, ok, failureType, nonRetryable, delayMs, nextAttemptAtMs, error };
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
      requestHeaders: a.requestHeaders,
      responseHeaders: a.result.responseHeaders,
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

  return { now, slots, stops, requestTimeoutMs, attempt, attemptRecord, logAttempt, waveChecker };
}

export type AttemptSender = ReturnType<typeof createAttemptSender>;
