/** Worker entry point for a multi-process deployment: delivery workflows + activities + dispatch reconciler. */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { installTemporalRuntime } from './temporal/runtime';
import { configureSecretEncryption, destinationGuard, openAppDatabase, webhookSender } from './bootstrap';
import { startFirstAnalyze } from './db/firstAnalyze';
import { ConfigError, loadConfig } from './config';
import { createLogger } from './logger';
import { deliveryMetrics, Registry } from './metrics';
import { createServer } from 'node:http';
import { Dispatcher } from './services/dispatcher';
import { Reconciler } from './services/reconciler';
import { SendSlots } from './http/sendSlots';
import type { DrainWakeRequest, RetryStartRequest } from './activities/deliveryDeps';
import { ensureSearchAttributes } from './temporal/ensureSearchAttributes';
import { ensureRetentionSchedule } from './temporal/retentionSchedule';
import { createDeliveryWorker, deliveryActivities } from './temporal/worker';
import { AcceptedTaker } from './services/acceptedOutbox';
import { inlineLimitsFor, InlineFirstAttempts } from './services/inlineFirstAttempts';
import { clientInterceptors, startTracing } from './tracing';
import { describeTemporalConnection, temporalConnectionOptions } from './temporal/connection';
import { workflowBundlePath } from './temporal/workflowBundle';

async function main() {
  const cfg = loadConfig(process.env);
  if (!cfg.DATABASE_URL) throw new ConfigError('DATABASE_URL must be set for the separate worker process (embedded PGlite serves one process only; use `npm start` for that).');
  const log = createLogger(cfg.LOG_LEVEL);
  const tracing = startTracing({ serviceName: 'rr-webhooks-worker' });
  if (configureSecretEncryption(cfg).source === 'off') log.warn('secrets.plaintext', { reason: 'SECRET_ENCRYPTION=off: new endpoint signing secrets are stored unencrypted' });
  // The SDK's default handlers drain the worker on SIGINT/SIGTERM: stop polling, let in-flight
  // attempts finish within shutdownGraceTime, then worker.run() resolves.
  installTemporalRuntime({ metricsAddress: cfg.TEMPORAL_METRICS_ADDRESS });
  const bundlePath = workflowBundlePath(cfg.WORKFLOW_BUNDLE); // fails fast on a missing WORKFLOW_BUNDLE
  const db = await openAppDatabase(cfg);
  const firstAnalyze = startFirstAnalyze(db, log); // a new cluster's generic plans (src/db/firstAnalyze.ts)
  const temporal = temporalConnectionOptions(cfg);
  const nativeConnection = await NativeConnection.connect(temporal);
  const connection = await Connection.connect(temporal);
  if (cfg.TEMPORAL_SEARCH_ATTRIBUTES) await ensureSearchAttributes(connection, cfg.TEMPORAL_NAMESPACE);
  const client = new Client({ connection, namespace: cfg.TEMPORAL_NAMESPACE, interceptors: clientInterceptors() });
  let inline: InlineFirstAttempts | undefined; // over the activities below: they need the dispatcher
  // A bursting account's batch workflows (hand-offs from the process) go to the bulk lane, as the API's did.
  const dispatcher = new Dispatcher(client, db, cfg, log, {
    bulkLane: cfg.TEMPORAL_FAIRNESS,
    get inline() {
      return inline;
    },
  });
  const sender = webhookSender(cfg, destinationGuard(cfg));
  const metrics = new Registry();
  const activityDeps = {
    db,
    send: sender.send,
    log,
    metrics: deliveryMetrics(metrics),
    autoDisableAfterMs: cfg.AUTO_DISABLE_AFTER,
    startRetryWorkflows: (r: RetryStartRequest) => dispatcher.startRetryWorkflows(r),
    existingWorkflows: (ids: string[]) => dispatcher.existingWorkflows(ids),
    slots: new SendSlots(),
    wakeDrain: (r: DrainWakeRequest) => dispatcher.wakeDrain(r),
    operationalEmitted: () => dispatcher.kickOperational(),
  };
  const worker = await createDeliveryWorker({ connection: nativeConnection, cfg, activityDeps });
  // DISPATCH_OUTBOX: the deliveries the API processes announce are taken here and their first
  // attempts sent from this process, as under `npm start` (src/services/acceptedOutbox.ts).
  // Without it, first attempts run in the batch workflows the APIs start, as before.
  if (cfg.DISPATCH_OUTBOX && cfg.DISPATCH_INLINE)
    inline = new InlineFirstAttempts(deliveryActivities(cfg, activityDeps), db, log, inlineLimitsFor(cfg), (batch) => dispatcher.startBatchWorkflow(batch));
  const taker = cfg.DISPATCH_OUTBOX ? new AcceptedTaker(db, dispatcher, log, inline) : undefined;
  // Asked to stop (the SDK's signal handlers drain the workers meanwhile): no more taking; first
  // attempts not yet sent go to their workflows (src/services/inlineFirstAttempts.ts shutdown).
  let stoppingInline: Promise<void> | undefined;
  const stopInline = () => (stoppingInline ??= (taker?.stop() ?? Promise.resolve()).then(() => inline?.shutdown()));
  process.once('SIGINT', stopInline).once('SIGTERM', stopInline);
  await taker?.start();
  // The bulk lane, where the API sends a bursting account's first attempts (src/services/burstLane.ts).
  const bulkWorker = cfg.TEMPORAL_FAIRNESS ? await createDeliveryWorker({ connection: nativeConnection, cfg, activityDeps, lane: 'bulk' }) : undefined;
  // The worker's own attempt metrics, for a scraper on the private network (the API serves the database gauges).
  const metricsServer = cfg.WORKER_METRICS_PORT
    ? createServer(async (req, res) => {
        if (req.url === '/metrics') {
          res.writeHead(200, { 'content-type': metrics.contentType }).end(await metrics.render());
        } else if (req.url === '/healthz') {
          res.writeHead(worker.getState() === 'RUNNING' ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ state: worker.getState() }));
        } else res.writeHead(404).end();
      }).listen(cfg.WORKER_METRICS_PORT, cfg.HOST)
    : undefined;
  await ensureRetentionSchedule(client, cfg);
  const stopReconciler = new Reconciler(dispatcher, db, log).start(cfg.DISPATCH_RECONCILE_INTERVAL);
  log.info('worker.running', {
    taskQueue: cfg.TEMPORAL_TASK_QUEUE,
    namespace: cfg.TEMPORAL_NAMESPACE,
    temporal: `${temporal.address} (${describeTemporalConnection(temporal)})`,
    workflowCode: bundlePath ?? 'bundled at start from the sources',
  });
  try {
    await Promise.all([worker.run(), bulkWorker?.run()]);
  } finally {
    await stopInline();
  }
  metricsServer?.close();
  await stopReconciler();
  sender.close();
  await nativeConnection.close();
  await connection.close();
  firstAnalyze.stop();
  await db.close();
  await tracing.shutdown();
  log.info('worker.stopped');
}

main().catch((err: Error) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
