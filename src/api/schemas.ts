import { HOLD_REASONS, type HoldReason } from '../domain/endpointGate';
import { z } from 'zod';
import { EVENT_TYPES, EventTypeName } from '../domain/eventCatalog';
import { normaliseEndpointUrl } from '../domain/endpointUrl';
import { DELIVERY_STATUSES } from '../domain/errors';
import { OPERATIONAL_EVENT_TYPES, OperationalEventTypeName } from '../domain/operationalEvents';
import { customHeaderProblems, MAX_CUSTOM_HEADERS } from '../domain/customHeaders';

/** Text that can be stored: Postgres refuses NUL (U+0000) in text, so it is a 400, not a 500. */
// eslint-disable-next-line no-control-regex -- NUL is exactly what it refuses
export const text = () => z.string().regex(/^[^\u0000]*$/, 'must not contain NUL (U+0000) characters');

/** A path id or `?accountId=`: a NUL or an absurd length is a 400 naming it, never a database error. */
export const IdParam = text().min(1).max(64);

/** An endpoint URL, stored as its normalised href; look-alike forms are refused (see normaliseEndpointUrl). */
const endpointUrl = text()
  .min(1)
  .max(2048)
  .transform((typed, ctx) => {
    const n = normaliseEndpointUrl(typed);
    if ('href' in n) return n.href;
    ctx.addIssue({ code: 'custom', message: n.problem });
    return z.NEVER;
  });

/** A time the API takes: ISO 8601 with an offset, in the years 1970–9999 (Postgres and JavaScript agree on all of them). */
const apiTime = text()
  .datetime({ offset: true })
  .regex(/^(19[7-9][0-9]|[2-9][0-9]{3})-/, 'must be a time in the years 1970 to 9999');

/** Request (`XIn`) and response (`XOut`) schemas of the REST API; OpenAPI is generated from them. */
export const ErrorOut = z.object({
  code: z.string().describe('stable snake_case code'),
  detail: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

export const Plan = z.enum(['free', 'paid']);
export const AccountIn = z.strictObject({ name: text().trim().min(1).max(200), plan: Plan });
export const AccountPatchIn = z.strictObject({ name: text().trim().min(1).max(200).optional(), plan: Plan.optional() });
export const AccountOut = z.object({ id: z.string(), name: z.string(), plan: Plan, createdAt: z.string(), updatedAt: z.string() });
export const AccountCreatedOut = AccountOut.extend({ apiKey: z.string().describe('shown once; stored only as a hash') });

export const EventTypeOut = z.object({
  type: EventTypeName,
  description: z.string(),
  example: z.record(z.string(), z.unknown()).describe('a sample `data` of this type (what "send example" and test events send)'),
  schema: z
    .record(z.string(), z.unknown())
    .describe(
      "JSON Schema (draft 2020-12) of the webhook body an endpoint receives for this type; `properties.data` is the schema of `data`, generated from the service's own validation",
    ),
});
export const EventTypesOut = z.object({ data: z.array(EventTypeOut) });

const eventTypeList = z
  .array(text())
  .min(1, 'select at least one event type')
  .superRefine((types, ctx) => {
    types.forEach((t, i) => {
      if (!(EVENT_TYPES as string[]).includes(t)) ctx.addIssue({ code: 'custom', path: [i], message: `unknown event type "${t}"; known: ${EVENT_TYPES.join(', ')}` });
    });
  })
  .transform((types) => [...new Set(types)] as z.output<typeof EventTypeName>[]);

const rateLimitPerSecond = z
  .number()
  .positive('must be more than 0')
  .max(10_000)
  .nullable()
  .describe('most requests per second this endpoint receives, across every worker (null: no limit); may be fractional, e.g. 0.5 = one request every 2 s');
const maxInFlight = z.number().int().min(1).max(1_000).nullable().describe('most requests to this endpoint open at once, across every worker (null: no limit)');
const customHeaders = () =>
  z
    .record(z.string(), z.string())
    .superRefine((headers, ctx) => {
      for (const p of customHeaderProblems(headers)) ctx.addIssue({ code: 'custom', path: p.path ? [p.path] : [], message: p.message });
    })
    .describe(
      `custom request headers added to every webhook (at most ${MAX_CUSTOM_HEADERS}; e.g. an Authorization for your gateway); they never replace the signature, content or connection headers. Stored encrypted.`,
    );
export const EndpointIn = z.strictObject({
  url: endpointUrl,
  eventTypes: eventTypeList,
  description: text().max(500).optional(),
  enabled: z.boolean().optional(),
  rateLimitPerSecond: rateLimitPerSecond.optional(),
  maxInFlight: maxInFlight.optional(),
  headers: customHeaders().optional(),
});
export const EndpointPatchIn = z.strictObject({
  url: endpointUrl.optional(),
  eventTypes: eventTypeList.optional(),
  description: text().max(500).optional(),
  enabled: z.boolean().optional(),
  rateLimitPerSecond: rateLimitPerSecond.optional().describe('null removes the limit'),
  maxInFlight: maxInFlight.optional().describe('null removes the limit'),
  headers: customHeaders().nullable().optional().describe('replaces the whole set; null or {} removes them all'),
});
export const HealthState = z.enum(['healthy', 'failing', 'open', 'probing']);
export const EndpointHealthOut = z
  .object({
    state: HealthState.describe(
      '`healthy`; `failing` (consecutive failures); `open`: circuit open, deliveries are held, not sent, and one probe at a time decides; `probing`: that probe is out',
    ),
    since: z.string().describe('when the endpoint entered this state (for `open` and `probing`: when the circuit opened)'),
    consecutiveFailures: z.number().int(),
    lastError: z.string().optional(),
    nextProbeAt: z.string().optional().describe('while the circuit is open: when the next probe may go out'),
  })
  .describe('read-only');
export const EndpointOut = z.object({
  id: z.string(),
  url: z.string(),
  eventTypes: z.array(EventTypeName),
  description: z.string(),
  enabled: z.boolean(),
  disabledReason: z.string().nullable(),
  disabledAt: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  rateLimitPerSecond: z.number().nullable().describe('most requests per second (null: no limit)'),
  maxInFlight: z.number().int().nullable().describe('most requests open at once (null: no limit)'),
  headers: z.record(z.string(), z.string()).describe('custom request headers sent with every webhook ({} for none)'),
  health: EndpointHealthOut,
});
export const EndpointWithSecretOut = EndpointOut.extend({ secret: z.string() });
export const EndpointListOut = z.object({ data: z.array(EndpointOut) });
export const SecretOut = z.object({ secret: z.string() });

export const EventIn = z.strictObject({
  accountId: text().min(1).max(64),
  eventType: text().min(1),
  data: z.record(z.string(), z.unknown()),
  idempotencyKey: text().min(1).max(255).optional(),
});
export const EventAcceptedOut = z.object({ id: z.string(), deliveries: z.array(z.object({ id: z.string(), endpointId: z.string() })) });

export const DeliveryStatus = z.enum(DELIVERY_STATUSES as [string, ...string[]]);
/** An id of one kind (the settings page trims and lower-cases what is pasted in its search box). */
const idOf = (prefix: string, what: string) => z.string().regex(new RegExp(`^${prefix}_[0-9a-z]{26}$`), `must be ${what} id: "${prefix}_" and 26 letters and digits`);
export const DeliveryListQuery = z.object({
  status: DeliveryStatus.optional(),
  endpointId: text().max(64).optional(),
  eventType: text().optional(),
  since: apiTime.optional().describe('only deliveries created at or after this time (ISO 8601 with an offset)'),
  until: apiTime.optional().describe('only deliveries created before this time (an empty page when it is not later than `since`)'),
  eventId: idOf('evt', 'an event').optional().describe('only the deliveries of this event (one per endpoint it went to)'),
  deliveryId: idOf('dlv', 'a delivery').optional().describe('only this delivery (a search: an empty page when it is not there, never 404)'),
  test: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional()
    .describe('`true`: only test deliveries (test events and "send example"); `false`: only real ones'),
  limit: z.coerce.number().int().min(1).max(250).default(50),
  cursor: text().max(64).optional(),
  accountId: text().max(64).optional(),
});
export const AttemptOut = z.object({
  attempt: z.number().int(),
  startedAt: z.string(),
  durationMs: z.number().int(),
  statusCode: z.number().int().optional(),
  error: z.string().optional(),
  responseBody: z.string().optional(),
  requestHeaders: z
    .record(z.string(), z.string())
    .optional()
    .describe(
      "the headers this attempt was sent with: content type, user agent, content length, the signature headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`, `X-RR-Signature`) as sent, and the endpoint's custom headers with their values redacted (`••••` and the last 4 characters of a value of 16 or more characters, `••••` alone for a shorter one; `Accept`, `Accept-Language`, `Accept-Charset`, `Cache-Control` and `Pragma` as sent); absent on attempts recorded before headers were kept",
    ),
  responseHeaders: z
    .record(z.string(), z.string())
    .optional()
    .describe(
      'the headers the receiver answered with (names in lower case, repeated ones joined with ", "), at most 30, each value cut to 256 characters (ending in "…" when cut), at most 4,096 characters in all; never `Set-Cookie`. Absent when no answer came (timeout, network error) and on attempts recorded before headers were kept',
    ),
});
export const DeliveryOut = z.object({
  id: z.string(),
  eventId: z.string(),
  endpointId: z.string(),
  eventType: z.string(),
  status: DeliveryStatus,
  attemptCount: z.number().int(),
  nextAttemptAt: z.string().optional(),
  deliveredAt: z.string().optional(),
  finishedReason: z.string().optional(),
  createdAt: z.string(),
  test: z.boolean().describe('a test delivery: sent by "send test event" or "send example", not by a published event'),
  workflowId: z
    .string()
    .optional()
    .describe(
      "the Temporal workflow of the delivery, one that exists: its first-attempt batch (`batch-…`) while that owns it, `delivery-<id>` (`delivery-<id>-<series>` after a resend) once it retries, `drain-<endpointId>` while its endpoint's recovery drain sends it; absent until a workflow for it was started (milliseconds after publishing, unless Temporal is unreachable), and absent for a delivery whose first attempt `npm start` sent straight from its process (DISPATCH_INLINE) and that needed no retry",
    ),
  workflowUrl: z.string().optional().describe("that workflow in the Temporal Web UI, when its address is known; for the admin token only (the Web UI is the operator's)"),
  held: z
    .object({
      reason: z
        .enum(HOLD_REASONS as [HoldReason, ...HoldReason[]])
        .describe(
          "`circuit_open`: the endpoint's circuit is open; `probing`: one probe request to it is out; `throttled`: the endpoint answered 429 and is paused for its Retry-After; `rate_limited` / `max_in_flight`: the endpoint's own limits (its recovery drain sends it at that pace)",
        ),
      detail: z.string(),
      since: z.string().describe('first held wake-up since its last real attempt'),
      until: z.string().optional().describe('when it wakes next (no request is made while the circuit stays open)'),
    })
    .optional()
    .describe('present while a pending delivery is held by its endpoint (open circuit, 429 pause or its send limits): its wake-ups make no request and log no attempt'),
});
export const DeliveryDetailOut = DeliveryOut.extend({
  attempts: z.array(AttemptOut),
  payload: z.string().nullable().describe('the exact body receivers get; null once purged by retention'),
});
export const DeliveryListOut = z.object({ data: z.array(DeliveryOut), nextCursor: z.string().nullable() });
export const ResendOut = z.object({ deliveryId: z.string() });
export const TestIn = z.strictObject({ eventType: EventTypeName.optional() });
export const RecoverKind = z.enum(['undeliverable', 'cancelled', 'missing']);
export const RecoverIn = z.strictObject({
  since: apiTime.describe('deliveries created, and events published, at or after this time'),
  limit: z.number().int().min(1).max(1000).optional().describe('most deliveries brought back by this call (default 1000); `more` says whether to call again'),
  include: z
    .array(RecoverKind)
    .min(1)
    .optional()
    .describe(
      'what to bring back (default all three): `undeliverable` deliveries, `cancelled` ones (cancelled by auto-disable, a disable, a 410 or a downgrade), and `missing` events (published since then, of a type the endpoint subscribes to, that never got a delivery to it, e.g. while it was disabled)',
    ),
});
export const RecoverOut = z.object({ deliveryIds: z.array(z.string()) });
export const RecoveredOut = RecoverOut.extend({
  recovered: z.object({ undeliverable: z.number().int(), cancelled: z.number().int(), missing: z.number().int() }).describe('how many of each kind this call brought back'),
  more: z.boolean().describe('the limit was reached: there may be more to bring back (call again; nothing is brought back twice)'),
});
export const BulkResendIn = z.strictObject({
  status: z.enum(['undeliverable', 'cancelled']).describe('resend the deliveries that ended with this status'),
  endpointId: text().max(64).optional(),
  eventType: text().max(200).optional(),
  since: apiTime.optional().describe('created at or after this time'),
  until: apiTime.optional().describe('created before this time'),
  limit: z.number().int().min(1).max(1000).optional().describe('most deliveries resent by this call (default 1000); `more` says whether to call again'),
});
export const BulkResendPreviewQuery = z.object({
  status: BulkResendIn.shape.status,
  endpointId: BulkResendIn.shape.endpointId,
  eventType: BulkResendIn.shape.eventType,
  since: BulkResendIn.shape.since,
  until: BulkResendIn.shape.until,
  accountId: text().max(64).optional(),
});
export const BulkResendPreviewOut = z.object({
  count: z.number().int().describe('how many deliveries a bulk resend with this filter would resend now (over as many calls as `more` asks for)'),
  skipped: z.number().int().describe('how many more match the filter but would be left out: their endpoint is disabled or deleted, or their payload was purged'),
});
export const BulkResendOut = RecoverOut.extend({ more: z.boolean().describe('the limit was reached: there may be more to resend (call again; nothing is resent twice)') });
export const PortalScope = z.enum(['manage', 'read']);
export const PortalLinkIn = z.strictObject({
  ttlSeconds: z
    .number()
    .int()
    .min(60)
    .max(7 * 86_400)
    .optional()
    .describe('lifetime; PORTAL_LINK_MAX_TTL (default 24 h) shortens a longer one'),
  scope: PortalScope.optional().describe('`read`: the page shows everything but changes nothing (default `manage`)'),
});
export const PortalLinkOut = z.object({
  id: z.string().describe('revoke this one link with DELETE /v1/accounts/:id/portal-links/:linkId'),
  url: z.string().describe("open it to manage this account's webhooks; the token is in the fragment"),
  expiresAt: z.string(),
  scope: PortalScope,
});
export const ApiKeyIn = z.strictObject({ name: text().trim().min(1).max(200).describe('what the key is for, e.g. "CRM sync"') });
export const ApiKeyOut = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string().describe('the first characters of the key, to tell keys apart'),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable().describe('last successful authentication (to the minute)'),
});
export const ApiKeyCreatedOut = ApiKeyOut.extend({ key: z.string().describe('shown once; stored only as a hash') });
export const ApiKeyListOut = z.object({ data: z.array(ApiKeyOut) });
export const MyAccountOut = z.object({ id: z.string(), name: z.string(), plan: Plan, access: PortalScope.describe('`read` for a read-only portal link') });

const operationalEventTypeList = z
  .array(text())
  .min(1, 'select at least one event type')
  .superRefine((types, ctx) => {
    types.forEach((t, i) => {
      if (!(OPERATIONAL_EVENT_TYPES as string[]).includes(t))
        ctx.addIssue({ code: 'custom', path: [i], message: `unknown operational event type "${t}"; known: ${OPERATIONAL_EVENT_TYPES.join(', ')}` });
    });
  })
  .transform((types) => [...new Set(types)] as z.output<typeof OperationalEventTypeName>[]);
export const OperationalEndpointIn = z.strictObject({
  url: endpointUrl,
  eventTypes: operationalEventTypeList,
  description: text().max(500).optional(),
  enabled: z.boolean().optional(),
});
export const OperationalEndpointPatchIn = z.strictObject({
  url: endpointUrl.optional(),
  eventTypes: operationalEventTypeList.optional(),
  description: text().max(500).optional(),
  enabled: z.boolean().optional(),
});
export const OperationalEndpointOut = EndpointOut.omit({ eventTypes: true, rateLimitPerSecond: true, maxInFlight: true, headers: true }).extend({
  eventTypes: z.array(OperationalEventTypeName),
});
export const OperationalEndpointWithSecretOut = OperationalEndpointOut.extend({ secret: z.string() });
export const OperationalEndpointListOut = z.object({ data: z.array(OperationalEndpointOut) });
export const StatsWindowName = z.enum(['1h', '24h', '7d']);
export const EndpointStatsQuery = z.object({
  window: StatsWindowName.default('24h').describe('`1h` (1-minute buckets), `24h` (15-minute buckets) or `7d` (1-hour buckets)'),
  accountId: text().max(64).optional(),
});
const FailedByOut = z
  .object({ '3xx': z.number().int(), '4xx': z.number().int(), '5xx': z.number().int(), timeout: z.number().int(), network: z.number().int(), refused: z.number().int() })
  .describe(
    'failed attempts by class: an HTTP status class (3xx: redirects, which are never followed), `timeout`, `network` (no answer: refused connection, reset, DNS) or `refused` (the destination policy refused the address)',
  );
const StatsFiguresOut = z.object({
  attempts: z.number().int(),
  succeeded: z.number().int().describe('attempts answered 2xx'),
  failed: z.number().int(),
  failedBy: FailedByOut,
  successRate: z.number().min(0).max(1).nullable().describe('succeeded / attempts (0 to 1, 4 decimals); null without attempts'),
  p50Ms: z
    .number()
    .int()
    .nullable()
    .describe('median response time of the attempts that got an HTTP answer, estimated from a histogram with buckets at most 25 % wide; null without any'),
  p95Ms: z.number().int().nullable().describe('95th percentile response time, estimated like p50Ms'),
});
export const EndpointStatsOut = z.object({
  window: StatsWindowName,
  bucketSeconds: z.number().int(),
  from: z.string().describe('start of the first bucket (buckets are aligned to multiples of bucketSeconds, UTC)'),
  to: z.string().describe('end of the last bucket (the current one, still filling)'),
  totals: StatsFiguresOut,
  buckets: z.array(StatsFiguresOut.extend({ start: z.string() })).describe('every bucket of the window, oldest first, empty ones included'),
  lastError: z.object({ at: z.string(), error: z.string() }).nullable().describe('the latest failed attempt in the window'),
});
