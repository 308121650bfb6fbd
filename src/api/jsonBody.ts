import type { Middleware } from 'koa';
import { ApiError, type FieldError } from './errors';

/** Deepest nesting of arrays and objects a request body may have (documented in the README). */
export const MAX_JSON_DEPTH = 32;

const utf8 = new TextDecoder('utf-8', { fatal: true }); // a leading BOM is consumed, not refused

/**
 * Reads a JSON request body with a hard size limit (413 past it, before parsing anything).
 * Bytes that are not UTF-8, strings with lone surrogates and nesting deeper than
 * MAX_JSON_DEPTH are refused with a 400 rather than silently repaired (or, for deep nesting,
 * crashing the serialiser later). The parsed value lands on ctx.state.body; an empty body is
 * `undefined`.
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
    let text: string;
    try {
      text = utf8.decode(Buffer.concat(chunks));
    } catch {
      throw new ApiError(400, 'invalid_utf8', 'The request body is not valid UTF-8.');
    }
    if (text === '') {
      // Only no bytes at all is "no body"; white space alone is not JSON and is answered 400 below.
      ctx.state.body = undefined;
    } else {
      if (!ctx.is('json') && ctx.get('content-type')) throw new ApiError(415, 'unsupported_media_type', 'Send the request body as application/json.');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new ApiError(400, 'invalid_json', 'The request body is not valid JSON.');
      }
      const problem = jsonProblem(body);
      if (problem) throw problem;
      ctx.state.body = body;
    }
    return next();
  };
}

/**
 * Walks a parsed body without recursion (a hostile body must not overflow the stack here
 * either): too deep, or strings (keys included) that are not well-formed UTF-16.
 */
export function jsonProblem(root: unknown): ApiError | undefined {
  const bad: FieldError[] = [];
  const stack: { value: unknown; path: string[] }[] = [{ value: root, path: [] }];
  const at = (path: string[]) => path.join('.') || '(body)';
  while (stack.length) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      if (!value.isWellFormed()) bad.push({ path: at(path), message: 'contains a lone UTF-16 surrogate (not valid Unicode text)' });
    } else if (value !== null && typeof value === 'object') {
      if (path.length >= MAX_JSON_DEPTH) {
        return new ApiError(400, 'too_deeply_nested', `The request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels (at ${at(path)}).`);
      }
      for (const [key, child] of Object.entries(value)) {
        if (!key.isWellFormed()) bad.push({ path: at([...path, key]), message: 'the key contains a lone UTF-16 surrogate (not valid Unicode text)' });
        stack.push({ value: child, path: [...path, key] });
      }
    }
  }
  return bad.length ? ApiError.validation(bad) : undefined;
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError(413, 'payload_too_large', `The request body exceeds the limit of ${maxBytes} bytes.`);
}
