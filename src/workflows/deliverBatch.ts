import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { isCancellation, ParentClosePolicy, proxyLocalActivities, startChild, workflowInfo } from '@temporalio/workflow';
import type { DeliveryActivities, HandOff, PostBatchResult } from '../activities/delivery';
import type { RetrySchedule } from '../domain/retrySchedule';
import { workflowIdFor } from '../domain/workflowIds';
import { deliverWebhook } from './deliverWebhook';
import { RrAccountId, RrDeliveryStatus, RrEndpointId, RrEventType } from './searchAttributes';

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
 * one local activity and recorded in one write. Most webhooks succeed at once, and then a
 * whole batch costs Temporal one start and one task instead of one each per delivery (the
 * difference between ~100 and 300+ deliveries/s on two cores). Each delivery that must be
 * retried continues in its own `deliverWebhook` workflow (`delivery-<id>`), started here and
 * left running when the batch completes: the retry clock is on the Temporal server from then on.
 */
export async function deliverBatch(input: DeliverBatchInput): Promise<DeliverBatchResult> {
  const { schedule } = input;
  const windowEndsAtMs = Date.now() + schedule.windowMs;
  const { postBatch } = proxyLocalActivities<DeliveryActivities>({
    startToCloseTimeout: input.attemptTimeoutMs + 20_000, // room for the activity's own database retries
    retry: { maximumAttempts: 2, initialInterval: '1s' }, // a re-run skips what the first run finished
  });

  let result: PostBatchResult;
  try {
    result = await postBatch({ deliveries: input.deliveries, windowEndsAtMs, schedule });
  } catch (err) {
    if (isCancellation(err)) throw err;
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

  await Promise.all(result.retrying.map((r) => startRetry(input, r, windowEndsAtMs)));
  return { delivered: result.delivered, finished: result.finished, skipped: result.skipped, retrying: result.retrying.length };
}

async function startRetry(input: DeliverBatchInput, r: HandOff, windowEndsAtMs: number): Promise<void> {
  const { meta } = r;
  try {
    await startChild(deliverWebhook, {
      workflowId: workflowIdFor(r.deliveryId, r.series),
      parentClosePolicy: ParentClosePolicy.ABANDON,
      args: [{
        deliveryId: r.deliveryId,
        series: r.series,
        schedule: input.schedule,
        attemptTimeoutMs: input.attemptTimeoutMs,
        searchAttributes: input.searchAttributes,
        after: { batchId: workflowInfo().workflowId, delayMs: r.delayMs, windowEndsAtMs },
      }],
      staticSummary: meta ? `${meta.eventType} → ${meta.url}` : `delivery ${r.deliveryId}`,
      ...(input.searchAttributes
        ? {
            typedSearchAttributes: [
              { key: RrAccountId, value: input.accountId },
              ...(meta ? [{ key: RrEndpointId, value: meta.endpointId }, { key: RrEventType, value: meta.eventType }] : []),
              { key: RrDeliveryStatus, value: 'pending' },
            ],
          }
        : {}),
    });
  } catch (err) {
    // Already running (the reconciler started it, or a replay of this batch did): it carries on.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}
