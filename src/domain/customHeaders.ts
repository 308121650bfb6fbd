/**
 * Custom request headers of an endpoint (as Svix offers): added to every attempt, never
 * replacing what the service itself sends. They may carry a receiver's credentials (an
 * `Authorization` for its gateway), so they are sealed at rest like signing secrets and never
 * logged.
 */

/** 10 × (64 + 1024) characters stay well under the 16 KiB of headers many servers accept (Node's default). */
export const MAX_CUSTOM_HEADERS = 10;
export const MAX_HEADER_NAME_CHARS = 64;
export const MAX_HEADER_VALUE_CHARS = 1_024;

/** RFC 7230 `token`: the characters a field name may have. */
export const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/**
 * What Node's HTTP client accepts in a value (visible ASCII, space, tab, Latin-1), i.e. no CR,
 * LF, NUL or other controls; without white space at either end (RFC 7230 trims it).
 */
export const HEADER_VALUE_PATTERN = /^([\x21-\x7e\x80-\xff]([\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?$/;

/**
 * Names the service sets itself (signature, identity, body framing) or that belong to the
 * connection (hop-by-hop, RFC 7230 §6.1) and would change how the request travels.
 */
export const RESERVED_HEADER_NAMES = [
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  'x-rr-signature',
  'content-type',
  'content-length',
  'content-encoding',
  'user-agent',
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
];
/** Prefixes kept for headers the service may add later. */
export const RESERVED_HEADER_PREFIXES = ['webhook-', 'x-rr-'];

export type CustomHeaders = Record<string, string>;

/** Every problem of a header set, each with the path of the header it is about (empty: valid). */
export function customHeaderProblems(headers: CustomHeaders): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const entries = Object.entries(headers);
  if (entries.length > MAX_CUSTOM_HEADERS) problems.push({ path: '', message: `at most ${MAX_CUSTOM_HEADERS} custom headers` });
  const seen = new Set<string>();
  for (const [name, value] of entries) {
    const lower = name.toLowerCase();
    if (name.length === 0 || name.length > MAX_HEADER_NAME_CHARS || !HEADER_NAME_PATTERN.test(name)) {
      problems.push({ path: name, message: `a header name is 1 to ${MAX_HEADER_NAME_CHARS} token characters (letters, digits and !#$%&'*+.^_\`|~-), no spaces or colons` });
    } else if (RESERVED_HEADER_NAMES.includes(lower) || RESERVED_HEADER_PREFIXES.some((p) => lower.startsWith(p))) {
      problems.push({
        path: name,
        message: `"${name}" is set by the service (signature, content or connection headers, and names starting with ${RESERVED_HEADER_PREFIXES.join(' or ')}) and cannot be replaced`,
      });
    } else if (seen.has(lower)) {
      problems.push({ path: name, message: `"${name}" is given twice (header names are case-insensitive)` });
    }
    seen.add(lower);
    if (typeof value !== 'string' || value.length > MAX_HEADER_VALUE_CHARS || !HEADER_VALUE_PATTERN.test(value)) {
      problems.push({
        path: name,
        message: `a header value is at most ${MAX_HEADER_VALUE_CHARS} characters without line breaks, NUL or other control characters (tab is allowed inside), and without white space at either end`,
      });
    }
  }
  return problems;
}

/**
 * The headers of one attempt: the endpoint's custom ones first, then the service's, which win.
 * A stored custom header that the rules above would refuse (rules tightened since) is dropped
 * rather than sent, so nothing here can replace or duplicate a service header.
 */
export function requestHeaders(custom: CustomHeaders | null | undefined, service: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const serviceNames = new Set(Object.keys(service).map((n) => n.toLowerCase()));
  for (const [name, value] of Object.entries(custom ?? {})) {
    const lower = name.toLowerCase();
    if (serviceNames.has(lower) || customHeaderProblems({ [name]: value }).length > 0) continue;
    out[name] = value;
  }
  return { ...out, ...service };
}
