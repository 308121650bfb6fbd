import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { principal, requireAccountAccess, requireAdmin } from './auth';
import { ApiError, fieldErrors, type FieldError } from './errors';
import type { RateLimits } from './rateLimits';
import { IdParam } from './schemas';

/**
 * A route declared once: its schemas validate requests at run time and describe the route in
 * the OpenAPI document, so the two can never disagree.
 */
export interface RouteSpec<B extends z.ZodType | undefined, Q extends z.ZodType | undefined> {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  /** Stable name of the operation in the OpenAPI document (and in generated clients). */
  operationId: string;
  summary: string;
  tag: string;
  /**
   * Who may call it. `account`: an account key (or portal link), or the admin token acting for
   * an account named with `?accountId=` (documented automatically, with its 400 and 404).
   */
  auth: 'admin' | 'account' | 'any' | 'none';
  body?: B;
  query?: Q;
  /** Success status and body schema (none for 204). */
  response: { status: number; schema?: z.ZodType; description?: string; headers?: Record<string, { description: string; schema: Record<string, unknown> }> };
  /**
   * Statuses the handler itself answers besides those the document derives from the
   * declaration (401, 403 for admin routes, 400/413/415 for bodies, 400 for queries and
   * `?accountId=`, 404 for path ids and acting accounts).
   */
  errors?: number[];
  /**
   * `send`: the route makes the service POST on demand, so an account's credentials also take from
   * its RATE_LIMIT_SEND budget (the admin token does not).
   */
  limit?: 'send';
  /**
   * Checks of the raw body that need I/O (e.g. DNS for a URL), given the schema's field errors
   * so far: their errors are answered together with the schema's, so one 400 names every bad field.
   */
  check?: (raw: unknown, schemaErrors: FieldError[]) => Promise<FieldError[]>;
  /** A realistic request body and success response for the document (checked against the schemas by a unit test). */
  example: { body?: z.input<NonNullable<B>>; response?: unknown; params?: Record<string, string> };
}

type Parsed<T> = T extends z.ZodType ? z.output<T> : undefined;

export const registry: RouteSpec<z.ZodType | undefined, z.ZodType | undefined>[] = [];

export function parseWith<T extends z.ZodType>(schema: T, value: unknown, prefix = ''): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw ApiError.validation(fieldErrors(result.error, prefix));
  return result.data;
}

/** Path parameters (ids): a NUL or an absurd length is a 400 naming the parameter, never a database error. */
function checkParams(params: Record<string, string> | undefined): void {
  const bad = Object.entries(params ?? {}).flatMap(([name, value]) => {
    const r = IdParam.safeParse(value);
    return r.success ? [] : r.error.issues.map((i) => ({ path: `path.${name}`, message: i.message }));
  });
  if (bad.length) throw ApiError.validation(bad);
}

async function parseBody<T extends z.ZodType>(spec: RouteSpec<T, z.ZodType | undefined>, raw: unknown): Promise<z.output<T>> {
  const result = spec.body!.safeParse(raw);
  const errors = result.success ? [] : fieldErrors(result.error);
  if (spec.check) errors.push(...(await spec.check(raw, errors)));
  if (errors.length) throw ApiError.validation(errors);
  return result.data as z.output<T>;
}

export function defineRoute<B extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined>(
  router: Router,
  spec: RouteSpec<B, Q>,
  handler: (ctx: Context, input: { body: Parsed<B>; query: Parsed<Q> }) => Promise<unknown>,
): void {
  if (!registry.some((r) => r.method === spec.method && r.path === spec.path)) registry.push(spec as unknown as RouteSpec<z.ZodType | undefined, z.ZodType | undefined>);
  router[spec.method](spec.path, async (ctx) => {
    if (spec.auth === 'admin')
      requireAdmin(ctx); // before validation: an account key learns nothing about admin routes
    else if (spec.auth !== 'none') requireAccountAccess(ctx, spec.method);
    const p = principal(ctx);
    if (spec.limit === 'send' && p?.kind === 'account') await (ctx.state.rateLimits as RateLimits | undefined)?.take(ctx, 'send', p.accountId);
    checkParams(ctx.params);
    // No body at all reads as `{}`; any JSON value that was sent (null, [], "x") is validated as sent.
    const body = (
      spec.body ? await parseBody(spec as unknown as RouteSpec<z.ZodType, z.ZodType | undefined>, ctx.state.body === undefined ? {} : ctx.state.body) : undefined
    ) as Parsed<B>;
    const query = (spec.query ? parseWith(spec.query, ctx.query, 'query') : undefined) as Parsed<Q>;
    const out = await handler(ctx, { body, query });
    ctx.status = spec.response.status;
    if (spec.response.status !== 204) ctx.body = out;
  });
}
