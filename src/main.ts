/**
 * All-in-one embedded mode (`npm start`): Temporal dev server with its Web UI (unless
 * TEMPORAL_ADDRESS is set), the delivery worker and the REST API in one process, with the
 * embedded database (unless DATABASE_URL is set): a Postgres server it starts, or PGlite
 * (EMBEDDED_DATABASE). Ctrl-C shuts everything down.
 */
import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { installTemporalRuntime } from './temporal/runtime';
import { createServer, type AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { resolve } from 'node:path';
import { createApp } from './api/app';
import { closeApi, listenApi } from './api/listen';
import { httpOrigin, isWildcardAddress } from './api/origin';
import { portalLink } from './api/routes/accounts';
import {
  addDatabaseGauges,
  configureSecretEncryption,
  temporalHealth,
  destinationGuard,
  ensureDemoAccount,
  openServiceDatabase,
  resolveAdminToken,
  resolvePortalKeys,
  webhookSender,
} from './bootstrap';
import { deliveryMetrics, Registry } from './metrics';
import { ConfigError, loadConfig, type Config } from './config';
import { SendStops } from './http/sendStops';
import { createLogger } from './logger';
import { startPgliteAutovacuum } from './db/pgliteAutovacuum';
import { startFirstAnalyze } from './db/firstAnalyze';
import { Dispatcher } from './services/dispatcher';
import { MAIN_LANE_BUSY_BATCHES } from './services/burstLane';
import { Reconciler } from './services/reconciler';
import { SendSlots } from './http/sendSlots';
import type { DrainWakeRequest, RetryStartRequest } from './activities/deliveryDeps';
import { devServerExecutable } from './temporal/binaries';
import { ensureSearchAttributes } from './temporal/ensureSearchAttributes';
import { temporalConnectionOptions } from './temporal/connection';
import { ensureRetentionSchedule } from './temporal/retentionSchedule';
import { createDeliveryWorker, deliveryActivities } from './temporal/worker';
import { bulkTaskQueue } from './services/burstLane';
import { inlineLimitsFor, InlineFirstAttempts } from './services/inlineFirstAttempts';
import { clientInterceptors, startTracing } from './tracing';
import { DELIVERY_SEARCH_ATTRIBUTES } from './workflows/searchAttributes';

/** Set once the embedded Postgres runs: a failed start stops it instead of leaving it behind. */
let stopEmbeddedPostgres: () => Promise<void> | undefined = () => undefined;

async function main() {
  let cfg = loadConfig(process.env, { embedded: true });
  // The one line before the summary below: opening the database and starting the dev server and the
  // worker (its workflow bundle) take a few seconds, on a first start about 15.
  console.log(
    `Starting the ${cfg.DATABASE_URL ? 'database connection' : 'embedded database'}, ${cfg.TEMPORAL_ADDRESS ? `the connection to Temporal at ${cfg.TEMPORAL_ADDRESS}` : 'the Temporal dev server'}, the worker and the API …`,
  );
  const log = createLogger(cfg.LOG_LEVEL);
  const tracing = startTracing({ serviceName: 'rr-webhooks' });
  installTemporalRuntime({ ownSignals: true, metricsAddress: cfg.TEMPORAL_METRICS_ADDRESS }); // shutdown below owns the signals
  await assertPortsFree(cfg);

  const secretKey = configureSecretEncryption(cfg);
  const { db, embeddedPostgres, where: databaseWhere } = await openServiceDatabase(cfg, log);
  stopEmbeddedPostgres = () => embeddedPostgres?.stop();
  // PGlite has no autovacuum; a new Postgres cluster's first one comes a minute in (src/db/firstAnalyze.ts).
  const autovacuum = db.kind === 'pglite' ? startPgliteAutovacuum(db, log) : startFirstAnalyze(db, log);
  const admin = resolveAdminToken(cfg);
  const portalKeys = resolvePortalKeys(cfg, admin.token);

  let env: TestWorkflowEnvironment | undefined;
  let nativeConnection: NativeConnection;
  let connection: Connection;
  if (cfg.TEMPORAL_ADDRESS) {
    const temporal = temporalConnectionOptions(cfg);
    nativeConnection = await NativeConnection.connect(temporal);
    connection = await Connection.connect(temporal);
  } else {
    const remoteOnly = (['TEMPORAL_TLS', 'TEMPORAL_TLS_CA', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_SERVER_NAME', 'TEMPORAL_API_KEY'] as const).filter(
      (k) => cfg[k] !== undefined,
    );
    if (remoteOnly.length)
      throw new ConfigError(
        `${remoteOnly.join(', ')} apply to a Temporal cluster at TEMPORAL_ADDRESS; without TEMPORAL_ADDRESS \`npm start\` runs its own dev server (no TLS). Set TEMPORAL_ADDRESS, or unset them.`,
      );
    env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: devServerExecutable(cfg.TEMPORAL_CLI_PATH),
        ip: '127.0.0.1',
        port: cfg.TEMPORAL_DEV_PORT,
        ui: true,
        uiPort: cfg.TEMPORAL_UI_PORT,
        namespace: cfg.TEMPORAL_NAMESPACE,
        dbFilename: resolve(cfg.DATA_DIR, 'temporal.db'),
        searchAttributes: DELIVERY_SEARCH_ATTRIBUTES,
        // Its routine warnings (a client dialling it while it stops, …) are not the user's business; errors are.
        log: { format: 'pretty', level: 'error' },
        extraArgs: [
          '--sqlite-pragma',
          'journal_mode=WAL',
          '--sqlite-pragma',
          'synchronous=OFF',
          '--dynamic-config-value',
          'system.enableActivityEagerExecution=true',
          // Fairness between accounts: the backlog is dispatched in turn per fairness key (the account).
          ...(cfg.TEMPORAL_FAIRNESS ? ['--dynamic-config-value', 'matching.enableFairness=true'] : []),
          // One partition: fairness orders each partition's backlog on its own, and one node needs no more.
          ...(cfg.TEMPORAL_FAIRNESS ? ['--dynamic-config-value', 'matching.numTaskqueueReadPartitions=1', '--dynamic-config-value', 'matching.numTaskqueueWritePartitions=1'] : []),
        ],
      },
    });
    nativeConnection = env.nativeConnection;
    connection = env.connection;
    cfg = Object.freeze({ ...cfg, TEMPORAL_UI_URL: cfg.TEMPORAL_UI_URL ?? `http://127.0.0.1:${cfg.TEMPORAL_UI_PORT}` });
  }
  if (cfg.TEMPORAL_SEARCH_ATTRIBUTES) await ensureSearchAttributes(connection, cfg.TEMPORAL_NAMESPACE);
  // On the worker's own connection, so workflow starts can be eager (first task handed straight to this worker).
  const client = new Client({ connection: nativeConnection, namespace: cfg.TEMPORAL_NAMESPACE, interceptors: clientInterceptors() });
  let mainLane: Worker | undefined; // the worker below: it needs the dispatcher
  let inline: InlineFirstAttempts | undefined; // over the activities below: they need the dispatcher
  const dispatcher = new Dispatcher(client, db, cfg, log, {
    eagerStart: true,
    bulkLane: cfg.TEMPORAL_FAIRNESS,
    mainLaneBusy: () => (mainLane?.getStatus().numInFlightLocalActivities ?? 0) >= MAIN_LANE_BUSY_BATCHES,
    get inline() {
      return inline;
    },
    onBulkLane: () => startBulkLane(),
  });
  const guard = destinationGuard(cfg);
  const sender = webhookSender(cfg, guard);

  const metrics = new Registry();
  addDatabaseGauges(metrics, db);
  // API and worker in one process: a delete, disable or downgrade also aborts requests not yet on the wire.
  const sendStops = new SendStops();
  const activityDeps = {
    db,
    send: sender.send,
    log,
    metrics: deliveryMetrics(metrics),
    autoDisableAfterMs: cfg.AUTO_DISABLE_AFTER,
    soleProcess: db.soleClient === true, // the embedded database serves this process only: no other process sends through it
    startRetryWorkflows: (r: RetryStartRequest) => dispatcher.startRetryWorkflows(r),
    existingWorkflows: (ids: string[]) => dispatcher.existingWorkflows(ids),
    sendStops,
    slots: new SendSlots(),
    wakeDrain: (r: DrainWakeRequest) => dispatcher.wakeDrain(r),
    operationalEmitted: () => dispatcher.kickOperational(),
  };
  const worker = (mainLane = await createDeliveryWorker({ connection: nativeConnection, cfg, activityDeps }));
  // First attempts sent from this process while it has room, without a batch workflow (src/services/inlineFirstAttempts.ts).
  if (cfg.DISPATCH_INLINE) inline = new InlineFirstAttempts(deliveryActivities(cfg, activityDeps), db, log, inlineLimitsFor(cfg), (batch) => dispatcher.startBatchWorkflow(batch));
  // Fairness between accounts: a bursting account's first attempts run on slots of their own
  // (src/services/burstLane.ts). That worker (a workflow thread of its own, ~40 MiB) starts with the
  // first batch sent to its lane, or at once if batches from before a restart wait there.
  let stopping = false;
  let bulkWorker: Worker | undefined;
  let bulkRun: Promise<void> = Promise.resolve();
  let bulkStarting: Promise<void> | undefined;
  const startBulkLane = () => {
    if (!cfg.TEMPORAL_FAIRNESS || bulkStarting || stopping) return;
    bulkStarting = createDeliveryWorker({ connection: nativeConnection, cfg, activityDeps, lane: 'bulk' }).then(
      (w) => {
        bulkWorker = w;
        bulkRun = w.run();
        log.info('worker.bulk_lane_started', { taskQueue: bulkTaskQueue(cfg.TEMPORAL_TASK_QUEUE) });
        bulkRun.catch((err: Error) => {
          log.error('worker.failed', { lane: 'bulk', error: err.message });
          void shutdown('worker failure', 1);
        });
      },
      (err: Error) => {
        bulkStarting = undefined;
        log.warn('worker.bulk_lane_failed', { error: err.message });
        setTimeout(startBulkLane, 5_000).unref(); // batches may already wait on its task queue
      },
    );
  };
  if (cfg.TEMPORAL_FAIRNESS && (await waitingInBulkLane(client, cfg))) startBulkLane();
  const workerRun = worker.run();
  await ensureRetentionSchedule(client, cfg);
  const stopReconciler = new Reconciler(dispatcher, db, log).start(cfg.DISPATCH_RECONCILE_INTERVAL);

  const app = createApp({ cfg, db, dispatcher, guard, log, metrics, adminToken: admin.token, portalKeys, temporalReady: temporalHealth(connection), sendStops });
  const server: Server = await listenApi(app, cfg);
  const bound = server.address() as AddressInfo;
  // A wildcard HOST listens on every interface: print the loopback address of the same family.
  const apiUrl = httpOrigin(isWildcardAddress(bound.address) ? (bound.family === 'IPv6' ? '::1' : '127.0.0.1') : bound.address, bound.port);
  const demo = portalLink({ cfg, adminToken: admin.token, portalKeys }, await ensureDemoAccount(db, cfg), { ttlSeconds: 24 * 3600 }, apiUrl);

  console.log(
    [
      '',
      'Webhook delivery service is running.',
      `  API:             ${apiUrl}   (OpenAPI: ${apiUrl}/openapi.json)`,
      `  Temporal:        ${cfg.TEMPORAL_ADDRESS ?? `127.0.0.1:${cfg.TEMPORAL_DEV_PORT}`} (namespace ${cfg.TEMPORAL_NAMESPACE})`,
      `  Temporal Web UI: ${cfg.TEMPORAL_UI_URL ?? '(not configured)'}`,
      `  Database:        ${databaseWhere}`,
      cfg.DESTINATION_ALLOW_CIDRS.length
        ? `  Destinations:    public, and ${cfg.DESTINATION_ALLOW_CIDRS.join(', ')} for EVERY account, plain http included (DESTINATION_ALLOW_CIDRS; not for untrusted accounts)`
        : '  Destinations:    public addresses only (DESTINATION_ALLOW_CIDRS is empty)',
      admin.generated
        ? `  Admin token:     ${admin.token}   (generated now and saved in ${resolve(cfg.DATA_DIR, 'admin-token')}; shown only this once)`
        : `  Admin token:     ${cfg.ADMIN_TOKEN ? 'from ADMIN_TOKEN' : `in ${resolve(cfg.DATA_DIR, 'admin-token')}`}`,
      `  Secrets at rest: ${secretKey.source === 'off' ? 'PLAINTEXT (SECRET_ENCRYPTION=off)' : secretKey.source === 'SECRET_ENCRYPTION_KEYS' ? 'encrypted with SECRET_ENCRYPTION_KEYS' : `encrypted with the key in ${resolve(secretKey.file!)}${secretKey.source === 'generated' ? ' (generated now; back it up apart from the database)' : ''}`}`,
      `  Settings page:   ${demo.url}`,
      `                   (demo account, link valid until ${demo.expiresAt}; new links: POST /v1/accounts/:id/portal-links)`,
      '  Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );

  const shutdown = async (signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    process.exitCode = exitCode; // also if the process ends on its own before the last step
    console.log(`\n${signal}: shutting down …`);
    const force = setTimeout(() => process.exit(1), 30_000);
    force.unref();
    void closeApi(server); // its requests finish while the rest stops
    await stopReconciler();
    await inline?.shutdown();
    await bulkStarting;
    for (const w of [worker, bulkWorker]) {
      try {
        if (w?.getState() === 'RUNNING') w.shutdown(); // a failed worker throws on shutdown
      } catch (err) {
        log.warn('worker.shutdown_failed', { error: (err as Error).message });
      }
    }
    await Promise.all([workerRun, bulkRun].map((r) => r.catch(() => undefined)));
    sender.close();
    await env?.teardown();
    if (!env) {
      await nativeConnection.close();
      await connection.close();
    }
    autovacuum?.stop();
    await db.close();
    await embeddedPostgres?.stop(); // last: the drained attempts above recorded into it
    await tracing.shutdown();
    console.log('Stopped.');
    process.exit(exitCode);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGHUP', () => void shutdown('SIGHUP')); // the terminal closed: Node would exit at once, leaving the embedded Postgres behind
  workerRun.catch((err: Error) => {
    log.error('worker.failed', { error: err.message });
    void shutdown('worker failure', 1);
  });
  // The embedded Postgres stopped under the service (killed, out of memory, its disk gone): every
  // statement would fail from here on, so the service stops too, non-zero for its supervisor.
  void embeddedPostgres?.exited.then((how) => {
    if (stopping) return;
    log.error('postgres.exited', { how });
    void shutdown('embedded Postgres exited', 1);
  });
}

/** Whether batch workflows wait in the bulk lane (started before a restart): its worker must poll at once. Unknown counts as yes. */
async function waitingInBulkLane(client: Client, cfg: Config): Promise<boolean> {
  try {
    const { count } = await client.workflow.count(`TaskQueue = '${bulkTaskQueue(cfg.TEMPORAL_TASK_QUEUE)}' AND ExecutionStatus = 'Running'`);
    return count > 0;
  } catch {
    return true;
  }
}

/** A clear message instead of a half-started stack when a port is taken. */
async function assertPortsFree(cfg: Config) {
  const wanted: [number, string][] = [[cfg.PORT, 'PORT']];
  if (!cfg.TEMPORAL_ADDRESS) wanted.push([cfg.TEMPORAL_DEV_PORT, 'TEMPORAL_DEV_PORT'], [cfg.TEMPORAL_UI_PORT, 'TEMPORAL_UI_PORT']);
  for (const [port, name] of wanted) {
    const free = await new Promise<boolean>((ok) => {
      const probe = createServer()
        .once('error', () => ok(false))
        .listen(port, '127.0.0.1', () => probe.close(() => ok(true)));
    });
    if (!free)
      throw new ConfigError(
        `Port ${port} (${name}) is already in use — is another instance running? Set ${name} to another port${name === 'PORT' ? '' : ', or TEMPORAL_ADDRESS to use a running Temporal server'}.`,
      );
  }
}

main().catch(async (err: Error) => {
  console.error(err instanceof ConfigError ? err.message : err);
  await Promise.resolve(stopEmbeddedPostgres()).catch(() => undefined);
  process.exit(1);
});
