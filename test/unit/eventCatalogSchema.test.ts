import Ajv2020 from 'ajv/dist/2020';
import { EVENT_CATALOG, EVENT_TYPES, webhookBody, webhookJsonSchema } from '../../src/domain/eventCatalog';

// The event catalog's JSON Schemas (GET /v1/event-types, the settings page's catalog) are generated
// from the zod schemas that validate POST /v1/events: a real validator must agree with them.
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false }); // formats aside: the schema also carries patterns;

test.each(EVENT_TYPES)('when the %s webhook body schema is used by a JSON Schema validator, then the sample body passes and a body zod refuses fails', (type) => {
  const schema = webhookJsonSchema(type);
  expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
  const validate = ajv.compile(schema);
  const body = JSON.parse(webhookBody(type, EVENT_CATALOG[type].example, 1739070028002));
  expect([validate(body), validate.errors]).toEqual([true, null]);

  const bad = { ...body, data: { ...body.data, email: 'not an email', participantId: -1 } };
  expect(EVENT_CATALOG[type].schema.safeParse(bad.data).success).toBe(false);
  expect(validate(bad)).toBe(false);
  expect(validate.errors!.map((e) => e.instancePath).sort()).toEqual(expect.arrayContaining(['/data/email', '/data/participantId']));
  expect(validate({ ...body, eventType: 'something_else' })).toBe(false);
});

test('when a reward says whose it is in two ways that disagree, then the served schema refuses it like the zod schema does', () => {
  const validate = ajv.compile(webhookJsonSchema('reward_unlocked'));
  const example = EVENT_CATALOG.reward_unlocked.example;
  const body = JSON.parse(webhookBody('reward_unlocked', { ...example, reward: { ...example.reward, side: 'referee', isReferrer: true } }, 1));
  expect(validate(body)).toBe(false);
  const neither = JSON.parse(webhookBody('reward_unlocked', { ...example, reward: { id: 'r', amount: 1, currency: 'USD', type: 'cash' } }, 1));
  expect(validate(neither)).toBe(false);
});
