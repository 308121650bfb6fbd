/** API entry point for a multi-process deployment: REST API only; needs DATABASE_URL, ADMIN_TOKEN, SECRET_ENCRYPTION_KEYS and a Temporal server. */
import { Client, Connection } from '@temporalio/client';
import { createApp } from './api/app';
import { closeApi, listenApi } from './api/listen';
import { addDatabaseGauges, configureSecretEncryption, temporalHealth, destinationGuard, openAppDatabase, resolveAdminToken, resolvePortalKeys } from './bootstrap';
import { Registry } from './metrics';
import { ConfigError, loadConfig } from './config';
import { createLogger } from './logger';
import { AcceptedNotifier } from './services/acceptedOutbox';
import { Dispatcher } from './services/dispatcher';
import { ensureSearchAttributes } from './temporal/ensureSearchAttributes';
import { clientInterceptors, startTracing } from './tracing';
import { describeTemporalConnection, temporalConnectionOptions } from './temporal/connection';

async function main() {
  const cfg = loadConfig(process.env);
  if (!cfg.DATABASE_URL) throw new ConfigError('DATABASE_URL must be set for the separate api process (embedded PGlite serves one process only; use `npm start` for that).');
  const log = createLogger(cfg.LOG_LEVEL);
  const tracing = startTracing({ serviceName: 'rr-webhooks-api' });
  if (configureSecretEncryption(cfg).source === 'off') log.warn('secrets.plaintext', { reason: 'SECRET_ENCRYPTION=off: new endpoint signing secrets are stored unencrypted' });
  const db = await openAppDatabase(cfg);
  const temporal = temporalConnectionOptions(cfg);
  const connection = await Connection.connect(temporal);
  if (cfg.TEMPORAL_SEARCH_ATTRIBUTES) await ensureSearchAttributes(connection, cfg.TEMPORAL_NAMESPACE);
  const client = new Client({ connection, namespace: cfg.TEMPORAL_NAMESPACE, interceptors: clientInterceptors() });
  // The worker processes serve the bulk lane (with TEMPORAL_FAIRNESS): a bursting account's first attempts go there.
  // DISPATCH_OUTBOX: the workers take and send new deliveries (src/services/acceptedOutbox.ts).
  const dispatcher = new Dispatcher(client, db, cfg, log, { bulkLane: true, outbox: cfg.DISPATCH_OUTBOX ? new AcceptedNotifier(db, log) : undefined });
  const metrics = new Registry();
  addDatabaseGauges(metrics, db);
  const adminToken = resolveAdminToken(cfg).token;
  const app = createApp({
    cfg,
    metrics,
    db,
    dispatcher,
    guard: destinationGuard(cfg),
    log,
    adminToken,
    portalKeys: resolvePortalKeys(cfg, adminToken),
    temporalReady: temporalHealth(connection),
  });
  const server = await listenApi(app, cfg);
  log.info('api.listening', { host: cfg.HOST, port: cfg.PORT, temporal: `${temporal.address} (${describeTemporalConnection(temporal)})` });

  const shutdown = async (signal: string) => {
    log.info('api.stopping', { signal });
    setTimeout(() => process.exit(1), 15_000).unref();
    await closeApi(server); // finishes in-flight requests
    await connection.close();
    await db.close();
    await tracing.shutdown();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err: Error) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
