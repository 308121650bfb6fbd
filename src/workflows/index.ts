// The workflow bundle's entry point: every workflow the worker serves.
export { deliverBatch } from './deliverBatch';
export { deliverWebhook } from './deliverWebhook';
export { purgeOldData } from './purgeOldData';
export { drainEndpoint } from './drainEndpoint';
