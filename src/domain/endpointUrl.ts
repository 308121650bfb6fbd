import { urlProblem } from './destinationPolicy';

/**
 * What an endpoint URL is stored and shown as: the WHATWG-normalised `href` of what the customer
 * typed, with surrounding whitespace trimmed. A URL parser silently drops tabs and newlines,
 * reads `\` as `/` and folds full-width letters into ASCII, so a URL containing those (or any non-ASCII host) would be
 * stored as something other than what it looks like (`http://127.0.0.1\@evil.example/` goes to
 * 127.0.0.1): those are refused instead of being "fixed".
 */
export function normaliseEndpointUrl(typed: string): { href: string } | { problem: string } {
  const raw = typed.replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, '');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(raw)) return { problem: 'must not contain control characters (tabs, line breaks)' };
  if (/\s/u.test(raw)) return { problem: 'must not contain spaces; percent-encode them as %20' };
  if (raw.includes('\\')) return { problem: 'must not contain backslashes (URL parsers read them as "/", so the URL would not go where it seems to)' };
  const problem = urlProblem(raw);
  if (problem) return { problem };
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(raw)?.[1] ?? '';
  // Full-width and other look-alike letters would be folded into ASCII by the parser.
  if (/[^\x21-\x7e]/.test(authority)) {
    return { problem: 'the host must be written in ASCII; write an internationalised domain name in its punycode (xn--…) form' };
  }
  return { href: new URL(raw).href };
}
