import { z } from 'zod';
import { parseDuration } from './domain/duration';
import { parseServerSettings, RESERVED_SERVER_SETTINGS, reservedServerSettings } from './domain/postgresSettings';
import { parseKeyList } from './domain/secretBox';

/**
 * Every setting of the service: environment name, default, description. Parsed once at
 * start-up; a bad value stops the process with a message naming the variable.
 * `embedded` defaults apply to `npm start` (one machine, loopback receivers welcome).
 */
const duration = (name: string) =>
  z.string().transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `${name} must be a duration such as 15s, 5m, 12h or 3d` });
      return z.NEVER;
    }
    return ms;
  });
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v));
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const keyList = z.string().transform((v, ctx) => {
  const keys = parseKeyList(v);
  if (!keys) {
    ctx.addIssue({ code: 'custom', message: 'SECRET_ENCRYPTION_KEYS must be comma-separated base64 keys of 32 bytes each, newest first (new key: openssl rand -base64 32)' });
    return z.NEVER;
  }
  return keys;
});
/** A comma-separated setting: its entries, trimmed, empty ones dropped. */
const commaList = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
const cidrList = commaList;
/** A rate limit: `N/window` (100/1s, 30/1m: at most N in each fixed window of whole seconds), or `off`. */
export interface RateLimitSpec {
  points: number;
  windowSeconds: number;
}
const rateLimit = (name: string) =>
  z.string().transform((v, ctx): RateLimitSpec | null => {
    if (/^\s*off\s*$/i.test(v)) return null;
    const m = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(v);
    const ms = m ? parseDuration(m[2]) : undefined;
    const points = m ? Number(m[1]) : 0;
    if (!m || ms === undefined || ms < 1000 || ms % 1000 !== 0 || ms > 86_400_000 || points < 1 || points > 1_000_000_000) {
      ctx.addIssue({ code: 'custom', message: `${name} must be off or N/window with N from 1 and a window of whole seconds up to 1d, such as 100/1s or 30/1m` });
      return z.NEVER;
    }
    return { points, windowSeconds: ms / 1000 };
  });

interface Setting {
  schema: z.ZodType;
  default?: string;
  embeddedDefault?: string;
  /** An explicitly set empty value is that value, not "unset" (the default does not apply). */
  emptyIsValue?: boolean;
  /** Key material: a bad value is not echoed in the error (start-up errors end up in logs). */
  secret?: boolean;
  description: string;
}

export const SETTINGS = {
  PORT: { schema: int(0, 65535), default: '3000', description: 'Port the REST API listens on.' },
  HOST: { schema: z.string().min(1), default: '0.0.0.0', embeddedDefault: '127.0.0.1', description: 'Interface the REST API binds to.' },
  HTTP_KEEP_ALIVE_TIMEOUT: {
    schema: duration('HTTP_KEEP_ALIVE_TIMEOUT'),
    default: '65s',
    description:
      "How long the API keeps an idle keep-alive connection open (Node's default is 5s). Keep it above the idle timeout of a load balancer in front (AWS ALB: 60s), which otherwise reuses a connection the API has just closed and answers 502.",
  },
  PUBLIC_URL: {
    schema: z.string().url().optional(),
    description:
      "Base URL of the API as users reach it, used in portal links. Unset: http:// and the address and port the API listens on (with a wildcard HOST such as 0.0.0.0 or ::, the machine's own address the request arrived on); never the request's Host or X-Forwarded-* headers. Set it behind a proxy or TLS terminator.",
  },
  PORTAL_LINK_TTL: { schema: duration('PORTAL_LINK_TTL'), default: '1h', description: 'Default lifetime of a portal link (ttlSeconds overrides it per link).' },
  PORTAL_LINK_MAX_TTL: {
    schema: duration('PORTAL_LINK_MAX_TTL'),
    default: '24h',
    description: "Longest lifetime a portal link gets; a longer ttlSeconds is shortened to it (the answer's expiresAt says so).",
  },
  PORTAL_SIGNING_KEYS: {
    schema: commaList.pipe(z.array(z.string().min(32, 'each key must be at least 32 characters'))),
    default: '',
    description:
      'Keys that sign portal links, comma-separated, newest first: the newest signs, all verify (rotate by adding a new key in front, drop the old one once its links expired). Embedded default: generated once into DATA_DIR/portal-key. Unset otherwise: derived from ADMIN_TOKEN (rotating the admin token then ends every link).',
  },
  ADMIN_TOKENS_PREVIOUS: {
    schema: commaList.pipe(z.array(z.string().min(16, 'each token must be at least 16 characters'))),
    default: '',
    description: 'Earlier admin tokens still accepted while the platform switches to a new ADMIN_TOKEN (comma-separated); remove them when the switch is done.',
  },
  METRICS_TOKEN: {
    schema: z.string().min(16, 'must be at least 16 characters').optional(),
    description: 'A bearer token that may read /metrics and nothing else, for a scraper that must not hold the admin token (the admin token works too).',
  },
  DATA_DIR: {
    schema: z.string().min(1),
    default: './.data',
    description:
      'Folder for embedded state: the embedded Postgres cluster (postgres/) or PGlite database (pg/), Temporal dev-server store, generated admin token and secret-encryption key.',
  },
  DATABASE_URL: {
    schema: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must start with postgres://')
      .optional(),
    description: 'Real Postgres connection string. Unset: `npm start` runs its embedded database (EMBEDDED_DATABASE); the separate API and worker processes need it.',
  },
  EMBEDDED_POSTGRES_SETTINGS: {
    schema: z
      .string()
      .regex(/^(\s*[A-Za-z_.]+\s*=[^;]*)(;\s*[A-Za-z_.]+\s*=[^;]*)*;?\s*$/, 'must be name=value pairs separated by ";" (e.g. shared_buffers=64MB;work_mem=8MB)')
      .refine(
        (text) => reservedServerSettings(parseServerSettings(text)).length === 0,
        `may not set ${RESERVED_SERVER_SETTINGS.join(', ')}: the server trusts whoever reaches its private socket`,
      )
      .optional(),
    description:
      'Extra server settings for the embedded Postgres, `name=value` separated by `;` (e.g. `shared_buffers=64MB`), applied over its own (src/db/embeddedPostgres.ts); the socket, listener and authentication files are not among them (it trusts whoever reaches its private socket). Unused with DATABASE_URL or EMBEDDED_DATABASE=pglite.',
  },
  EMBEDDED_DATABASE: {
    schema: z.enum(['postgres', 'pglite']).optional(),
    description:
      '`npm start` without DATABASE_URL: `postgres` runs a PostgreSQL server from the npm-installed binaries with its cluster in DATA_DIR/postgres (Unix socket only, durable commits; as root it runs as its own OS user rr-postgres); `pglite` runs PGlite inside the service process (DATA_DIR/pg). Unset: postgres, unless DATA_DIR holds PGlite data from an earlier version and no Postgres cluster (then pglite, so nothing is left behind).',
  },
  PGLITE_SHARED_BUFFERS: {
    schema: z.string().regex(/^\d+(kB|MB|GB)$/, 'must be a size such as 16MB'),
    default: '16MB',
    description:
      "Embedded PGlite's shared_buffers (Postgres' own default is 128MB): its pages live in the service's WebAssembly memory, so a smaller cache keeps the idle service ~60 MiB smaller; measured with the same throughput and drain rates (README, Performance). Only with EMBEDDED_DATABASE=pglite.",
  },
  DATABASE_ACQUIRE_TIMEOUT: {
    schema: duration('DATABASE_ACQUIRE_TIMEOUT'),
    default: '10s',
    description:
      'Real Postgres: how long a statement waits for a pooled connection (or for a new one to connect) before it fails; 0 = forever. Not applied to embedded PGlite (one in-process connection).',
  },
  DATABASE_STATEMENT_TIMEOUT: {
    schema: duration('DATABASE_STATEMENT_TIMEOUT'),
    default: '15s',
    description:
      "Real Postgres: server-side statement_timeout of the service's statements (migrations excepted); the client also gives up 5 s after it, dropping the connection (a stalled network). 0 = none. A slow database then fails the attempt instead of stretching it past its Temporal timeout. Not applied to embedded PGlite.",
  },
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT: {
    schema: duration('DATABASE_IDLE_IN_TRANSACTION_TIMEOUT'),
    default: '30s',
    description:
      'Real Postgres: idle_in_transaction_session_timeout, so a process that stalls inside a transaction releases its row locks. 0 = none. Not applied to embedded PGlite.',
  },
  DATABASE_PREPARED_STATEMENTS: {
    schema: bool,
    default: 'true',
    description:
      'Real Postgres: prepare each statement once per connection, and run the claim-style statements on connections with plan_cache_mode=force_generic_plan (a startup option; up to 4 more connections per process); planning them anew was most of the server CPU (README, Performance). false: plain statements and no startup options, for a pooler that supports neither (PgBouncer in transaction mode without max_prepared_statements).',
  },
  ADMIN_TOKEN: {
    schema: z.string().min(16, 'must be at least 16 characters').optional(),
    secret: true,
    description: 'Bearer token of the platform (admin). Embedded default: generated once and kept in DATA_DIR/admin-token. Required for the separate api entry point.',
  },
  TEMPORAL_ADDRESS: {
    schema: z.string().min(1).optional(),
    description: 'host:port of a Temporal frontend. Unset in `npm start`: a dev server is started. api/worker default: 127.0.0.1:7233.',
  },
  TEMPORAL_NAMESPACE: { schema: z.string().min(1), default: 'default', description: 'Temporal namespace.' },
  TEMPORAL_TASK_QUEUE: { schema: z.string().min(1), default: 'webhook-deliveries', description: 'Task queue of the delivery workflows and activities.' },
  TEMPORAL_SEARCH_ATTRIBUTES: {
    schema: bool,
    default: 'true',
    description:
      'Tag delivery workflows with the RrAccountId/RrEndpointId/RrEventType/RrDeliveryStatus search attributes (registered at start-up when missing). Set false on a cluster where they cannot be registered.',
  },
  TEMPORAL_FAIRNESS: {
    schema: bool,
    default: 'true',
    description:
      'Fairness between accounts: every workflow is started with its account id as Temporal fairness key (a batch weighted by its size; activities inherit it) and the embedded dev server runs with `matching.enableFairness=true`; an account dispatching more than 200 deliveries/s has its first-attempt batches sent to the bulk lane (`<TEMPORAL_TASK_QUEUE>-bulk`, served by every worker); each API process lets at most 32 acceptances of one account into the database at once. A separate server must enable matching.enableFairness itself (compose and the stack do). false: none of it. Upgrade workers before API processes.',
  },
  TEMPORAL_UI_URL: {
    schema: z.string().url().optional(),
    description: "Base URL of the Temporal Web UI, for links to a delivery's workflow. Set automatically when `npm start` runs the dev server.",
  },
  TEMPORAL_DEV_PORT: { schema: int(1, 65535), default: '7233', description: 'gRPC port of the embedded dev server.' },
  TEMPORAL_UI_PORT: { schema: int(1, 65535), default: '8233', description: 'Web UI port of the embedded dev server.' },
  TEMPORAL_CLI_PATH: {
    schema: z.string().min(1).optional(),
    description:
      'Path of the `temporal` CLI used for the dev server. Default: the pinned binary that `npm start` provisions into .tools/temporal; without it the SDK downloads one (needs internet).',
  },
  TEMPORAL_TLS: {
    schema: bool.optional(),
    description:
      'true: connect to TEMPORAL_ADDRESS over TLS, verifying the server against the system CAs (or TEMPORAL_TLS_CA). Unset: TLS exactly when TEMPORAL_API_KEY, TEMPORAL_TLS_CA or a client certificate is set; false with any of them is refused (an API key or certificate would go out in clear). Never used for the dev server `npm start` starts itself.',
  },
  TEMPORAL_TLS_CA: {
    schema: z.string().min(1).optional(),
    description: "PEM file of the CA that signed the Temporal frontend's certificate (a private CA; Temporal Cloud needs none). Implies TEMPORAL_TLS.",
  },
  TEMPORAL_TLS_CERT: {
    schema: z.string().min(1).optional(),
    description: "PEM file of the client certificate (chain) for mTLS, e.g. a Temporal Cloud namespace's certificate; needs TEMPORAL_TLS_KEY. Implies TEMPORAL_TLS.",
  },
  TEMPORAL_TLS_KEY: {
    schema: z.string().min(1).optional(),
    description: 'PEM file of the private key of TEMPORAL_TLS_CERT. The files are read once at start-up: restart the processes after renewing the certificate.',
  },
  TEMPORAL_TLS_SERVER_NAME: {
    schema: z.string().min(1).optional(),
    description:
      "Name to verify the frontend's certificate against (and send as SNI) instead of the host in TEMPORAL_ADDRESS, e.g. when connecting through a load balancer or by IP.",
  },
  TEMPORAL_API_KEY: {
    schema: z.string().min(1).optional(),
    secret: true,
    description:
      'API key for Temporal Cloud (sent as `Authorization: Bearer …`); implies TEMPORAL_TLS. With it, TEMPORAL_ADDRESS is the namespace or regional endpoint and TEMPORAL_NAMESPACE is `<namespace>.<account>`.',
  },
  WORKFLOW_BUNDLE: {
    schema: z.string().min(1).optional(),
    description:
      'Path of a pre-built workflow bundle for the worker. Unset: dist/workflow-bundle.js when running the compiled code (`npm run build`, the image), else the workflow code is bundled with webpack at every worker start (tsx: `npm run dev`, `npm run worker`).',
  },
  RETRY_INITIAL_INTERVAL: { schema: duration('RETRY_INITIAL_INTERVAL'), default: '10s', description: 'Delay before the first retry.' },
  RETRY_BACKOFF_COEFFICIENT: { schema: z.coerce.number().min(1).max(10), default: '3', description: 'Each retry delay is the previous one times this.' },
  RETRY_MAXIMUM_INTERVAL: { schema: duration('RETRY_MAXIMUM_INTERVAL'), default: '12h', description: 'Longest delay between two attempts.' },
  RETRY_JITTER: { schema: z.coerce.number().min(0).max(0.5), default: '0.2', description: 'Random spread of each delay, as a fraction (0.2 = ±20%).' },
  DELIVERY_WINDOW: { schema: duration('DELIVERY_WINDOW'), default: '3d', description: 'How long a delivery is retried before it is marked undeliverable.' },
  ATTEMPT_TIMEOUT: { schema: duration('ATTEMPT_TIMEOUT'), default: '15s', description: 'Per-attempt HTTP timeout (connect + response).' },
  MAX_PAYLOAD_BYTES: { schema: int(1024, 10 * 1024 * 1024), default: '262144', description: 'Largest accepted request body / webhook payload, in bytes (larger → 413).' },
  RESPONSE_BODY_CAPTURE_BYTES: { schema: int(0, 65536), default: '4096', description: 'How much of each receiver response body is kept in the delivery log.' },
  DESTINATION_ALLOW_CIDRS: {
    schema: cidrList,
    default: '',
    embeddedDefault: '127.0.0.0/8,::1/128',
    emptyIsValue: true,
    description:
      'Comma-separated private subnets that endpoints may target anyway (plain http is allowed for them too). Everything private is refused otherwise. Set but empty (`DESTINATION_ALLOW_CIDRS=`) = an empty list, also under `npm start`.',
  },
  ALLOW_HTTP: { schema: bool, default: 'false', description: 'Allow plain http:// endpoint URLs for public hosts (development only).' },
  SECRET_ENCRYPTION_KEYS: {
    schema: keyList.optional(),
    secret: true,
    description:
      'Key ring that encrypts endpoint signing secrets at rest (AES-256-GCM): comma-separated base64 keys of 32 bytes (`openssl rand -base64 32`), newest first. The newest encrypts, every listed key decrypts; after adding a key run `npm run secrets:reencrypt`, then drop the old one. Embedded default: generated once and kept in DATA_DIR/secret-key. Required for the separate api and worker entry points unless SECRET_ENCRYPTION=off.',
  },
  SECRET_ENCRYPTION: {
    schema: z.enum(['on', 'off']),
    default: 'on',
    description:
      'off: when no key is configured (SECRET_ENCRYPTION_KEYS unset, no DATA_DIR/secret-key), start anyway and store new signing secrets in plaintext instead of failing (api/worker) or generating a key (`npm start`). Not for production.',
  },
  SECRET_ROTATION_OVERLAP: { schema: duration('SECRET_ROTATION_OVERLAP'), default: '24h', description: 'How long the previous signing secret keeps signing after a rotation.' },
  AUTO_DISABLE_AFTER: {
    schema: duration('AUTO_DISABLE_AFTER'),
    default: '5d',
    description: 'An endpoint whose every attempt has failed for this long is disabled (with a reason); its pending deliveries end cancelled.',
  },
  CIRCUIT_OPEN_AFTER: {
    schema: int(1, 100_000),
    default: '5',
    description:
      "Consecutive failed attempts to an endpoint (429 not counted) after which its circuit opens: its pending deliveries are held, not sent, and one probe at a time on the endpoint's own back-off decides when it is back.",
  },
  CIRCUIT_PROBE_MAX_INTERVAL: {
    schema: duration('CIRCUIT_PROBE_MAX_INTERVAL'),
    default: '12h',
    description:
      "Longest wait between two probes of an open circuit. Probes follow the retry schedule anchored at the start of the endpoint's failure streak (10s, 30s, 1m30s, …) up to this; it bounds how late a recovered endpoint is noticed. The default keeps the literal retry schedule (a lone failing delivery is attempted exactly as without the breaker); 1h notices a recovery within the hour at the cost of up to 24 requests a day to a dead endpoint.",
  },
  RETENTION: { schema: duration('RETENTION'), default: '30d', description: 'Attempt logs and payloads older than this are purged (delivery rows and statuses stay).' },
  RETENTION_PURGE_INTERVAL: {
    schema: duration('RETENTION_PURGE_INTERVAL'),
    default: '1h',
    description: 'How often the retention Schedule runs the purge (in batches of 1,000 rows).',
  },
  DISPATCH_BATCH_WINDOW: {
    schema: duration('DISPATCH_BATCH_WINDOW'),
    default: '25ms',
    description:
      "How long a busy account's newly published deliveries are gathered into one first-attempt batch workflow; an account with no batch started within the window starts its batch at once (0 = one workflow per delivery).",
  },
  DISPATCH_INLINE: {
    schema: bool,
    default: 'true',
    description:
      '`npm start` (API and worker in one process), and a separate worker for the deliveries it takes from the outbox (DISPATCH_OUTBOX): first attempts are sent straight from the process without a first-attempt batch workflow, 12 batches at once (8 per account; a batch of an account at its share waits in the process up to 1 s, up to 2,000 waiting deliveries per account and 10,000 in all, otherwise it runs in a batch workflow; past 1,000 waiting deliveries of an account, its publishes answer once fewer wait); a delivery that must be retried continues in its own workflow as always. false: every first attempt runs in a batch workflow.',
  },
  DISPATCH_OUTBOX: {
    schema: bool,
    default: 'true',
    description:
      'Separate api and worker processes (DATABASE_URL): the API answers a publish once its deliveries are committed and announces them to the workers (Postgres NOTIFY); a worker takes them (each delivery taken by one worker, for 15 s) and sends their first attempts itself as `npm start` does (DISPATCH_INLINE), without a first-attempt batch workflow; one nobody took (no worker listening) is started by the reconciler after its grace. false: the API starts first-attempt batch workflows.',
  },
  DISPATCH_INLINE_WINDOW: {
    schema: duration('DISPATCH_INLINE_WINDOW'),
    default: '0ms',
    description:
      "DISPATCH_BATCH_WINDOW for first attempts sent straight from the process (DISPATCH_INLINE): such a batch costs a claim and a record, no workflow. 0: an account's new deliveries go on the next turn of the event loop; while its batches fill its share they wait in the process and go together, so batches grow with the load without a window.",
  },
  DISPATCH_BATCH_MAX: { schema: int(1, 1000), default: '100', description: 'Most deliveries in one first-attempt batch; a full batch starts at once.' },
  DISPATCH_RECONCILE_INTERVAL: {
    schema: duration('DISPATCH_RECONCILE_INTERVAL'),
    default: '5s',
    description: 'How often the worker looks for accepted deliveries whose workflow was never started (crash between commit and start).',
  },
  RATE_LIMIT_API: {
    schema: rateLimit('RATE_LIMIT_API'),
    default: '100/1s',
    description:
      'Requests per credential on the API: each account API key, each portal link, and the metrics token has its own budget (`off` = none). Over it: 429 with Retry-After. Shared by every API process on a real Postgres; per process on the embedded database (one process).',
  },
  RATE_LIMIT_SEND: {
    schema: rateLimit('RATE_LIMIT_SEND'),
    default: '30/1m',
    description:
      'Requests per account (all its keys and portal links together) to the routes that make the service POST on demand: test events, resends, retry-now and recover. Counted on top of RATE_LIMIT_API; the admin token is not counted here.',
  },
  RATE_LIMIT_AUTH_FAILURES: {
    schema: rateLimit('RATE_LIMIT_AUTH_FAILURES'),
    default: '30/1m',
    description:
      'Failed authentications (401) per source address (IPv6: per /64). Over it, every request from that address is answered 429 until the window ends, a valid token too, so guessing gets no answer.',
  },
  RATE_LIMIT_ADMIN: {
    schema: rateLimit('RATE_LIMIT_ADMIN'),
    default: 'off',
    description:
      'Requests by the admin token (all ADMIN_TOKENS_PREVIOUS together with it). Off by default: the platform publishes events at thousands a second. Set it (e.g. 20000/1s) to bound a leaked or runaway admin client.',
  },
  TRUSTED_PROXY_HOPS: {
    schema: int(0, 10),
    default: '0',
    description:
      "Reverse proxies in front of the API that append the client's address to X-Forwarded-For: the source address of RATE_LIMIT_AUTH_FAILURES is the entry that many hops from the right. 0: the TCP peer, X-Forwarded-For ignored (behind a proxy every client then shares the proxy's budget).",
  },
  MAX_ENDPOINTS_PER_ACCOUNT: {
    schema: int(0, 1_000_000),
    default: '50',
    description:
      'Most endpoints an account may have (disabled ones count, deleted ones do not); creating one more answers 409 endpoint_limit_reached. Bounds the fan-out of one event. 0 = no cap.',
  },
  DB_PROFILE: {
    schema: bool,
    default: 'false',
    description:
      "Diagnostics for performance work: time every database statement (one at a time) and print the 25 costliest to stderr every 30 s and at exit; on PGlite also each statement's own time on the event loop, free of queueing. Off in production.",
  },
  METRICS_PUBLIC: { schema: bool, default: 'false', description: "Serve the API's /metrics without the admin token (for a scraper on a private network)." },
  WORKER_METRICS_PORT: { schema: int(0, 65535), default: '9464', description: "Port of the separate worker process's /metrics and /healthz (0 = off). Binds to HOST." },
  WORKER_MAX_CACHED_WORKFLOWS: {
    schema: int(0, 100_000),
    default: '500',
    description: 'Workflows a worker keeps in memory between tasks; more are replayed from history when needed. Bounds worker memory during long outages.',
  },
  LOG_LEVEL: { schema: z.enum(['debug', 'info', 'warn', 'error']), default: 'info', description: 'Minimum level of the JSON log lines.' },
  TEMPORAL_METRICS_ADDRESS: {
    schema: z
      .string()
      .regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):\d{1,5}$/, 'must be ip:port (an IP address, not a host name), e.g. 0.0.0.0:9465')
      .optional(),
    description:
      "ip:port where the Temporal SDK's Prometheus exporter serves the worker's temporal_* metrics at /metrics (workflow task failures, schedule-to-start latency, slots, pollers), no auth: bind it to a private interface. Worker and `npm start` only. Unset: off.",
  },
  OTEL_EXPORTER_OTLP_ENDPOINT: {
    schema: z.string().url().optional(),
    description:
      'OpenTelemetry collector base URL (OTLP over HTTP, e.g. http://collector:4318): traces from the publish request through the workflows and activities to the outbound POST are exported there. Unset: tracing off. The other standard OTEL_* variables (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS, OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES, OTEL_SDK_DISABLED) apply as documented by OpenTelemetry.',
  },
  OTEL_SERVICE_NAME: {
    schema: z.string().min(1).optional(),
    description: 'service.name of the exported spans. Unset: rr-webhooks-api, rr-webhooks-worker, or rr-webhooks (`npm start`).',
  },
} satisfies Record<string, Setting>;

type Settings = typeof SETTINGS;
export type Config = Readonly<{ [K in keyof Settings]: z.output<Settings[K]['schema']> }> & { readonly embedded: boolean };

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, opts: { embedded?: boolean } = {}): Config {
  const embedded = opts.embedded ?? false;
  const out: Record<string, unknown> = { embedded };
  const problems: string[] = [];
  for (const [name, s] of Object.entries(SETTINGS) as [string, Setting][]) {
    const set = env[name] !== undefined && (env[name] !== '' || s.emptyIsValue === true);
    const raw = set ? env[name] : embedded && s.embeddedDefault !== undefined ? s.embeddedDefault : s.default;
    const parsed = s.schema.safeParse(raw);
    if (parsed.success) out[name] = parsed.data;
    else problems.push(`${name}=${s.secret ? '(value not shown)' : JSON.stringify(raw)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  if (problems.length) throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  return Object.freeze(out) as Config;
}
