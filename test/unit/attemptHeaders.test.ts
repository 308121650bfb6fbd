import {
  capturedResponseHeaders,
  MAX_RESPONSE_HEADER_VALUE_CHARS,
  MAX_RESPONSE_HEADERS,
  MAX_RESPONSE_HEADERS_CHARS,
  recordedRequestHeaders,
  redactHeaderValue,
} from '../../src/domain/attemptHeaders';
import { requestHeaders } from '../../src/domain/customHeaders';

test('when an attempt is recorded, then the service headers stay as sent and custom values are redacted unless harmless', () => {
  const service = { 'content-type': 'application/json', 'user-agent': 'rr-webhooks/0.1', 'webhook-id': 'dlv_1', 'webhook-signature': 'v1,abc=', 'x-rr-signature': 'ff00' };
  const sent = requestHeaders({ Authorization: 'Bearer gw_s3cr3t_7Hq2xY', 'X-Tenant': 'acme', Accept: 'application/json', 'Content-Type': 'text/plain' }, service);
  expect(recordedRequestHeaders(sent, service, 42)).toEqual({
    Authorization: '••••q2xY',
    'X-Tenant': '••••',
    Accept: 'application/json',
    ...service,
    'content-length': '42',
  });
});

test('when a value is redacted, then a long one keeps its last 4 characters and a short one nothing', () => {
  expect(redactHeaderValue('Bearer gw_s3cr3t_7Hq2xY')).toBe('••••q2xY');
  expect(redactHeaderValue('0123456789abcdef')).toBe('••••cdef');
  expect(redactHeaderValue('0123456789abcde')).toBe('••••');
  expect(redactHeaderValue('')).toBe('••••');
});

test('when a response has cookies, repeated, long or many headers, then the log keeps a bounded subset without cookies', () => {
  expect(capturedResponseHeaders(['Content-Type', 'text/plain', 'Set-Cookie', 'sid=1', 'set-cookie2', 'x=1', 'Vary', 'Accept', 'vary', 'Origin'])).toEqual({
    'content-type': 'text/plain',
    vary: 'Accept, Origin',
  });

  const long = capturedResponseHeaders(['X-Long', 'y'.repeat(1_000)]);
  expect(long['x-long']).toHaveLength(MAX_RESPONSE_HEADER_VALUE_CHARS);
  expect(long['x-long'].endsWith('…')).toBe(true);

  const many = capturedResponseHeaders(Array.from({ length: 50 }, (_, i) => [`X-H${i}`, String(i)]).flat());
  expect(Object.keys(many)).toHaveLength(MAX_RESPONSE_HEADERS);
  expect(Object.keys(many)[0]).toBe('x-h0');

  const big = capturedResponseHeaders(Array.from({ length: 29 }, (_, i) => [`X-Big${i}`, 'z'.repeat(300)]).flat());
  const chars = Object.entries(big).reduce((n, [k, v]) => n + k.length + v.length, 0);
  expect(chars).toBeLessThanOrEqual(MAX_RESPONSE_HEADERS_CHARS);
  expect(Object.keys(big).length).toBe(15); // 15 × (6 or 7 + 256) fit in 4,096, a 16th does not

  expect(capturedResponseHeaders(['X-Nul', 'a\u0000b', '__proto__', 'x'])).toEqual({ 'x-nul': 'ab' });
  expect(Object.getPrototypeOf(capturedResponseHeaders(['__proto__', 'x']))).toBe(Object.prototype);
});
