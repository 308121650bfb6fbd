import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  defineSignal,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  TimeoutFailure,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { DeliveryActivities } from '../activities/delivery';
import type { RecordOutcomeInput } from '../activities/recordOutcome';
import { ATTEMPTED_SIGNAL, storyText, utc, type AttemptNews, type DeliveryStory } from '../domain/deliveryStory';
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
  /**
   * Started by a first-attempt batch (which handed the delivery over) after that attempt failed:
   * wait, then retry. `attempts` (the delivery log's count so far) and `lastError` start the
   * workflow's current details; executions started before they existed have neither.
   */
  after?: {
    batchId: string;
    delayMs: number;
    windowEndsAtMs: number;
    attempts?: number;
    lastError?: string;
    /**
     * The first back-off was waited out by the server before this workflow's first task (the
     * start's `startDelay`): no timer here. Deliveries held by an open circuit are handed over in
     * thousands; a start delay costs them no workflow task, no timer and no cache entry until they
     * wake. Executions started before it existed, or first run by a worker of the previous build,
     * wait on a timer (`patched('delayed-start')`).
     */
    delayedStart?: boolean;
  };
}

/** A retry attempt (src/activities/retryAttempt.ts) tells its workflow of each failed attempt it recorded: it only changes the current details. */
export const attemptedSignal = defineSignal<[AttemptNews]>(ATTEMPTED_SIGNAL);

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
  // The server waited the first back-off out (start delay): no timer. Behind patched(): during a
  // rolling deploy a worker of the previous build may have run such an execution first, and its
  // history then has the timer (patched() stays false for it on replay).
  const delayedStart = after?.delayedStart === true && patched('delayed-start');
  // The Web UI's current details (src/domain/deliveryStory.ts): in workflow memory, served by the
  // metadata query; no command, so no history changes.
  const story: DeliveryStory = {
    windowEndsAtMs,
    attempt: after?.attempts || undefined,
    lastError: after?.lastError,
    nextAtMs: after && !delayedStart ? Date.now() + after.delayMs : undefined,
  };
  const tell = (change: Partial<DeliveryStory>) => setCurrentDetails(storyText(Object.assign(story, change)));
  setHandler(attemptedSignal, (news) => {
    if (news.attempt >= (story.attempt ?? 0)) tell({ attempt: news.attempt, lastError: news.error ?? story.lastError, nextAtMs: news.nextAtMs, held: undefined });
  });
  tell({});
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
          summary: 'first attempt',
        });
        sent = await firstAttempt({ ...attempt, attemptOffset: 0 });
      } catch (err) {
        delayMs = retryableDelay(err, schedule);
        tell(failureFacts(err));
        if (delayMs === undefined || Date.now() + delayMs >= windowEndsAtMs) throw err;
      }
    }
    if (!sent && !delayedStart) {
      if (Date.now() + delayMs! >= windowEndsAtMs) {
        throw ApplicationFailure.create({ type: FailureType.AttemptFailed, message: 'the next attempt would fall after the delivery window' });
      }
      tell({ nextAtMs: Date.now() + delayMs! });
      await sleep(delayMs!, { summary: `back-off until ${utc(Date.now() + delayMs!)}` });
    }
    if (!sent) {
      const { postWebhook } = proxyActivities<DeliveryActivities>({
        summary: `retries until ${utc(windowEndsAtMs)}, when the delivery window ends`,
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
    tell({ attempt: sent.attempt || story.attempt, outcome });
  } catch (err) {
    const cause = attemptFailure(err);
    if (cause instanceof ApplicationFailure && cause.type === FailureType.Superseded) {
      // Another workflow claimed the delivery first (two dispatch paths raced): it sends it.
      tell({ outcome: { status: 'superseded', reason: cause.message } });
      if (input.searchAttributes) upsertSearchAttributes([{ key: RrDeliveryStatus, value: 'superseded' }]);
      return { status: 'superseded', reason: cause.message };
    }
    outcome = { deliveryId: input.deliveryId, series: input.series, ...classify(err) };
    tell({ attempt: failureFacts(err).attempt ?? story.attempt, outcome });
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

/** What a failed attempt adds to the story: its number in the delivery log and error, or why it was held without a request. */
function failureFacts(err: unknown): Partial<DeliveryStory> {
  const cause = attemptFailure(err);
  if (!cause) return {};
  const detail = (cause instanceof ApplicationFailure ? cause.details?.[0] : undefined) as { attempt?: unknown } | undefined;
  const attempt = typeof detail?.attempt === 'number' && detail.attempt > 0 ? detail.attempt : undefined;
  if (cause instanceof ApplicationFailure && cause.type === FailureType.Held) return { held: cause.message.replace(/^held: /, '') };
  return { ...(attempt ? { attempt } : {}), lastError: cause.message, held: undefined };
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
