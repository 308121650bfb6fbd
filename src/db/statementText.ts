/**
 * A statement's text, built on first use and the very same string ever after. A template literal
 * with interpolations (`${GENERIC_PLAN}…`, the operational-event CTEs) is a new string on every
 * call: each query then flattened and hashed kilobytes of SQL again to find its prepared
 * statement's name (src/db/database.ts), and at 300 deliveries/s those copies were most of what
 * the service's old generation collected: a major GC every 3–4 s, each a cluster of slow
 * deliveries (README, Performance). Lazy, so a text may use constants defined further down.
 */
export function statementText(build: () => string): () => string {
  let text: string | undefined;
  return () => (text ??= build());
}
