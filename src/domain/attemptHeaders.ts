/**
 * The headers of an attempt as the delivery log keeps them (issue 15, as Svix's and Stripe's
 * dashboards show them): the request's, with the endpoint's custom header values redacted, and a
 * bounded subset of the response's, without cookies.
 */

/**
 * Custom header names whose values are kept as sent: they describe the content the receiver
 * wants, never who the caller is. Every other custom value may be a credential (an
 * `Authorization` or `X-Api-Key` for the receiver's gateway) and is redacted.
 */
export const HARMLESS_CUSTOM_HEADERS = ['accept', 'accept-language', 'accept-charset', 'cache-control', 'pragma'];

export const REDACTED = '••••';
/** Below this length a value is hidden entirely: its last 4 characters would be a large part of it. */
export const REDACT_SHOW_TAIL_FROM = 16;

/** `••••` and the last 4 characters of a long value (enough to tell two tokens apart), `••••` alone for a short one. */
export function redactHeaderValue(value: string): string {
  return value.length >= REDACT_SHOW_TAIL_FROM ? `${REDACTED}${value.slice(-4)}` : REDACTED;
}

/**
 * The request headers of an attempt as recorded: `sent` is what went out (the custom headers
 * that survived requestHeaders, then the service's), `service` the service's own (content type,
 * user agent, signature headers: not secrets, the signatures are HMACs of the payload), kept
 * as they are; custom values are redacted unless harmless. `content-length` is what the sender
 * adds; Node adds `Host` and `Connection`, which are not recorded.
 */
export function recordedRequestHeaders(sent: Record<string, string>, service: Record<string, string>, bodyBytes: number): Record<string, string> {
  const serviceNames = new Set(Object.keys(service).map((n) => n.toLowerCase()));
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(sent)) {
    const lower = name.toLowerCase();
    out[name] = serviceNames.has(lower) || HARMLESS_CUSTOM_HEADERS.includes(lower) ? value : redactHeaderValue(value);
  }
  out['content-length'] = String(bodyBytes);
  return out;
}

/** How much of a response's headers the log keeps (like RESPONSE_BODY_CAPTURE_BYTES for the body). */
export const MAX_RESPONSE_HEADERS = 30;
export const MAX_RESPONSE_HEADER_VALUE_CHARS = 256;
/** Names and values together, in characters. */
export const MAX_RESPONSE_HEADERS_CHARS = 4_096;
/** Never kept: a receiver's session cookies are credentials. */
export const DROPPED_RESPONSE_HEADERS = ['set-cookie', 'set-cookie2'];

/**
 * The response headers kept in the log, in the order received (names lower-cased, repeated
 * headers joined with ", " as Node does): at most MAX_RESPONSE_HEADERS, each value cut to
 * MAX_RESPONSE_HEADER_VALUE_CHARS (ending in "…" when cut), and the first headers that fit
 * MAX_RESPONSE_HEADERS_CHARS in all; no cookies. `raw` is Node's `rawHeaders` (name, value, …).
 */
export function capturedResponseHeaders(raw: readonly string[]): Record<string, string> {
  const merged = new Map<string, string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (DROPPED_RESPONSE_HEADERS.includes(name) || name === '__proto__') continue;
    // NUL cannot be stored in jsonb (and no valid header has it).
    const v = raw[i + 1].replaceAll('\u0000', '');
    const prev = merged.get(name);
    merged.set(name, prev === undefined ? v : `${prev}, ${v}`);
  }
  const out: Record<string, string> = {};
  let kept = 0;
  let chars = 0;
  for (const [name, full] of merged) {
    if (kept >= MAX_RESPONSE_HEADERS) break;
    const value = full.length > MAX_RESPONSE_HEADER_VALUE_CHARS ? `${full.slice(0, MAX_RESPONSE_HEADER_VALUE_CHARS - 1)}…` : full;
    if (chars + name.length + value.length > MAX_RESPONSE_HEADERS_CHARS) break;
    out[name] = value;
    kept++;
    chars += name.length + value.length;
  }
  return out;
}
