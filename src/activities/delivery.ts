import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Queryable } from '../db/database';
import { attemptContext, finishDelivery, recordAttempt } from '../db/deliveries';
import { activeSecrets, disableEndpoint, recordEndpointFailure } from '../db/endpoints';
import { FailureType, type DeliveryStatus } from '../domain/errors';
import { parseRetryAfter, retryDelayMs, type RetrySchedule } from '../domain/retrySchedule';
import { signatureHeaders } from '../domain/signing';
import type { WebhookSender } from '../http/sendWebhook';
import type { Logger } from '../logger';
import { statusClass, type DeliveryMetrics } from '../metrics';

export const USER_AGENT = 'rr-webhooks/0.1 (+https://github.com/rr-webhooks)';

export interface PostWebhookInput {
  deliveryId: string;
  series: number;
  /** Epoch ms after which no attempt may start (workflow start + window). */
  windowEndsAtMs: number;
  schedule: RetrySchedule;
  /** Attempts made before this activity started (the workflow's first attempt runs as a local activity). */
  attemptOffset?: number;
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

/** Activities of the delivery workflow; the worker injects the database, HTTP sender and clock. */
export function createDeliveryActivities(deps: DeliveryActivityDeps) {
  const now = deps.now ?? Date.now;

  async function postWebhook(input: PostWebhookInput): Promise<{ statusCode: number; attempt: number; finished: boolean }> {
    const seriesAttempt = Context.current().info.attempt + (input.attemptOffset ?? 0);
    const ctx = await attemptContext(deps.db, input.deliveryId);
    const stop = (reason: string) => ApplicationFailure.create({ type: FailureType.Cancelled, message: reason, nonRetryable: true });
    if (!ctx) throw stop('delivery not found');
    // Re-run after a crash that followed a successful attempt: it is done, don't send again.
    if (ctx.delivery.series === input.series && ctx.delivery.status === 'delivered') return { statusCode: 0, attempt: ctx.delivery.attempt_count, finished: true };
    if (ctx.delivery.series !== input.series || ctx.delivery.status !== 'pending') throw stop(`delivery is ${ctx.delivery.status}, not pending`);
    if (ctx.endpoint_deleted) throw stop('endpoint deleted');
    if (!ctx.endpoint_enabled) throw stop('endpoint disabled');
    if (ctx.plan !== 'paid') throw stop('account is not on a paid plan');
    if (ctx.payload_purged) throw stop('payload purged by retention');

    const startedAtMs = await now();
    const headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      ...signatureHeaders(activeSecrets(ctx, new Date(startedAtMs)), input.deliveryId, Math.floor(startedAtMs / 1000), ctx.body),
    };
    const result = await deps.send(ctx.url, headers, ctx.body);
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
    const error = ok ? undefined : result.error ?? `HTTP ${result.statusCode}`;

    // The request is out: a database blip now must not turn into a second POST, so the write is
    // retried here for a while before the attempt as a whole is failed (and later repeated).
    const attempt = await persistently(() => recordAttempt(deps.db, {
      deliveryId: input.deliveryId,
      series: input.series,
      startedAt: new Date(startedAtMs),
      durationMs: result.durationMs,
      statusCode: result.statusCode,
      error,
      responseBody: result.bodyExcerpt,
      nextAttemptAt: nextAttemptAtMs === undefined ? undefined : new Date(nextAttemptAtMs),
      delivered: ok,
    }));
    if (ok) deps.metrics?.finished.inc({ status: 'delivered' });
    deps.log.info('delivery.attempted', {
      deliveryId: input.deliveryId,
      accountId: ctx.delivery.account_id,
      endpointId: ctx.delivery.endpoint_id,
      eventType: ctx.delivery.event_type,
      attempt,
      series: input.series,
      seriesAttempt,
      ok,
      statusCode: result.statusCode ?? null,
      durationMs: result.durationMs,
      error: error ?? null,
      nextAttemptAt: nextAttemptAtMs === undefined ? null : new Date(nextAttemptAtMs).toISOString(),
    });
    if (ok) return { statusCode: result.statusCode!, attempt, finished: true };
    const autoDisabled = await recordEndpointFailure(deps.db, ctx.delivery.endpoint_id, new Date(startedAtMs), deps.autoDisableAfterMs);
    if (autoDisabled) {
      deps.log.warn('endpoint.auto_disabled', { endpointId: ctx.delivery.endpoint_id, accountId: ctx.delivery.account_id });
      throw ApplicationFailure.create({ type: FailureType.Cancelled, message: 'endpoint auto-disabled after failing for too long', nonRetryable: true });
    }
    throw ApplicationFailure.create({
      type: failureType,
      message: error ?? 'attempt failed',
      nonRetryable,
      nextRetryDelay: nonRetryable ? undefined : delayMs,
      // Also as a detail: local-activity failures reach the workflow without nextRetryDelay.
      details: nonRetryable ? undefined : [{ nextRetryDelayMs: delayMs }],
    });
  }

  async function recordOutcome(input: RecordOutcomeInput): Promise<boolean> {
    const at = new Date(await now());
    const changed = await finishDelivery(deps.db, { deliveryId: input.deliveryId, series: input.series, status: input.status, reason: input.reason, at });
    if (input.disableEndpoint) {
      const [d] = await deps.db.query<{ endpoint_id: string }>('select endpoint_id from deliveries where id = $1', [input.deliveryId]);
      if (d) await disableEndpoint(deps.db, d.endpoint_id, input.reason ?? 'receiver answered 410 Gone', at);
    }
    if (changed) deps.metrics?.finished.inc({ status: input.status });
    deps.log.info('delivery.finished', { deliveryId: input.deliveryId, series: input.series, status: input.status, reason: input.reason ?? null, changed });
    return changed;
  }

  return { postWebhook, recordOutcome };
}

export type DeliveryActivities = ReturnType<typeof createDeliveryActivities>;
