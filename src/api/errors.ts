import type { Middleware } from 'koa';
import type { z } from 'zod';
import type { Logger } from '../logger';

export interface FieldError {
  path: string;
  message: string;
}

/** The one API error: HTTP status, stable snake_case code, a human sentence, and bad fields. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly errors?: FieldError[],
    /** Response headers that go with the error (Retry-After on a 429). */
    readonly headers?: Record<string, string>,
  ) {
    super(detail);
  }

  static notFound(what: string): ApiError {
    return new ApiError(404, 'not_found', `${what} not found`);
  }

  static validation(errors: FieldError[]): ApiError {
    return new ApiError(400, 'validation_failed', `The request has ${errors.length} invalid field${errors.length === 1 ? '' : 's'}.`, errors);
  }

  static planRequired(): ApiError {
    return new ApiError(402, 'plan_required', 'Webhooks are a paid-plan feature; upgrade the account to use them.');
  }
}

export function fieldErrors(error: z.ZodError, prefix = ''): FieldError[] {
  return error.issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter(Boolean).join('.') || '(body)',
    message: issue.message,
  }));
}

/** Maps thrown errors to the documented body; unknown errors are logged and answered with a bare 500. */
export function errorMiddleware(log: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if ((ctx.status === 405 || ctx.status === 501) && !ctx.body) {
        // The routers' allowedMethods() found the path but not the method (501 for methods no
        // route implements, such as TRACE): one JSON answer for both, with its Allow header.
        const allow = ctx.response.get('Allow');
        if (!allow) throw new ApiError(404, 'not_found', `No route for ${ctx.method} ${ctx.path}`);
        throw new ApiError(405, 'method_not_allowed', `${ctx.method} is not allowed on ${ctx.path}; allowed: ${allow}.`);
      }
      if (ctx.status === 404 && ctx.body === undefined) throw new ApiError(404, 'not_found', `No route for ${ctx.method} ${ctx.path}`);
    } catch (err) {
      if (err instanceof ApiError) {
        ctx.status = err.status;
        if (err.headers) ctx.set(err.headers);
        ctx.body = { code: err.code, detail: err.detail, ...(err.errors ? { errors: err.errors } : {}) };
        return;
      }
      ((ctx.state.log as Logger | undefined) ?? log).error('api.unhandled_error', {
        method: ctx.method,
        path: ctx.path,
        error: (err as Error).message,
        stack: (err as Error).stack,
      });
      ctx.status = 500;
      ctx.body = { code: 'internal_error', detail: 'Internal server error.' };
    }
  };
}
