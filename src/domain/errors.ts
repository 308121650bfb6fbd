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
} as const;

export const NON_RETRYABLE_FAILURES: string[] = [FailureType.Cancelled, FailureType.EndpointGone, FailureType.DestinationForbidden];

export type DeliveryStatus = 'pending' | 'delivered' | 'undeliverable' | 'cancelled';
export const DELIVERY_STATUSES: DeliveryStatus[] = ['pending', 'delivered', 'undeliverable', 'cancelled'];
