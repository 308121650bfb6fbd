import { CancellationScope, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { DeliveryActivities } from '../activities/delivery';
import type { PostBatchResult } from '../activities/firstAttemptBatch';
import type { RetrySchedule } from '../domain/retrySchedule';

export interface DeliverBatchInput {
  /** Every delivery of a batch belongs to this account. */
  accountId: string;
  deliveries: { deliveryId: string; series: number }[];
  schedule: RetrySchedule;
  attemptTimeoutMs: number;
  /** Whether the retry workflows it starts carry the delivery search attributes. */
  searchAttributes?: boolean;
}

export interface DeliverBatchResult {
  delivered: number;
  finished: number;
  skipped: number;
  retrying: number;
}

/**
 * The first attempt of many deliveries of one account, in one workflow: sent concurrently from
 * one local activity and recorded in as few writes as possible. Most webhooks succeed at once,
 * and then a whole batch costs Temporal one start and one task instead of one each per delivery
 * (the difference between ~100 and 600+ deliveries/s on two cores). Each delivery that must be
 * retried continues in its own `deliverWebhook` workflow (`delivery-<id>`), started by a second
 * local activity: the retry clock is on the Temporal server from then on.
 */
export async function deliverBatch(input: DeliverBatchInput): Promise<DeliverBatchResult> {
  // A batch lives seconds and owns its deliveries until it hands them over: a cancellation (an
  // operator in the Web UI) must not strand them, so it is not honoured; the batch finishes.
  return CancellationScope.nonCancellable(() => firstAttempts(input));
}

async function firstAttempts(input: DeliverBatchInput): Promise<DeliverBatchResult> {
  const { schedule } = input;
  const windowEndsAtMs = Date.now() + schedule.windowMs;
  const { postBatch } = proxyLocalActivities<DeliveryActivities>({
    startToCloseTimeout: input.attemptTimeoutMs + 60_000, // room for the activity's own database retries
    retry: { maximumAttempts: 1 }, // on failure everything is handed over below: a second run could overlap the first
  });
  const { startRetries } = proxyLocalActivities<DeliveryActivities>({
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', maximumInterval: '1m' }, // until Temporal takes them: nothing may be lost
  });

  let result: PostBatchResult;
  try {
    result = await postBatch({ deliveries: input.deliveries, windowEndsAtMs, schedule });
  } catch (err) {
    // The database or this worker failed, not a receiver. Nothing may be lost: every delivery
    // continues in its own workflow after the first back-off (a delivery that was in fact
    // finished is then found finished, and one sent but not recorded is sent again).
    result = {
      delivered: 0,
      finished: 0,
      skipped: 0,
      retrying: input.deliveries.map((d) => ({ ...d, delayMs: schedule.initialIntervalMs })),
    };
  }

  if (result.retrying.length) {
    await startRetries({
      batchId: workflowInfo().workflowId,
      accountId: input.accountId,
      retrying: result.retrying,
      windowEndsAtMs,
      schedule,
      attemptTimeoutMs: input.attemptTimeoutMs,
      searchAttributes: input.searchAttributes,
    });
  }
  return { delivered: result.delivered, finished: result.finished, skipped: result.skipped, retrying: result.retrying.length };
}
