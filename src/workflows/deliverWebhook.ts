import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  sleep,
  TimeoutFailure,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { DeliveryActivities } from '../activities/delivery';
import type { RecordOutcomeInput } from '../activities/recordOutcome';
import { FailureType, finalOutcome, NON_RETRYABLE_FAILURES } from '../domain/errors';
import type { RetrySchedule } from '../domain/retrySchedule';
import { RrDeliveryStatus } from './searchAttributes';

export interface DeliverWebhookInput {
  deliveryId: string;
  series: number;
  schedule: RetrySchedule;
  attemptTimeoutMs: number;
  /** Whether the delivery search attributes were set at start (then the final status is upserted). */
  searchAttributes?: boolean;
  /** Started by a first-attempt batch (which handed the delivery over) after that attempt failed: wait, then retry. */
  after?: { batchId: string; delayMs: number; windowEndsAtMs: number };
}

export interface DeliverWebhookResult {
  /** `superseded`: another workflow owns the delivery; this one recorded nothing. */
  status: RecordOutcomeInput['status'] | 'superseded';
  reason?: string;
}

/**
 * One delivery (one event to one endpoint).
 *
 * The first attempt runs as a local activity inside the first workflow task (or, on the publish
 * path, in a first-attempt batch that starts this workflow only when that attempt failed). If it
 * fails, the workflow waits the first back-off on a durable timer, and a regular activity
 * carries the rest of the schedule: Temporal's server keeps that retry clock, so nothing waits
 * in worker memory. Its schedule-to-close timeout ends with the delivery window; when it
 * closes, the delivery is undeliverable and no attempt follows.
 */
export async function deliverWebhook(input: DeliverWebhookInput): Promise<DeliverWebhookResult> {
  const { schedule, after } = input;
  const windowEndsAtMs = after?.windowEndsAtMs ?? Date.now() + schedule.windowMs;
  const attempt = { deliveryId: input.deliveryId, series: input.series, windowEndsAtMs, schedule };
  const { recordOutcome } = proxyActivities<DeliveryActivities>({
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', maximumInterval: '1m' }, // retried until the database answers
  });

  let outcome: RecordOutcomeInput;
  let recorded = false;
  try {
    let sent: Awaited<ReturnType<DeliveryActivities['postWebhook']>> | undefined;
    let delayMs = after?.delayMs;
    if (!after) {
      try {
        const { postWebhook: firstAttempt } = proxyLocalActivities<DeliveryActivities>({
          startToCloseTimeout: input.attemptTimeoutMs + 20_000, // room for the activity's own database retries
          retry: { maximumAttempts: 1 },
        });
        sent = await firstAttempt({ ...attempt, attemptOffset: 0 });
      } catch (err) {
        delayMs = retryableDelay(err, schedule);
        if (delayMs === undefined || Date.now() + delayMs >= windowEndsAtMs) throw err;
      }
    }
    if (!sent) {
      if (Date.now() + delayMs! >= windowEndsAtMs) {
        throw ApplicationFailure.create({ type: FailureType.AttemptFailed, message: 'the next attempt would fall after the delivery window' });
      }
      await sleep(delayMs!);
      const { postWebhook } = proxyActivities<DeliveryActivities>({
        startToCloseTimeout: input.attemptTimeoutMs + 30_000,
        scheduleToCloseTimeout: Math.max(1_000, windowEndsAtMs - Date.now()),
        retry: {
          initialInterval: schedule.initialIntervalMs,
          backoffCoefficient: schedule.backoffCoefficient,
          maximumInterval: schedule.maximumIntervalMs, // attempts unlimited: the window bounds them
          nonRetryableErrorTypes: NON_RETRYABLE_FAILURES,
        },
      });
      sent = await postWebhook({ ...attempt, attemptOffset: 1 });
    }
    outcome = { deliveryId: input.deliveryId, series: input.series, status: 'delivered' };
    recorded = sent.finished; // the successful attempt already marked it delivered
  } catch (err) {
    const cause = attemptFailure(err);
    if (cause instanceof ApplicationFailure && cause.type === FailureType.Superseded) {
      // Another workflow claimed the delivery first (two dispatch paths raced): it sends it.
      if (input.searchAttributes) upsertSearchAttributes([{ key: RrDeliveryStatus, value: 'superseded' }]);
      return { status: 'superseded', reason: cause.message };
    }
    outcome = { deliveryId: input.deliveryId, series: input.series, ...classify(err) };
  }
  // Runs even when the workflow was cancelled (endpoint deleted or disabled).
  if (!recorded) await CancellationScope.nonCancellable(() => recordOutcome(outcome));
  if (input.searchAttributes) upsertSearchAttributes([{ key: RrDeliveryStatus, value: outcome.status }]);
  return { status: outcome.status, reason: outcome.reason };
}

/**
 * The back-off the first attempt asked for, or undefined when it must not be retried. A failure
 * that carries no delay (the database or the worker failed, not the receiver) is retried on the
 * normal schedule: an infrastructure hiccup must never end a delivery.
 */
function retryableDelay(err: unknown, schedule: RetrySchedule): number | undefined {
  const cause = attemptFailure(err);
  if (!cause) return undefined; // cancelled
  if (cause instanceof ApplicationFailure) {
    if (cause.nonRetryable || NON_RETRYABLE_FAILURES.includes(cause.type ?? '')) return undefined;
    const fromDetails = (cause.details?.[0] as { nextRetryDelayMs?: unknown } | undefined)?.nextRetryDelayMs;
    if (typeof fromDetails === 'number') return fromDetails;
    if (cause.nextRetryDelay !== undefined && cause.nextRetryDelay !== null) return msToNumber(cause.nextRetryDelay);
  }
  return schedule.initialIntervalMs;
}

/** What an attempt failed with: the cause inside an ActivityFailure, or a local activity's own failure. */
function attemptFailure(err: unknown): Error | undefined {
  if (isCancellation(err)) return undefined;
  if (err instanceof ActivityFailure) return err.cause ?? err;
  if (err instanceof ApplicationFailure || err instanceof TimeoutFailure) return err;
  return undefined;
}

function classify(err: unknown): Omit<RecordOutcomeInput, 'deliveryId' | 'series'> {
  if (isCancellation(err)) return { status: 'cancelled', reason: 'cancelled: endpoint deleted or disabled' };
  const cause = attemptFailure(err);
  if (cause instanceof ApplicationFailure) return finalOutcome(cause.type ?? undefined, cause.message);
  if (cause instanceof TimeoutFailure) return { status: 'undeliverable', reason: 'retry window exhausted' };
  if (cause) return { status: 'undeliverable', reason: `retry window exhausted; last error: ${cause.message}` };
  // Anything else is a bug in this code: fail the workflow task so Temporal retries it after a fix,
  // rather than giving up on the delivery.
  throw err;
}
