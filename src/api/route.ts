import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { requireAdmin } from './auth';
import { ApiError, fieldErrors } from './errors';

/**
 * A route declared once: its schemas validate requests at run time and describe the route in
 * the OpenAPI document, so the two can never disagree.
 */
export interface RouteSpec<B extends z.ZodType | undefined, Q extends z.ZodType | undefined> {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  summary: string;
  tag: string;
  auth: 'admin' | 'account' | 'any' | 'none';
  body?: B;
  query?: Q;
  /** Success status and body schema (none for 204). */
  response: { status: number; schema?: z.ZodType; description?: string };
  /** Error statuses this route documents besides 401/400. */
  errors?: number[];
}

type Parsed<T> = T extends z.ZodType ? z.output<T> : undefined;

export const registry: RouteSpec<z.ZodType | undefined, z.ZodType | undefined>[] = [];

export function parseWith<T extends z.ZodType>(schema: T, value: unknown, prefix = ''): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw ApiError.validation(fieldErrors(result.error, prefix));
  return result.data;
}

export function defineRoute<B extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined>(
  router: Router,
  spec: RouteSpec<B, Q>,
  handler: (ctx: Context, input: { body: Parsed<B>; query: Parsed<Q> }) => Promise<unknown>,
): void {
  if (!registry.some((r) => r.method === spec.method && r.path === spec.path)) registry.push(spec as RouteSpec<z.ZodType | undefined, z.ZodType | undefined>);
  router[spec.method](spec.path, async (ctx) => {
    if (spec.auth === 'admin') requireAdmin(ctx); // before validation: an account key learns nothing about admin routes
    const body = (spec.body ? parseWith(spec.body, ctx.state.body ?? {}) : undefined) as Parsed<B>;
    const query = (spec.query ? parseWith(spec.query, ctx.query, 'query') : undefined) as Parsed<Q>;
    const out = await handler(ctx, { body, query });
    ctx.status = spec.response.status;
    if (spec.response.status !== 204) ctx.body = out;
  });
}

export const IdParam = z.string().min(1).max(64);
