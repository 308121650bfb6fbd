import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, type Config } from './config';
import { useSecretKeyRing } from './db/endpointSecrets';
import { keyRing, newKeyBase64, parseKeyList } from './domain/secretBox';
import { createAccount, getAccount } from './db/accounts';
import { openDatabase, type Database } from './db/database';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './db/embeddedPostgres';
import { parseServerSettings } from './domain/postgresSettings';
import { migrate } from './db/migrations';
import { profiled } from './db/queryProfile';
import { PortalKeyRing, portalSigningKey } from './domain/portalToken';
import { DestinationGuard } from './http/destinationGuard';
import { createWebhookSender } from './http/sendWebhook';
import { Gauge, type Registry } from './metrics';
import type { Connection } from '@temporalio/client';
import { deliveriesByStatus, heldByReason, pendingStats } from './db/stats';

/** Shared start-up pieces of the entry points (main, api, worker). `url` overrides DATABASE_URL (the embedded Postgres). */
export async function openAppDatabase(cfg: Config, opts: { url?: string; soleClient?: boolean } = {}): Promise<Database> {
  const db = await openDatabase({
    url: opts.url ?? cfg.DATABASE_URL,
    soleClient: opts.soleClient,
    prepare: cfg.DATABASE_PREPARED_STATEMENTS,
    pgliteDir: join(cfg.DATA_DIR, 'pg'),
    timeouts: { acquireMs: cfg.DATABASE_ACQUIRE_TIMEOUT, statementMs: cfg.DATABASE_STATEMENT_TIMEOUT, idleInTransactionMs: cfg.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT },
    measure: cfg.DB_PROFILE,
    sharedBuffers: cfg.PGLITE_SHARED_BUFFERS,
  });
  await migrate(db);
  return cfg.DB_PROFILE ? profiled(db) : db;
}

/**
 * The database `npm start` (and `npm run secrets:reencrypt`) opens without DATABASE_URL:
 * EMBEDDED_DATABASE, which defaults to the embedded Postgres unless DATA_DIR holds PGlite data of
 * an earlier version and no Postgres cluster (that data is kept in use rather than left behind).
 */
export function embeddedDatabaseKind(cfg: Config): 'postgres' | 'pglite' {
  if (cfg.EMBEDDED_DATABASE) return cfg.EMBEDDED_DATABASE;
  const pgliteData = existsSync(join(cfg.DATA_DIR, 'pg', 'PG_VERSION'));
  const postgresData = existsSync(join(cfg.DATA_DIR, 'postgres', 'PG_VERSION'));
  return pgliteData && !postgresData ? 'pglite' : 'postgres';
}

/** The service's database: DATABASE_URL, else the embedded one (a Postgres server it starts, or PGlite); `where` names it for the start-up summary. */
export async function openServiceDatabase(
  cfg: Config,
  log?: { warn(msg: string, data?: Record<string, unknown>): void },
): Promise<{ db: Database; embeddedPostgres?: EmbeddedPostgres; where: string }> {
  if (cfg.DATABASE_URL) return { db: await openAppDatabase(cfg), where: 'Postgres (DATABASE_URL)' };
  if (embeddedDatabaseKind(cfg) === 'pglite') return { db: await openAppDatabase(cfg), where: `embedded PGlite in ${resolve(cfg.DATA_DIR, 'pg')}` };
  const embeddedPostgres = await startEmbeddedPostgres({
    dataDir: join(cfg.DATA_DIR, 'postgres'),
    settings: parseServerSettings(cfg.EMBEDDED_POSTGRES_SETTINGS),
    onLog: (line) => {
      if (/\b(WARNING|ERROR|FATAL|PANIC):/.test(line)) log?.warn('postgres.log', { line });
    },
  });
  try {
    const db = await openAppDatabase(cfg, { url: embeddedPostgres.url, soleClient: true });
    return { db, embeddedPostgres, where: `embedded Postgres in ${embeddedPostgres.dataDir}` };
  } catch (err) {
    await embeddedPostgres.stop();
    throw err;
  }
}

/** ADMIN_TOKEN, or in embedded mode one generated on first start and kept in DATA_DIR. */
export function resolveAdminToken(cfg: Config): { token: string; generated: boolean } {
  if (cfg.ADMIN_TOKEN) return { token: cfg.ADMIN_TOKEN, generated: false };
  if (!cfg.embedded) throw new Error('ADMIN_TOKEN must be set (at least 16 characters)');
  const file = join(cfg.DATA_DIR, 'admin-token');
  if (existsSync(file)) return { token: readFileSync(file, 'utf8').trim(), generated: false };
  mkdirSync(cfg.DATA_DIR, { recursive: true });
  const token = `rra_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, token + '\n', { mode: 0o600 });
  return { token, generated: true };
}

/**
 * The keys that sign portal links: PORTAL_SIGNING_KEYS; in embedded mode one generated on first
 * start and kept in DATA_DIR; otherwise derived from the admin token (as before these keys existed).
 */
export function resolvePortalKeys(cfg: Config, adminToken: string): PortalKeyRing {
  if (cfg.PORTAL_SIGNING_KEYS.length) return new PortalKeyRing(cfg.PORTAL_SIGNING_KEYS.map((k) => Buffer.from(k, 'utf8')));
  if (!cfg.embedded) return new PortalKeyRing([portalSigningKey(adminToken)]);
  const file = join(cfg.DATA_DIR, 'portal-key');
  if (!existsSync(file)) {
    mkdirSync(cfg.DATA_DIR, { recursive: true });
    writeFileSync(file, randomBytes(32).toString('base64url') + '\n', { mode: 0o600 });
  }
  return new PortalKeyRing([Buffer.from(readFileSync(file, 'utf8').trim(), 'utf8')]);
}

/**
 * The key ring of endpoint signing secrets, installed for this process: SECRET_ENCRYPTION_KEYS;
 * else in embedded mode one key generated on first start into DATA_DIR/secret-key (mode 0600);
 * else none with SECRET_ENCRYPTION=off (plaintext); else a start-up error.
 * `generate: false` (the re-encryption command) reads the file but never creates one.
 */
export function configureSecretEncryption(cfg: Config, opts: { generate?: boolean } = {}): { source: 'SECRET_ENCRYPTION_KEYS' | 'generated' | 'file' | 'off'; file?: string } {
  if (cfg.SECRET_ENCRYPTION_KEYS) {
    useSecretKeyRing(keyRing(cfg.SECRET_ENCRYPTION_KEYS));
    return { source: 'SECRET_ENCRYPTION_KEYS' };
  }
  const file = join(cfg.DATA_DIR, 'secret-key');
  if (cfg.embedded && existsSync(file)) {
    const keys = parseKeyList(readFileSync(file, 'utf8').trim());
    if (!keys) throw new ConfigError(`${file} does not hold a base64 32-byte key (SECRET_ENCRYPTION_KEYS format)`);
    useSecretKeyRing(keyRing(keys));
    return { source: 'file', file };
  }
  if (cfg.SECRET_ENCRYPTION === 'off') {
    useSecretKeyRing(null);
    return { source: 'off' };
  }
  if (cfg.embedded && opts.generate !== false) {
    mkdirSync(cfg.DATA_DIR, { recursive: true });
    const key = newKeyBase64();
    writeFileSync(file, key + '\n', { mode: 0o600, flag: 'wx' });
    useSecretKeyRing(keyRing(parseKeyList(key)!));
    return { source: 'generated', file };
  }
  throw new ConfigError(
    'SECRET_ENCRYPTION_KEYS must be set: endpoint signing secrets are encrypted at rest (a new key: openssl rand -base64 32). ' +
      'SECRET_ENCRYPTION=off stores them in plaintext instead (not for production).',
  );
}

export function destinationGuard(cfg: Config): DestinationGuard {
  return new DestinationGuard({ allowCidrs: cfg.DESTINATION_ALLOW_CIDRS, allowHttp: cfg.ALLOW_HTTP });
}

export function webhookSender(cfg: Config, guard: DestinationGuard) {
  return createWebhookSender({
    timeoutMs: cfg.ATTEMPT_TIMEOUT,
    captureBytes: cfg.RESPONSE_BODY_CAPTURE_BYTES,
    lookup: guard.lookup,
    literalProblem: (host) => guard.literalProblem(host),
  });
}

/** Embedded mode: a paid demo account, created on first start, so the printed portal link works at once. */
export async function ensureDemoAccount(db: Database, cfg: Config): Promise<string> {
  const file = join(cfg.DATA_DIR, 'demo-account');
  if (existsSync(file)) {
    const id = readFileSync(file, 'utf8').trim();
    if (await getAccount(db, id)) return id;
  }
  const { account } = await db.transaction((tx) => createAccount(tx, { name: 'Demo account', plan: 'paid' }));
  mkdirSync(cfg.DATA_DIR, { recursive: true });
  writeFileSync(file, account.id + '\n');
  return account.id;
}

/** Scrape-time gauges from the database (served by the API process). */
export function addDatabaseGauges(registry: Registry, db: Database): void {
  registry.add(
    new Gauge('rr_deliveries', 'Deliveries by current status.', async () => (await deliveriesByStatus(db)).map((r) => ({ labels: { status: r.status }, value: r.n })), ['status']),
  );
  registry.add(new Gauge('rr_deliveries_pending', 'Deliveries still being retried.', async () => [{ value: (await pendingStats(db)).pending }]));
  registry.add(
    new Gauge(
      'rr_deliveries_held',
      'Pending deliveries held by their endpoint (no request on their wake-ups), by reason: circuit_open, probing, throttled (429), rate_limited, max_in_flight.',
      async () => (await heldByReason(db)).map((r) => ({ labels: { reason: r.reason }, value: r.n })),
      ['reason'],
    ),
  );
  registry.add(
    new Gauge('rr_deliveries_oldest_pending_age_seconds', 'Age of the oldest pending delivery (0 when none).', async () => [{ value: (await pendingStats(db)).oldestAgeSeconds }]),
  );
}

/** /readyz probe: Temporal's frontend answers its gRPC health check with SERVING. */
export function temporalHealth(connection: Connection): () => Promise<boolean> {
  return async () => (await connection.healthService.check({})).status === 1;
}
