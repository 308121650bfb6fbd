import { z } from 'zod';
import { EVENT_CATALOG, EVENT_TYPES, EventTypeName } from '../domain/eventCatalog';
import { OPERATIONAL_EVENT_TYPES, OPERATIONAL_EVENTS, OperationalEventTypeName } from '../domain/operationalEvents';
import {
  HEADER_NAME_PATTERN,
  HEADER_VALUE_PATTERN,
  MAX_CUSTOM_HEADERS,
  MAX_HEADER_NAME_CHARS,
  MAX_HEADER_VALUE_CHARS,
  RESERVED_HEADER_NAMES,
  RESERVED_HEADER_PREFIXES,
} from '../domain/customHeaders';
import { registry, type RouteSpec } from './route';
import * as schemas from './schemas';

/**
 * The OpenAPI 3.1 document, generated from the declarations the server runs: every route's
 * zod schemas (`XIn`, `XOut`, `XQuery` in schemas.ts, named components by their export name),
 * the event catalog (one `data` schema per event type), and what each route declares it
 * answers. Everything the server checks outside zod (the event type's own `data` schema, known
 * event types in `eventTypes`, the admin's `?accountId=`) is added here, next to nothing else.
 */

type Json = Record<string, unknown>;
type AnyRoute = RouteSpec<z.ZodType | undefined, z.ZodType | undefined>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const pascal = (s: string) => s.replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase());
/** `reward_unlocked` → `RewardUnlockedData`: the component of that event type's `data`. */
export const dataComponent = (type: string) => `${pascal(type)}Data`;
const eventInComponent = (type: string) => `${pascal(type)}EventIn`;
/** `endpoint.failing` → `EndpointFailing`: its `data` is `EndpointFailingData`, its whole body `EndpointFailingWebhook`. */
const operationalName = (type: string) =>
  type
    .split('.')
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
export const operationalDataComponent = (type: string) => `${operationalName(type)}Data`;
export const operationalWebhookComponent = (type: string) => `${operationalName(type)}Webhook`;

const RATE_LIMIT_HEADERS: Json = {
  'Retry-After': { description: 'Seconds until the budget that was exceeded has room again.', required: true, schema: { type: 'integer', minimum: 1 } },
  'RateLimit-Limit': { description: 'Requests allowed per window by that budget.', schema: { type: 'integer', minimum: 1 } },
  'RateLimit-Remaining': { description: 'Requests left in the current window (0 here).', schema: { type: 'integer', minimum: 0 } },
  'RateLimit-Reset': { description: 'Seconds until the current window ends.', schema: { type: 'integer', minimum: 0 } },
  'RateLimit-Policy': { description: 'The budget as `<limit>;w=<window seconds>`.', schema: { type: 'string' } },
};

const ERRORS: Record<number, { name: string; description: string; example: Json; headers?: Json }> = {
  400: {
    name: 'BadRequest',
    description:
      'Invalid input (body, query or path; the admin token without `?accountId=` on an account route), or a body that is not JSON. `errors` lists every bad field; nothing was stored.',
    example: { code: 'validation_failed', detail: 'The request has 1 invalid field.', errors: [{ path: 'url', message: 'must use https' }] },
  },
  401: { name: 'Unauthorized', description: 'Missing or invalid bearer token.', example: { code: 'unauthorized', detail: 'Send an Authorization: Bearer <token> header.' } },
  402: {
    name: 'PlanRequired',
    description: 'Webhooks need a paid plan (code `plan_required`).',
    example: { code: 'plan_required', detail: 'Webhooks are a paid-plan feature; upgrade the account to use them.' },
  },
  403: { name: 'Forbidden', description: 'The route needs the platform admin token.', example: { code: 'forbidden', detail: 'This route needs the platform admin token.' } },
  404: {
    name: 'NotFound',
    description: 'Not found, or it belongs to another account (including an unknown `?accountId=`).',
    example: { code: 'not_found', detail: 'endpoint not found' },
  },
  409: {
    name: 'Conflict',
    description: 'Conflicts with the current state (see `code`).',
    example: { code: 'endpoint_disabled', detail: 'Enable the endpoint before sending a test event.' },
  },
  413: {
    name: 'PayloadTooLarge',
    description: 'The request body (or the webhook body it would make) exceeds MAX_PAYLOAD_BYTES.',
    example: { code: 'payload_too_large', detail: 'The request body exceeds the limit of 262144 bytes.' },
  },
  429: {
    name: 'TooManyRequests',
    description:
      'An abuse limit was reached (code `rate_limited`; `detail` names the limit): requests per credential (RATE_LIMIT_API; the admin token: RATE_LIMIT_ADMIN, off by default), per account on the routes that make the service POST on demand (RATE_LIMIT_SEND: test events, resends, retries, recover), or failed authentications per source address (RATE_LIMIT_AUTH_FAILURES: then every request from that address, until the window ends). Wait `Retry-After` seconds. Limited requests that pass carry the same RateLimit-* headers.',
    example: { code: 'rate_limited', detail: 'Too many requests with this credential: at most 100 per 1s (RATE_LIMIT_API). Retry in 1 s.' },
    headers: RATE_LIMIT_HEADERS,
  },
  415: {
    name: 'UnsupportedMediaType',
    description: 'A request body that is not `application/json`.',
    example: { code: 'unsupported_media_type', detail: 'Send the request body as application/json.' },
  },
};

/** Characters JavaScript's String.prototype.trim removes (zod's `.trim()`), spelled out so every regex dialect agrees. */
const JS_SPACE = '\\t\\n\\u000b\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff';

/** Where the server checks more than the zod schema says, or zod cannot say it in JSON Schema. */
function overrides(): Map<z.ZodType, Json> {
  const eventTypeList = (description: string): Json => ({ type: 'array', minItems: 1, items: ref('EventType'), description });
  const subscribed = 'Event types to receive (at least one; duplicates are ignored).';
  const operationalTypeList: Json = {
    type: 'array',
    minItems: 1,
    items: ref('OperationalEventType'),
    description: 'Operational event types to receive (at least one; duplicates are ignored).',
  };
  const trimmedName = {
    type: 'string',
    minLength: 1,
    maxLength: 200,
    allOf: [{ pattern: `[^${JS_SPACE}]` }, { pattern: '^[^\\u0000]*$' }],
    description: 'Leading and trailing white space is removed; it must not be empty.',
  };
  return new Map<z.ZodType, Json>([
    [schemas.EndpointIn.shape.eventTypes, eventTypeList(subscribed)],
    [schemas.EndpointPatchIn.shape.eventTypes.unwrap(), eventTypeList(subscribed)],
    [schemas.OperationalEndpointIn.shape.eventTypes, operationalTypeList],
    [schemas.OperationalEndpointPatchIn.shape.eventTypes.unwrap(), operationalTypeList],
    [schemas.EventIn.shape.eventType, { ...ref('EventType'), description: 'Selects the schema of `data`.' }],
    [schemas.EventIn.shape.data, { type: 'object', description: "The event's payload: the schema of its `eventType` (see the `oneOf`)." }],
    [schemas.AccountIn.shape.name, trimmedName],
    [schemas.AccountPatchIn.shape.name.unwrap(), trimmedName],
    [schemas.ApiKeyIn.shape.name, trimmedName],
    [schemas.EndpointIn.shape.headers.unwrap(), customHeadersDoc()],
    [schemas.EndpointPatchIn.shape.headers.unwrap().unwrap(), customHeadersDoc()],
  ]);
}

/** Custom headers as customHeaderProblems checks them (names compared case-insensitively, spelled out for JSON Schema's regexes). */
function customHeadersDoc(): Json {
  const anyCase = (name: string) => name.replace(/[a-z]/g, (c) => `[${c}${c.toUpperCase()}]`);
  const reserved = [...RESERVED_HEADER_NAMES.map((n) => `${anyCase(n)}$`), ...RESERVED_HEADER_PREFIXES.map(anyCase)];
  return {
    type: 'object',
    maxProperties: MAX_CUSTOM_HEADERS,
    propertyNames: { type: 'string', minLength: 1, maxLength: MAX_HEADER_NAME_CHARS, pattern: HEADER_NAME_PATTERN.source, not: { pattern: `^(${reserved.join('|')})` } },
    additionalProperties: { type: 'string', maxLength: MAX_HEADER_VALUE_CHARS, pattern: HEADER_VALUE_PATTERN.source },
    description: `Custom request headers added to every webhook (at most ${MAX_CUSTOM_HEADERS}; e.g. an \`Authorization\` for your gateway). Names are RFC 7230 tokens, case-insensitive and unique; they may not be ${RESERVED_HEADER_NAMES.join(', ')} or start with ${RESERVED_HEADER_PREFIXES.join(' or ')}. Values have no line breaks or control characters. Stored encrypted.`,
    examples: [{ Authorization: 'Bearer gw_7Hq2', 'X-Tenant': 'acme' }],
  };
}

/** Path ids and `?accountId=`, as the server checks them (IdParam, actingAccount). */
const ID_SCHEMA = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[^\\u0000]*$' };

const URL_DOC = {
  description:
    "The receiver's absolute URL, without credentials: `https`, or plain `http` for hosts in DESTINATION_ALLOW_CIDRS (or with ALLOW_HTTP). Every address the host resolves to must be public, or in DESTINATION_ALLOW_CIDRS; anything else is answered 400 naming `url`.",
  format: 'uri',
  // Mirrors normaliseEndpointUrl: white space around is trimmed; inside, no white space, control characters or
  // backslashes anywhere, and an ASCII host without credentials.
  pattern: '^[\\t\\n\\f\\r ]*[Hh][Tt][Tt][Pp][Ss]?://[\\x21-\\x22\\x24-\\x2e\\x30-\\x3e\\x41-\\x5b\\x5d-\\x7e]+([/?#][^\\s\\\\\\x00-\\x1f\\x7f]*)?[\\t\\n\\f\\r ]*$',
};

function componentSchemas(): Json {
  const named = z.registry<{ id: string }>();
  const components: [string, z.ZodType][] = [];
  for (const [name, value] of Object.entries(schemas)) if (value instanceof z.ZodType) components.push([name === 'ErrorOut' ? 'Error' : name, value]);
  components.push(['EventType', EventTypeName]);
  for (const type of EVENT_TYPES) components.push([dataComponent(type), EVENT_CATALOG[type].schema.clone()]);
  components.push(['OperationalEventType', OperationalEventTypeName]);
  for (const type of OPERATIONAL_EVENT_TYPES) components.push([operationalDataComponent(type), OPERATIONAL_EVENTS[type].schema.clone()]);
  for (const [id, schema] of components) named.add(schema, { id });

  const byZod = overrides();
  const override = (ctx: { zodSchema: unknown; jsonSchema: Json }) => {
    const o = byZod.get(ctx.zodSchema as z.ZodType);
    if (!o) return;
    for (const k of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[k];
    Object.assign(ctx.jsonSchema, o);
  };
  const generate = (io: 'input' | 'output') =>
    z.toJSONSchema(named, { io, uri: (id) => `#/components/schemas/${id}`, unrepresentable: 'any', override: override as never }).schemas as Record<string, Json>;
  const input = generate('input');
  const output = generate('output');

  const out: Json = {};
  for (const [id] of components) {
    // Requests are described as the server reads them, responses as it writes them.
    const { $schema: _s, $id: _i, ...schema } = (/(In|Query)$/.test(id) || id.endsWith('Data') ? input : output)[id];
    out[id] = schema;
  }
  for (const id of ['EndpointIn', 'EndpointPatchIn', 'OperationalEndpointIn', 'OperationalEndpointPatchIn'])
    Object.assign((out[id] as { properties: Json }).properties.url as Json, URL_DOC);

  // POST /v1/events: `data` must match the schema of `eventType`; one branch per type.
  for (const type of EVENT_TYPES) {
    const { description, example } = EVENT_CATALOG[type];
    Object.assign(out[dataComponent(type)] as Json, { description: `\`data\` of a \`${type}\` event: ${description}`, examples: [example] });
    out[eventInComponent(type)] = { type: 'object', required: ['eventType', 'data'], properties: { eventType: { const: type }, data: ref(dataComponent(type)) } };
  }
  // What an operational endpoint receives (the `webhooks` of the document): one body per type.
  for (const type of OPERATIONAL_EVENT_TYPES) {
    const { description, example } = OPERATIONAL_EVENTS[type];
    Object.assign(out[operationalDataComponent(type)] as Json, { description: `\`data\` of the operational event \`${type}\`: ${description}`, examples: [example] });
    out[operationalWebhookComponent(type)] = {
      type: 'object',
      required: ['eventType', 'data', 'createdAt', 'updatedAt'],
      properties: {
        eventType: { const: type },
        data: ref(operationalDataComponent(type)),
        createdAt: { type: 'integer', description: 'when the event was emitted, in milliseconds since the epoch' },
        updatedAt: { type: 'integer', description: 'the same as createdAt' },
      },
    };
  }
  Object.assign(out.EventIn as Json, {
    oneOf: EVENT_TYPES.map((t) => ref(eventInComponent(t))),
    discriminator: { propertyName: 'eventType', mapping: Object.fromEntries(EVENT_TYPES.map((t) => [t, `#/components/schemas/${eventInComponent(t)}`])) },
  });
  return out;
}

function componentName(schema: z.ZodType | undefined): string {
  const found = Object.entries(schemas).find(([, v]) => v === schema);
  if (!found) throw new Error('every request and response schema of a route must be exported from src/api/schemas.ts');
  return found[0] === 'ErrorOut' ? 'Error' : found[0];
}

const ID_EXAMPLES: Record<string, string> = {
  accounts: 'acc_01JM6Z3K9Q8W2E4R6T8Y0U2I4O',
  endpoints: 'ep_01JM6Z4A1S3D5F7G9H1J3K5L7Z',
  'operational-endpoints': 'ep_01JM6Z7D4F6H8K0M2P4R6T8V0X',
  deliveries: 'dlv_01JM6Z5B2C4V6B8N0M2Q4W6E8R',
  'api-keys': 'key_01JM6Z6C3D5B7N9M1Q3W5E7R9T',
};

function errorStatuses(r: AnyRoute): number[] {
  const statuses = new Set<number>(r.errors ?? []);
  if (r.auth !== 'none') statuses.add(401).add(429); // 429: the credential's and the source address's abuse limits
  if (r.auth === 'admin') statuses.add(403);
  if (r.auth === 'account') statuses.add(400).add(404); // the admin's ?accountId=: missing → 400, unknown → 404
  if (r.query) statuses.add(400);
  if (r.method === 'post' || r.method === 'patch') statuses.add(400).add(413).add(415); // any body: not JSON → 400, too big → 413, not JSON typed → 415
  if (r.path.includes(':')) statuses.add(400).add(404); // a path id longer than 64 characters or with a NUL → 400
  return [...statuses].sort((a, b) => a - b);
}

function operation(r: AnyRoute, componentsOut: Json): Json {
  const parameters: Json[] = [...r.path.matchAll(/:(\w+)/g)].map((m) => ({
    name: m[1],
    in: 'path',
    required: true,
    schema: ID_SCHEMA,
    example: r.example.params?.[m[1]] ?? ID_EXAMPLES[r.path.split('/')[2]],
  }));
  if (r.query) {
    const q = componentsOut[componentName(r.query)] as { properties?: Record<string, Json>; required?: string[] };
    for (const [name, schema] of Object.entries(q.properties ?? {})) {
      if (name === 'accountId' && r.auth === 'account') continue; // documented below, like on every account route
      const { description, ...rest } = schema;
      parameters.push({ name, in: 'query', required: (q.required ?? []).includes(name), schema: rest, ...(description ? { description } : {}) });
    }
  }
  if (r.auth === 'account') {
    parameters.push({
      name: 'accountId',
      in: 'query',
      required: false,
      description: 'Admin token only, and then required: the account to act for (missing → 400, unknown → 404). Ignored for account keys, which always act for their own account.',
      schema: ID_SCHEMA,
      example: ID_EXAMPLES.accounts,
    });
  }

  const responses: Json = {};
  const ok = r.response;
  responses[ok.status] = ok.schema
    ? {
        description: ok.description ?? 'Success',
        ...(ok.headers ? { headers: ok.headers } : {}),
        content: { 'application/json': { schema: ref(componentName(ok.schema)), ...(r.example.response !== undefined ? { example: r.example.response } : {}) } },
      }
    : { description: ok.description ?? 'Success, no content' };
  for (const status of errorStatuses(r)) responses[status] = { $ref: `#/components/responses/${ERRORS[status].name}` };

  let requestBody: Json | undefined;
  if (r.body) {
    requestBody = {
      // An empty body reads as `{}`: it is required only when `{}` is not valid.
      required: !r.body.safeParse({}).success,
      content: { 'application/json': { schema: ref(componentName(r.body)), ...(r.example.body !== undefined ? { example: r.example.body } : {}) } },
    };
  }
  return {
    operationId: r.operationId,
    summary: r.summary,
    ...(r.limit === 'send'
      ? { description: `${r.summary} Makes the service POST on demand, so an account key or portal link also takes from its account's RATE_LIMIT_SEND budget (429 when spent).` }
      : {}),
    tags: [r.tag],
    ...(r.auth === 'none' ? { security: [] } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(requestBody ? { requestBody } : {}),
    responses,
    'x-auth': r.auth,
  };
}

/** Stateful API testing: how one operation's response feeds the next (OpenAPI links). */
function links(paths: Record<string, Record<string, Json>>): void {
  const link = (path: string, method: string, status: number, name: string, operationId: string, parameters: Json) => {
    const res = paths[path]?.[method]?.responses as Record<string, Json> | undefined;
    if (!res?.[status]) return;
    res[status].links = { ...(res[status].links as Json | undefined), [name]: { operationId, parameters } };
  };
  for (const op of ['getAccount', 'updateAccount', 'createPortalLink']) link('/v1/accounts', 'post', 201, op, op, { id: '$response.body#/id' });
  for (const op of ['getEndpoint', 'updateEndpoint', 'deleteEndpoint', 'getEndpointSecret', 'rotateEndpointSecret', 'sendTestEvent', 'recoverEndpoint', 'getEndpointStats']) {
    link('/v1/endpoints', 'post', 201, op, op, { id: '$response.body#/id' });
  }
  for (const op of [
    'getOperationalEndpoint',
    'updateOperationalEndpoint',
    'deleteOperationalEndpoint',
    'getOperationalEndpointSecret',
    'rotateOperationalEndpointSecret',
    'recoverOperationalEndpoint',
  ]) {
    link('/v1/operational-endpoints', 'post', 201, op, op, { id: '$response.body#/id' });
  }
  link('/v1/endpoints/{id}/test', 'post', 202, 'getDelivery', 'getDelivery', { id: '$response.body#/deliveryId' });
  link('/v1/endpoints/{id}/test', 'post', 202, 'resendDelivery', 'resendDelivery', { id: '$response.body#/deliveryId' });
  link('/v1/deliveries/{id}/resend', 'post', 202, 'getDelivery', 'getDelivery', { id: '$response.body#/deliveryId' });
}

/**
 * The operational events an operational endpoint receives (OpenAPI 3.1 `webhooks`): signed and
 * retried like every webhook (webhook-id, webhook-timestamp, webhook-signature, X-RR-Signature).
 */
function operationalWebhooks(): Json {
  return Object.fromEntries(
    OPERATIONAL_EVENT_TYPES.map((type) => {
      const { description, example } = OPERATIONAL_EVENTS[type];
      return [
        type,
        {
          post: {
            operationId: `operational.${type}`,
            summary: `Operational event \`${type}\``,
            description: `${description} Delivered to the operational endpoints subscribed to \`${type}\` (POST /v1/operational-endpoints), signed like every webhook: verify \`webhook-signature\` (Standard Webhooks) or \`X-RR-Signature\` with the operational endpoint's secret; \`webhook-id\` is the same on every retry.`,
            tags: ['Operational webhooks'],
            requestBody: {
              required: true,
              content: {
                'application/json': {
                  schema: ref(operationalWebhookComponent(type)),
                  example: { eventType: type, data: example, createdAt: 1739070028002, updatedAt: 1739070028002 },
                },
              },
            },
            responses: { '200': { description: 'Any 2xx acknowledges it; anything else (or no answer within ATTEMPT_TIMEOUT) is retried on the delivery schedule.' } },
          },
        },
      ];
    }),
  );
}

export function openApiDocument(version: string): Json {
  const componentsOut = componentSchemas();
  const paths: Record<string, Record<string, Json>> = {};
  for (const r of registry) {
    const path = r.path.replace(/:(\w+)/g, '{$1}');
    paths[path] ??= {};
    paths[path][r.method] = operation(r, componentsOut);
  }
  links(paths);
  const usedQueries = new Set(registry.filter((r) => r.query).map((r) => componentName(r.query)));
  for (const name of usedQueries) delete componentsOut[name]; // described as parameters instead
  return {
    openapi: '3.1.0',
    info: {
      title: 'Referral webhooks API',
      version,
      description:
        "Manage webhook endpoints, publish events and inspect deliveries. Bearer auth: the platform admin token, or an account API key (or a portal-link token). Admin-only routes answer 403 to account keys; an account's resources read as 404 to any other account.",
    },
    servers: [{ url: '/' }],
    tags: [...new Set(registry.map((r) => r.tag))].map((name) => ({ name })),
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The admin token (ADMIN_TOKEN) or an account API key.' } },
      schemas: componentsOut,
      responses: Object.fromEntries(
        Object.values(ERRORS).map((e) => [
          e.name,
          { description: e.description, ...(e.headers ? { headers: e.headers } : {}), content: { 'application/json': { schema: ref('Error'), example: e.example } } },
        ]),
      ),
    },
    security: [{ bearer: [] }],
    paths,
    webhooks: operationalWebhooks(),
  };
}
