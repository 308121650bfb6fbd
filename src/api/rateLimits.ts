import type { Context } from 'koa';
import { isIPv6 } from 'node:net';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config, RateLimitSpec } from '../config';
import type { Queryable } from '../db/database';
import { formatDuration } from '../domain/duration';
import { ApiError } from './errors';

/**
 * The API's abuse limits (README "Abuse limits"): fixed-window counters from rate-limiter-flexible,
 * kept in the `rate_limits` table on a real Postgres so that every API process counts against
 * the same budget, and in memory on the embedded database (one process by construction).
 *
 * - `api`: requests per credential (API key, portal link, metrics token);
 * - `admin`: requests by the admin token (off by default: the platform publishes at high rates);
 * - `send`: per account, the routes that make the service POST on demand (test, resend, retry, recover);
 * - `authFailures`: 401s per source address; over it the address gets 429 for everything.
 */
export type Bucket = 'api' | 'admin' | 'send' | 'authFailures';

const SETTING: Record<Bucket, keyof Config> = { api: 'RATE_LIMIT_API', admin: 'RATE_LIMIT_ADMIN', send: 'RATE_LIMIT_SEND', authFailures: 'RATE_LIMIT_AUTH_FAILURES' };
const WHAT: Record<Bucket, string> = {
  api: 'requests with this credential',
  admin: 'requests with the admin token',
  send: 'test events, resends and retries for this account',
  authFailures: 'failed authentications from this address',
};

/** rate-limiter-flexible's Postgres store speaks node-postgres' `query({ text, values })`; our Queryable gives rows. */
function pgStore(db: Queryable) {
  return {
    query: async (q: { text: string; values?: unknown[] }) => {
      const rows = await db.query(q.text, q.values ?? []);
      return { rows, rowCount: rows.length };
    },
  };
}

export class RateLimits {
  private readonly limiters = new Map<Bucket, { limiter: RateLimiterAbstract; spec: RateLimitSpec }>();
  /** Addresses over their authentication-failure budget, as this process last saw it: until when (ms). */
  private readonly blockedAddresses = new Map<string, number>();

  constructor(
    private readonly cfg: Config,
    /** A real Postgres shares the counters between processes; undefined (the embedded database: one process) keeps them in memory. */
    shared?: Queryable,
  ) {
    for (const bucket of Object.keys(SETTING) as Bucket[]) {
      const spec = cfg[SETTING[bucket]] as RateLimitSpec | null | undefined;
      if (!spec) continue;
      const opts = { keyPrefix: `rl_${bucket}`, points: spec.points, duration: spec.windowSeconds };
      const memory = new RateLimiterMemory(opts);
      const limiter = shared
        ? new RateLimiterPostgres({
            ...opts,
            storeClient: pgStore(shared),
            storeType: 'pool',
            tableName: 'rate_limits',
            tableCreated: true, // migration 12
            // A key over its budget is refused from memory until its window ends: an abuser costs no more writes.
            inMemoryBlockOnConsumed: spec.points + 1,
            // The database failing must not fail every request on top: count in this process meanwhile.
            insuranceLimiter: memory,
          })
        : memory;
      this.limiters.set(bucket, { limiter, spec });
    }
  }

  /** Takes one request from `bucket` for `key`: sets the RateLimit-* headers, or throws 429. */
  async take(ctx: Context, bucket: Bucket, key: string): Promise<void> {
    const entry = this.limiters.get(bucket);
    if (!entry) return;
    let res: RateLimiterRes;
    let allowed = true;
    try {
      res = await entry.limiter.consume(key);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      res = err;
      allowed = false;
    }
    const headers = rateLimitHeaders(entry.spec, res.remainingPoints, res.msBeforeNext);
    if (allowed) {
      ctx.set(headers);
      return;
    }
    throw tooMany(bucket, entry.spec, res.msBeforeNext, headers);
  }

  /** Before authenticating: an address over its failure budget is refused whatever it sends. */
  refuseBlockedAddress(ctx: Context): void {
    const entry = this.limiters.get('authFailures');
    if (!entry) return;
    const address = sourceAddress(ctx, this.cfg.TRUSTED_PROXY_HOPS);
    const until = this.blockedAddresses.get(address);
    if (until === undefined) return;
    const ms = until - Date.now();
    if (ms <= 0) {
      this.blockedAddresses.delete(address);
      return;
    }
    throw tooMany('authFailures', entry.spec, ms, rateLimitHeaders(entry.spec, 0, ms));
  }

  /** After a 401: counts it against the source address; the one over the budget becomes a 429. */
  async authFailed(ctx: Context): Promise<void> {
    const address = sourceAddress(ctx, this.cfg.TRUSTED_PROXY_HOPS);
    try {
      await this.take(ctx, 'authFailures', address);
    } catch (err) {
      if (err instanceof ApiError && err.status === 429) {
        if (this.blockedAddresses.size > 10_000) this.prune();
        this.blockedAddresses.set(address, Date.now() + Number(err.headers?.['Retry-After'] ?? 1) * 1000);
      }
      throw err;
    }
    // A 401 says nothing about budgets: the headers are for the limited requests only.
    for (const h of ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'RateLimit-Policy']) ctx.remove(h);
  }

  private prune(): void {
    const now = Date.now();
    for (const [address, until] of this.blockedAddresses) if (until <= now) this.blockedAddresses.delete(address);
  }
}

function rateLimitHeaders(spec: RateLimitSpec, remaining: number, msBeforeNext: number): Record<string, string> {
  return {
    'RateLimit-Limit': String(spec.points),
    'RateLimit-Remaining': String(Math.max(0, remaining)),
    'RateLimit-Reset': String(Math.max(0, Math.ceil(msBeforeNext / 1000))),
    'RateLimit-Policy': `${spec.points};w=${spec.windowSeconds}`,
  };
}

function tooMany(bucket: Bucket, spec: RateLimitSpec, msBeforeNext: number, headers: Record<string, string>): ApiError {
  const retryAfter = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return new ApiError(
    429,
    'rate_limited',
    `Too many ${WHAT[bucket]}: at most ${spec.points} per ${formatDuration(spec.windowSeconds * 1000)} (${SETTING[bucket]}). Retry in ${retryAfter} s.`,
    undefined,
    { ...headers, 'RateLimit-Remaining': '0', 'Retry-After': String(retryAfter) },
  );
}

/**
 * The address a request came from: the TCP peer, or with `hops` trusted proxies in front the
 * X-Forwarded-For entry that many from the right. IPv6 is cut to its /64 (one host's share).
 */
export function sourceAddress(ctx: Pick<Context, 'get' | 'socket'>, hops: number): string {
  const peer = ctx.socket.remoteAddress ?? 'unknown';
  let address = peer;
  if (hops > 0) {
    const chain = [
      ...ctx
        .get('x-forwarded-for')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      peer,
    ];
    address = chain[Math.max(0, chain.length - 1 - hops)];
  }
  return addressKey(address);
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; IPv6 → its /64 prefix (`2001:db8:0:1::/64`); anything else as is. */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  const bare = address.replace(/%.*$/, '');
  if (!isIPv6(bare)) return address;
  const [head, tail] = bare.split('::');
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const full = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return `${full
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
