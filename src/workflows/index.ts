// The workflow bundle's entry point: every workflow the worker serves.
export { deliverWebhook } from './deliverWebhook';
export { purgeOldData } from './purgeOldData';
