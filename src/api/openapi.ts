import { z } from 'zod';
import { registry } from './route';
import { ErrorOut } from './schemas';

const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid input; `errors` lists every bad field. Nothing was stored.',
  401: 'Missing or invalid bearer token.',
  402: 'Webhooks need a paid plan (code plan_required).',
  403: 'The route needs the admin token.',
  404: 'Not found, or belongs to another account.',
  409: 'Conflicts with the current state.',
  413: 'Request or webhook body too large.',
};

function jsonSchema(schema: z.ZodType, io: 'input' | 'output') {
  return z.toJSONSchema(schema, { io, unrepresentable: 'any' });
}

/** The OpenAPI 3.1 document, built from the same zod schemas that validate requests. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of registry) {
    const path = r.path.replace(/:(\w+)/g, '{$1}');
    const params = [...r.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (r.query) {
      const q = jsonSchema(r.query, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) params.push({ name, in: 'query', required: (q.required ?? []).includes(name), schema: schema as never });
    }
    const responses: Record<string, unknown> = {
      [r.response.status]: r.response.schema
        ? { description: r.response.description ?? 'Success', content: { 'application/json': { schema: jsonSchema(r.response.schema, 'output') } } }
        : { description: r.response.description ?? 'Success, no content' },
    };
    const errorStatuses = new Set([...(r.auth === 'none' ? [] : [401]), ...(r.body || r.query ? [400] : []), ...(r.auth === 'admin' ? [403] : []), ...(r.errors ?? [])]);
    for (const status of [...errorStatuses].sort()) {
      responses[status] = { description: ERROR_TEXT[status] ?? 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    }
    paths[path] ??= {};
    paths[path][r.method] = {
      summary: r.summary,
      tags: [r.tag],
      ...(r.auth === 'none' ? { security: [] } : {}),
      ...(params.length ? { parameters: params } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(r.body, 'input') } } } } : {}),
      responses,
      'x-auth': r.auth,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Referral webhooks API', version, description: 'Manage webhook endpoints, publish events and inspect deliveries. Bearer auth: the platform admin token or an account API key.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: jsonSchema(ErrorOut, 'output') },
    },
    security: [{ bearer: [] }],
    paths,
  };
}
