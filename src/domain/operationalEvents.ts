import { z } from 'zod';

/**
 * Operational webhooks: what the platform (not its customers) is told about its customers'
 * endpoints. They are ordinary webhooks of an internal account, PLATFORM_ACCOUNT_ID, whose
 * endpoints are the operational endpoints (/v1/operational-endpoints): the same signing, the
 * same durable delivery workflows and retry policy. Each event is inserted by the very SQL
 * statement that makes the state change it reports (src/db/operational.ts), so none is lost to
 * a crash. The body is `{ eventType, data, createdAt, updatedAt }`, as for customer webhooks.
 */
export const PLATFORM_ACCOUNT_ID = 'acc_000000000000000000platform';

const time = z.string().describe('ISO 8601');
const base = {
  accountId: z.string().describe('the customer account the endpoint belongs to'),
  endpointId: z.string(),
};
const endpointUrl = z.string().describe("the endpoint's URL");

export const EndpointFailingData = z.object({
  ...base,
  url: endpointUrl,
  consecutiveFailures: z.number().int().describe('failed attempts in a row (429 not counted) when the circuit opened'),
  failingSince: time.describe('first failure of the streak'),
  lastError: z.string().nullable(),
});
export const EndpointDisabledData = z.object({
  ...base,
  url: endpointUrl,
  trigger: z
    .enum(['automatic', 'manual'])
    .describe('`automatic`: the service disabled it (the receiver answered 410 Gone, or every attempt failed for AUTO_DISABLE_AFTER); `manual`: the account disabled it'),
  reason: z.string().nullable().describe('why, in words (also `disabledReason` on the endpoint)'),
  disabledAt: time,
});
export const EndpointRecoveredData = z.object({
  ...base,
  url: endpointUrl,
  failingSince: time.nullable().describe('start of the failure streak that ended'),
  recoveredAt: time.describe('the successful attempt that closed the circuit'),
});
export const DeliveryExhaustedData = z.object({
  ...base,
  deliveryId: z.string(),
  eventId: z.string(),
  eventType: z.string(),
  attemptCount: z.number().int(),
  reason: z.string().nullable().describe('why it ended undeliverable (window exhausted, 410 Gone, destination forbidden)'),
  finishedAt: time,
});
export const EndpointChangedData = z.object({
  ...base,
  url: endpointUrl,
  description: z.string(),
  eventTypes: z.array(z.string()),
  enabled: z.boolean(),
});
export const EndpointDeletedData = z.object({ ...base, url: endpointUrl });

const ids = { accountId: 'acc_01JM6Z3K9Q8W2E4R6T8Y0U2I4O', endpointId: 'ep_01JM6Z4A1S3D5F7G9H1J3K5L7Z' };
const url = 'https://hooks.acme.example/referrals';
const changed = { ...ids, url, description: 'CRM sync', eventTypes: ['referrer_added', 'reward_unlocked'], enabled: true };

export const OPERATIONAL_EVENTS = {
  'endpoint.failing': {
    description:
      "An endpoint's failure streak reached CIRCUIT_OPEN_AFTER failed attempts in a row: its circuit opened, and its deliveries are held while one probe at a time tests it. Sent once per streak.",
    schema: EndpointFailingData,
    example: { ...ids, url, consecutiveFailures: 5, failingSince: '2025-02-09T03:00:28.002Z', lastError: 'HTTP 503' },
  },
  'endpoint.disabled': {
    description: 'An endpoint was disabled: automatically (410 Gone, or failing for AUTO_DISABLE_AFTER; its pending deliveries were cancelled) or by the account.',
    schema: EndpointDisabledData,
    example: { ...ids, url, trigger: 'automatic', reason: 'auto-disabled: every attempt failed since 2025-02-09T03:00:28.002Z', disabledAt: '2025-02-14T03:00:31.410Z' },
  },
  'endpoint.recovered': {
    description: 'An endpoint whose circuit was open answered again (a probe or retry-now succeeded): its held deliveries are being sent. Follows `endpoint.failing`.',
    schema: EndpointRecoveredData,
    example: { ...ids, url, failingSince: '2025-02-09T03:00:28.002Z', recoveredAt: '2025-02-09T05:12:40.118Z' },
  },
  'delivery.exhausted': {
    description:
      'A delivery ended undeliverable: its retry window closed without a 2xx, or the receiver refused it for good (410 Gone, forbidden destination). It is never retried again (recover or resend it).',
    schema: DeliveryExhaustedData,
    example: {
      ...ids,
      deliveryId: 'dlv_01JM6Z5B2C4V6B8N0M2Q4W6E8R',
      eventId: 'evt_01JM6Z5B2C4V6B8N0M2Q4W6E8Q',
      eventType: 'referrer_added',
      attemptCount: 14,
      reason: 'retry window exhausted; last error: HTTP 503',
      finishedAt: '2025-02-12T03:00:28.002Z',
    },
  },
  'endpoint.created': { description: 'An account added an endpoint.', schema: EndpointChangedData, example: changed },
  'endpoint.updated': {
    description: 'An account changed an endpoint (URL, event types, description, enabled, send limits); `data` is the endpoint after the change.',
    schema: EndpointChangedData,
    example: { ...changed, enabled: false },
  },
  'endpoint.deleted': { description: 'An account deleted an endpoint; its pending deliveries were cancelled.', schema: EndpointDeletedData, example: { ...ids, url } },
} as const;

export type OperationalEventType = keyof typeof OPERATIONAL_EVENTS;
export const OPERATIONAL_EVENT_TYPES = Object.keys(OPERATIONAL_EVENTS) as OperationalEventType[];
export const OperationalEventTypeName = z.enum(OPERATIONAL_EVENT_TYPES as [OperationalEventType, ...OperationalEventType[]]);
