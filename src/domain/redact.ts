/**
 * An endpoint URL as it may appear outside the database and the customer's own views (Temporal
 * summaries and histories, logs): scheme and host only. Webhook URLs are often capability URLs,
 * with a secret in the path or query, so the rest is replaced by `…`.
 */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return '(invalid URL)';
  }
  const rest = url.pathname === '/' && !url.search && !url.hash ? '/' : '/…';
  return `${url.protocol}//${url.host}${rest}`;
}
