/** Failure types the delivery activity raises; the workflow maps them to a final status. */
export const FailureType = {
  /** Endpoint deleted or disabled, or the delivery no longer pending: stop, status `cancelled`. */
  Cancelled: 'DeliveryCancelled',
  /** Receiver answered 410 Gone: stop, `undeliverable`, endpoint disabled. */
  EndpointGone: 'EndpointGone',
  /** Destination refused by the SSRF policy at connect time: stop, `undeliverable`. */
  DestinationForbidden: 'DestinationForbidden',
  /** Any HTTP or network failure worth another try. */
  AttemptFailed: 'AttemptFailed',
  /** Another workflow owns the delivery (claimed it first): this one stops and records nothing. */
  Superseded: 'DeliverySuperseded',
  /** The endpoint's circuit is open: no request was made; retried after the hold (nextRetryDelay), within the window. */
  Held: 'DeliveryHeld',
} as const;

export const NON_RETRYABLE_FAILURES: string[] = [FailureType.Cancelled, FailureType.EndpointGone, FailureType.DestinationForbidden, FailureType.Superseded];

export type DeliveryStatus = 'pending' | 'delivered' | 'undeliverable' | 'cancelled';
export const DELIVERY_STATUSES: DeliveryStatus[] = ['pending', 'delivered', 'undeliverable', 'cancelled'];

export interface FinalOutcome {
  status: Exclude<DeliveryStatus, 'pending'>;
  reason: string;
  /** The endpoint answered 410 Gone: disable it too. */
  disableEndpoint?: boolean;
}

/** The final status and reason of a delivery whose last attempt failed with this type (pure: the workflows use it too). */
export function finalOutcome(type: string | undefined, message: string): FinalOutcome {
  if (type === FailureType.Cancelled) return { status: 'cancelled', reason: message };
  if (type === FailureType.EndpointGone) return { status: 'undeliverable', reason: 'receiver answered 410 Gone; endpoint disabled', disableEndpoint: true };
  if (type === FailureType.DestinationForbidden) return { status: 'undeliverable', reason: `destination forbidden: ${message}` };
  if (type === FailureType.Held) return { status: 'undeliverable', reason: `retry window exhausted while the endpoint was unavailable (${message.replace(/^held: /, '')})` };
  return { status: 'undeliverable', reason: `retry window exhausted; last error: ${message}` };
}
