import type { Middleware } from 'koa';
import { ApiError } from './errors';

/**
 * Reads a JSON request body with a hard size limit (413 past it, before parsing anything).
 * The parsed value lands on ctx.state.body; an empty body is `undefined`.
 */
export function jsonBody(maxBytes: number): Middleware {
  return async (ctx, next) => {
    if (!['POST', 'PUT', 'PATCH'].includes(ctx.method)) return next();
    const declared = Number(ctx.get('content-length') || 0);
    if (declared > maxBytes) throw tooLarge(maxBytes);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) throw tooLarge(maxBytes);
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '') {
      ctx.state.body = undefined;
    } else {
      if (!ctx.is('json') && ctx.get('content-type')) throw new ApiError(415, 'unsupported_media_type', 'Send the request body as application/json.');
      try {
        ctx.state.body = JSON.parse(text);
      } catch {
        throw new ApiError(400, 'invalid_json', 'The request body is not valid JSON.');
      }
    }
    return next();
  };
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError(413, 'payload_too_large', `The request body exceeds the limit of ${maxBytes} bytes.`);
}
