import type { Queryable } from '../db/database';
import type { RetrySchedule } from '../domain/retrySchedule';
import type { SendSlots } from '../http/sendSlots';
import type { SendStops } from '../http/sendStops';
import type { WebhookSender } from '../http/sendWebhook';
import type { Logger } from '../logger';
import type { DeliveryMetrics } from '../metrics';
import type { CircuitSettings } from './circuit';

// What the delivery activities (src/activities/delivery.ts) take from the worker that hosts them,
// and the requests they make of its Dispatcher (src/services/dispatcher.ts).

/** A delivery whose first attempt failed and that continues in its own retry workflow. */
export interface HandOff {
  deliveryId: string;
  series: number;
  /** Wait before the next attempt. */
  delayMs: number;
  /** Attempts made so far, as the delivery log counts them, and the last one's error: the retry workflow's current details start from them. */
  attempts?: number;
  lastError?: string;
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

export interface DeliveryActivityDeps {
  db: Queryable;
  send: WebhookSender;
  log: Logger;
  metrics?: DeliveryMetrics;
  /** No other process sends through this database (embedded PGlite): rate-limit slots need less margin. */
  soleProcess?: boolean;
  /** Disable an endpoint whose every attempt failed for this long (AUTO_DISABLE_AFTER). */
  autoDisableAfterMs: number;
  /** Clock for attempt times and webhook-timestamp; tests pass the time-skipping server's clock. */
  now?: () => number | Promise<number>;
  /** Starts `delivery-<id>` retry workflows (idempotent): the worker's Dispatcher. */
  startRetryWorkflows?: (request: RetryStartRequest) => Promise<void>;
  /** Which of these workflow ids Temporal knows (started at some point): the worker's Dispatcher. */
  existingWorkflows?: (workflowIds: string[]) => Promise<Set<string>>;
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
