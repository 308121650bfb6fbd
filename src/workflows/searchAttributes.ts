import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes on every delivery workflow, so operators can filter in the Web UI,
 * e.g. `RrAccountId = "acc_…" AND RrDeliveryStatus = "undeliverable"`. They must be registered
 * on the namespace before use (the service does it at start-up when it may; see README).
 */
export const RrAccountId = defineSearchAttributeKey('RrAccountId', SearchAttributeType.KEYWORD);
export const RrEndpointId = defineSearchAttributeKey('RrEndpointId', SearchAttributeType.KEYWORD);
export const RrEventType = defineSearchAttributeKey('RrEventType', SearchAttributeType.KEYWORD);
export const RrDeliveryStatus = defineSearchAttributeKey('RrDeliveryStatus', SearchAttributeType.KEYWORD);

export const DELIVERY_SEARCH_ATTRIBUTES = [RrAccountId, RrEndpointId, RrEventType, RrDeliveryStatus];
