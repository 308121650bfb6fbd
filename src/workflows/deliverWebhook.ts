import { ActivityFailure, ApplicationFailure, CancellationScope, isCancellation, proxyActivities, TimeoutFailure, upsertSearchAttributes } from '@temporalio/workflow';
import type { DeliveryActivities, RecordOutcomeInput } from '../activities/delivery';
import { FailureType, NON_RETRYABLE_FAILURES } from '../domain/errors';
import type { RetrySchedule } from '../domain/retrySchedule';
import { RrDeliveryStatus } from './searchAttributes';

export interface DeliverWebhookInput {
  deliveryId: string;
  series: number;
  schedule: RetrySchedule;
  attemptTimeoutMs: number;
  /** Whether the delivery search attributes were set at start (then the final status is upserted). */
  searchAttributes?: boolean;
}

export type DeliverWebhookResult = Pick<RecordOutcomeInput, 'status' | 'reason'>;

/**
 * One delivery (one event to one endpoint). A single activity carries the whole retry
 * schedule: Temporal's server keeps the back-off clock, so nothing waits in worker memory.
 * Its schedule-to-close timeout is the delivery window; when it closes, the delivery is
 * undeliverable and no attempt follows.
 */
export async function deliverWebhook(input: DeliverWebhookInput): Promise<DeliverWebhookResult> {
  const { schedule } = input;
  const { postWebhook } = proxyActivities<DeliveryActivities>({
    startToCloseTimeout: input.attemptTimeoutMs + 30_000,
    scheduleToCloseTimeout: schedule.windowMs,
    retry: {
      initialInterval: schedule.initialIntervalMs,
      backoffCoefficient: schedule.backoffCoefficient,
      maximumInterval: schedule.maximumIntervalMs, // attempts unlimited: the window bounds them
      nonRetryableErrorTypes: NON_RETRYABLE_FAILURES,
    },
  });
  const { recordOutcome } = proxyActivities<DeliveryActivities>({
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', maximumInterval: '1m' }, // retried until the database answers
  });

  let outcome: RecordOutcomeInput;
  let recorded = false;
  try {
    const sent = await postWebhook({ deliveryId: input.deliveryId, series: input.series, windowEndsAtMs: Date.now() + schedule.windowMs, schedule });
    outcome = { deliveryId: input.deliveryId, series: input.series, status: 'delivered' };
    recorded = sent.finished; // the successful attempt already marked it delivered
  } catch (err) {
    outcome = { deliveryId: input.deliveryId, series: input.series, ...classify(err) };
  }
  // Runs even when the workflow was cancelled (endpoint deleted or disabled).
  if (!recorded) await CancellationScope.nonCancellable(() => recordOutcome(outcome));
  if (input.searchAttributes) upsertSearchAttributes([{ key: RrDeliveryStatus, value: outcome.status }]);
  return { status: outcome.status, reason: outcome.reason };
}

function classify(err: unknown): Omit<RecordOutcomeInput, 'deliveryId' | 'series'> {
  if (isCancellation(err)) return { status: 'cancelled', reason: 'cancelled: endpoint deleted or disabled' };
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure) {
      if (cause.type === FailureType.Cancelled) return { status: 'cancelled', reason: cause.message };
      if (cause.type === FailureType.EndpointGone) return { status: 'undeliverable', reason: 'receiver answered 410 Gone; endpoint disabled', disableEndpoint: true };
      if (cause.type === FailureType.DestinationForbidden) return { status: 'undeliverable', reason: `destination forbidden: ${cause.message}` };
      return { status: 'undeliverable', reason: `retry window exhausted; last error: ${cause.message}` };
    }
    if (cause instanceof TimeoutFailure) return { status: 'undeliverable', reason: 'retry window exhausted' };
    return { status: 'undeliverable', reason: `retry window exhausted; last error: ${cause?.message ?? err.message}` };
  }
  // Anything else is a bug in this code: fail the workflow task so Temporal retries it after a fix,
  // rather than giving up on the delivery.
  throw err;
}
