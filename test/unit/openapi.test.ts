import { validate, compileErrors } from '@readme/openapi-parser';
import { createApp } from '../../src/api/app';
import { dataComponent, openApiDocument, operationalDataComponent, operationalWebhookComponent } from '../../src/api/openapi';
import { registry } from '../../src/api/route';
import { loadConfig } from '../../src/config';
import { EVENT_CATALOG, EVENT_TYPES } from '../../src/domain/eventCatalog';
import { OPERATIONAL_EVENT_TYPES, OPERATIONAL_EVENTS } from '../../src/domain/operationalEvents';

// Building the app declares every route; the document needs nothing else.
createApp({ cfg: loadConfig({ ADMIN_TOKEN: 'a'.repeat(32) }), adminToken: 'a'.repeat(32) } as never);
const doc = openApiDocument('1.0.0') as any;
const operations = Object.entries(doc.paths).flatMap(([path, ops]: [string, any]) => Object.entries(ops).map(([method, op]: [string, any]) => ({ path, method, op })));
const resolve = (o: any): any =>
  o?.$ref
    ? resolve(
        o.$ref
          .slice(2)
          .split('/')
          .reduce((x: any, k: string) => x[k], doc),
      )
    : o;

test('when the document is validated by an OpenAPI 3.1 validator, then it has no errors', async () => {
  const result = await validate(structuredClone(doc));
  expect(result.valid ? 'valid' : compileErrors(result)).toBe('valid');
});

test('when the document is read, then every route is one operation with an operationId, a tag, an example and named components', () => {
  expect(operations).toHaveLength(registry.length);
  expect(new Set(operations.map((o) => o.op.operationId)).size).toBe(operations.length);
  for (const { path, method, op } of operations) {
    const where = `${method.toUpperCase()} ${path}`;
    expect([where, typeof op.operationId, op.tags.length]).toEqual([where, 'string', 1]);
    const ok = Object.entries(op.responses).find(([s]) => s.startsWith('2')) as [string, any];
    const body = op.requestBody?.content['application/json'];
    const example = ok[1].content?.['application/json']?.example ?? body?.example ?? op.parameters?.find((p: any) => p.example)?.example;
    expect([where, example !== undefined]).toEqual([where, true]);
    for (const media of [body, ok[1].content?.['application/json']].filter(Boolean))
      expect([where, media.schema.$ref]).toEqual([where, expect.stringMatching(/^#\/components\/schemas\//)]);
    for (const [status, res] of Object.entries(op.responses) as [string, any][])
      if (!status.startsWith('2')) expect([where, status, res.$ref]).toEqual([where, status, expect.stringMatching(/^#\/components\/responses\//)]);
  }
});

test('when a route declares examples, then they are valid for its own zod schemas', () => {
  for (const r of registry) {
    if (r.example.body !== undefined) expect([r.operationId, r.body!.safeParse(r.example.body).error?.issues]).toEqual([r.operationId, undefined]);
    if (r.example.response !== undefined) expect([r.operationId, r.response.schema!.safeParse(r.example.response).error?.issues]).toEqual([r.operationId, undefined]);
  }
});

test("when an account route is read, then the admin's ?accountId= and its 400/404 are documented", () => {
  const accountRoutes = operations.filter((o) => o.op['x-auth'] === 'account');
  expect(accountRoutes.length).toBe(21); // 13 + the three /v1/api-keys routes + the two retry routes + bulk resend and its preview + stats
  for (const { path, method, op } of accountRoutes) {
    expect([path, method, op.parameters.filter((p: any) => p.name === 'accountId' && p.in === 'query').length]).toEqual([path, method, 1]);
    expect([path, method, Object.keys(op.responses)]).toEqual([path, method, expect.arrayContaining(['400', '401', '404'])]);
  }
});

test('when a body is optional on the server, then requestBody.required is false, and every body route documents 400, 413 and 415', () => {
  const required = Object.fromEntries(operations.filter((o) => o.op.requestBody).map((o) => [o.op.operationId, o.op.requestBody.required]));
  expect(required).toEqual({
    createAccount: true,
    updateAccount: false,
    createPortalLink: false,
    createEndpoint: true,
    updateEndpoint: false,
    sendTestEvent: false,
    recoverEndpoint: true,
    publishEvent: true,
    createApiKey: true,
    createOperationalEndpoint: true,
    updateOperationalEndpoint: false,
    recoverOperationalEndpoint: true,
    resendDeliveries: true,
  });
  for (const { op } of operations.filter((o) => o.method === 'post' || o.method === 'patch'))
    expect([op.operationId, Object.keys(op.responses)]).toEqual([op.operationId, expect.arrayContaining(['400', '413', '415'])]);
});

test("when event types appear in requests, then they are the catalog's enum, and each type's data has its own schema", () => {
  expect(doc.components.schemas.EventType.enum).toEqual(EVENT_TYPES);
  expect(resolve(doc.components.schemas.EndpointIn.properties.eventTypes.items).enum).toEqual(EVENT_TYPES);
  expect(resolve(doc.components.schemas.EndpointPatchIn.properties.eventTypes.items).enum).toEqual(EVENT_TYPES);
  const eventIn = resolve(doc.paths['/v1/events'].post.requestBody.content['application/json'].schema);
  expect(Object.keys(eventIn.properties)).toEqual(['accountId', 'eventType', 'data', 'idempotencyKey']); // ../shared/peers/loadgen.mjs --check reads these
  expect(eventIn.discriminator.propertyName).toBe('eventType');
  for (const [i, type] of EVENT_TYPES.entries()) {
    const branch = resolve(eventIn.oneOf[i]);
    expect(branch.properties.eventType.const).toBe(type);
    const data = resolve(branch.properties.data);
    expect(data).toBe(doc.components.schemas[dataComponent(type)]);
    expect(data.examples).toEqual([EVENT_CATALOG[type].example]);
    expect(Object.keys(data.properties)).toEqual(expect.arrayContaining(['participantId', 'email', 'code', 'campaignId']));
  }
  expect(resolve(doc.components.schemas.RewardUnlockedData.properties.reward).required).toEqual(expect.arrayContaining(['id', 'amount', 'currency']));
});

test('when the operational events are read, then each is a webhook of the document with a JSON Schema for its body and data, and its example is valid', () => {
  expect(Object.keys(doc.webhooks)).toEqual(OPERATIONAL_EVENT_TYPES);
  expect(doc.components.schemas.OperationalEventType.enum).toEqual(OPERATIONAL_EVENT_TYPES);
  expect(resolve(doc.components.schemas.OperationalEndpointIn.properties.eventTypes.items).enum).toEqual(OPERATIONAL_EVENT_TYPES);
  for (const type of OPERATIONAL_EVENT_TYPES) {
    const body = resolve(doc.webhooks[type].post.requestBody.content['application/json'].schema);
    expect(body).toBe(doc.components.schemas[operationalWebhookComponent(type)]);
    expect(body.properties.eventType.const).toBe(type);
    const data = resolve(body.properties.data);
    expect(data).toBe(doc.components.schemas[operationalDataComponent(type)]);
    expect(data.required).toEqual(expect.arrayContaining(['accountId', 'endpointId']));
    expect(OPERATIONAL_EVENTS[type].schema.safeParse(OPERATIONAL_EVENTS[type].example).error?.issues).toBeUndefined();
  }
});
