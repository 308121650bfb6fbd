/**
 * Workflow ids (pure: the workflows use them too). A delivery's own workflow is
 * `delivery-<id>` for the first series (the convention), `delivery-<id>-<n>` for resends; the
 * same on every retry, so receivers and operators can correlate them.
 */
export function workflowIdFor(deliveryId: string, series: number): string {
  return series === 1 ? `delivery-${deliveryId}` : `delivery-${deliveryId}-${series}`;
}

/** A first-attempt batch, named after its first delivery (a delivery joins at most one batch). */
export function batchWorkflowId(firstDeliveryId: string): string {
  return `batch-${firstDeliveryId}`;
}
