import type { DeliveryActivityDeps } from './deliveryDeps';
import { createDrainPage } from './drainPage';
import { createEndpointGuards } from './endpointGuards';
import { createFirstAttemptBatch } from './firstAttemptBatch';
import { createRecordOutcome } from './recordOutcome';
import { createRetryAttempt } from './retryAttempt';
import { createAttemptSender } from './sendAttempt';

/**
 * Activities of the delivery workflows; the worker injects the database, HTTP sender and clock.
 * Their names are Temporal activity types, recorded in every workflow history: renaming one breaks
 * the workflows in flight (test/workflows/replay.test.ts).
 */
export function createDeliveryActivities(deps: DeliveryActivityDeps) {
  const sender = createAttemptSender(deps);
  const guards = createEndpointGuards(deps);
  const recordOutcome = createRecordOutcome(deps, sender);
  const { postBatch, startRetries } = createFirstAttemptBatch(deps, sender, guards, recordOutcome);
  const postWebhook = createRetryAttempt(deps, sender, guards);
  const drainPage = createDrainPage(deps, sender, guards);
  return { postWebhook, postBatch, startRetries, recordOutcome, drainPage };
}

export type DeliveryActivities = ReturnType<typeof createDeliveryActivities>;
