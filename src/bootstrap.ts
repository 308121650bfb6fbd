import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config';
import { createAccount, getAccount } from './db/accounts';
import { openDatabase, type Database } from './db/database';
import { migrate } from './db/migrations';
import { PortalKeyRing, portalSigningKey } from './domain/portalToken';
import { DestinationGuard } from './http/destinationGuard';
import { createWebhookSender } from './http/sendWebhook';
import { Gauge, type Registry } from './metrics';
import type { Connection } from '@temporalio/client';
import { deliveriesByStatus, pendingStats } from './db/stats';

/** Shared start-up pieces of the entry points (main, api, worker). */
export async function openAppDatabase(cfg: Config): Promise<Database> {
  const db = await openDatabase({ url: cfg.DATABASE_URL, pgliteDir: join(cfg.DATA_DIR, 'pg') });
  await migrate(db);
  return db;
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
  registry.add(new Gauge('rr_deliveries', 'Deliveries by current status.', async () => (await deliveriesByStatus(db)).map((r) => ({ labels: { status: r.status }, value: r.n }))));
  registry.add(new Gauge('rr_deliveries_pending', 'Deliveries still being retried.', async () => [{ value: (await pendingStats(db)).pending }]));
  registry.add(new Gauge('rr_deliveries_oldest_pending_age_seconds', 'Age of the oldest pending delivery (0 when none).', async () => [{ value: (await pendingStats(db)).oldestAgeSeconds }]));
}

/** /readyz probe: Temporal's frontend answers its gRPC health check with SERVING. */
export function temporalHealth(connection: Connection): () => Promise<boolean> {
  return async () => (await connection.healthService.check({})).status === 1;
}
