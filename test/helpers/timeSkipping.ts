import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { readFileSync } from 'node:fs';
import { loadConfig, type Config } from '../../src/config';
import type { Database } from '../../src/db/database';
import { createWebhookSender } from '../../src/http/sendWebhook';
import { createLogger, silentLogger } from '../../src/logger';
import { workflowIdFor } from '../../src/domain/workflowIds';
import { Dispatcher } from '../../src/services/dispatcher';
import { scheduleFrom } from '../../src/services/workflowStartOptions';
import { testServerExecutable } from '../../src/temporal/binaries';
import { installTemporalRuntime } from '../../src/temporal/runtime';
import { createDeliveryWorker } from '../../src/temporal/worker';
import type { DeliverBatchInput, DeliverBatchResult } from '../../src/workflows/deliverBatch';
import type { DeliverWebhookInput, DeliverWebhookResult } from '../../src/workflows/deliverWebhook';
import { freshDatabase } from './db';
import { Receiver } from './receiver';

export interface TimeSkippingSuite {
  env: TestWorkflowEnvironment;
  db: Database;
  cfg: Config;
  receiver: Receiver;
  /** Runs one delivery workflow to its end on a fresh worker; `during` runs while it is going. */
  deliver(deliveryId: string, during?: () => Promise<void>): Promise<DeliverWebhookResult>;
  /** Runs one first-attempt batch and every retry workflow it started to their ends. */
  deliverBatch(accountId: string, deliveryIds: string[], during?: () => Promise<void>): Promise<{ batch: DeliverBatchResult; retries: Map<string, DeliverWebhookResult> }>;
}

/**
 * Registers jest hooks for a workflow test file: Temporal's time-skipping server, a fresh
 * database, a loopback receiver per test and a worker per test on its own task queue, with
 * activities reading the server's (skipped) clock. `env` overrides configuration.
 */
export function timeSkippingSuite(env: Record<string, string> = {}): TimeSkippingSuite {
  const cfg = loadConfig({ RETRY_JITTER: '0', ...env });
  const sender = createWebhookSender({ timeoutMs: 5_000, captureBytes: 1024 });
  let drop: () => Promise<void>;
  let worker: Worker;
  let taskQueue: string;
  // Drains are woken by activities without waiting (src/activities/endpointGuards.ts) and may
  // outlive the workflow a test awaits. A drain task left on a queue whose worker has stopped (or
  // terminated while a worker held it) keeps the time-skipping server from skipping time for good:
  // every later test in the file then waits in real time (two circuit-breaker tests timed out in
  // CI so). So each run, before its worker stops, waits for the wakes it sent and for the drains
  // they started to end, as they do in production once nothing is left to drain.
  const wakes = new Set<Promise<void>>();
  const drains = new Set<string>();
  async function settleDrains() {
    for (;;) {
      while (wakes.size) await Promise.allSettled([...wakes]);
      const ids = [...drains];
      drains.clear();
      if (ids.length === 0) return;
      await Promise.all(
        ids.map((id) =>
          suite.env.client.workflow
            .getHandle(id)
            .result()
            .catch(() => undefined),
        ),
      );
    }
  }
  const suite = { cfg } as TimeSkippingSuite;

  beforeAll(async () => {
    installTemporalRuntime({ level: 'ERROR' });
    suite.env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: testServerExecutable() } });
    const fresh = await freshDatabase();
    suite.db = fresh.db;
    drop = fresh.drop;
  });
  afterAll(async () => {
    sender.close();
    await suite.env?.teardown();
    await drop?.();
  });
  beforeEach(async () => {
    wakes.clear(); // left by a test that failed before its run settled
    drains.clear();
    suite.receiver = await new Receiver().start();
    taskQueue = `deliveries-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const dispatcher = new Dispatcher(suite.env.client, suite.db, { ...cfg, TEMPORAL_TASK_QUEUE: taskQueue }, silentLogger);
    worker = await createDeliveryWorker({
      connection: suite.env.nativeConnection,
      cfg,
      taskQueue,
      workflowBundle: { code: readFileSync(process.env.RR_TEST_WORKFLOW_BUNDLE!, 'utf8') },
      activityDeps: {
        db: suite.db,
        send: sender.send,
        log: process.env.DEBUG_TESTS ? createLogger('debug') : silentLogger,
        autoDisableAfterMs: cfg.AUTO_DISABLE_AFTER,
        now: () => suite.env.currentTimeMs(),
        startRetryWorkflows: (r) => dispatcher.startRetryWorkflows(r),
        existingWorkflows: (ids) => dispatcher.existingWorkflows(ids),
        wakeDrain: (r) => {
          drains.add(`drain-${r.endpointId}`);
          const wake = dispatcher.wakeDrain(r);
          const tracked = wake.catch(() => undefined).finally(() => wakes.delete(tracked));
          wakes.add(tracked);
          return wake;
        },
      },
    });
  });
  afterEach(async () => {
    await suite.receiver.stop();
  });

  suite.deliver = (deliveryId, during) => {
    const input: DeliverWebhookInput = { deliveryId, series: 1, schedule: scheduleFrom(cfg), attemptTimeoutMs: 5_000 };
    return worker.runUntil(async () => {
      const handle = await suite.env.client.workflow.start('deliverWebhook', { taskQueue, workflowId: workflowIdFor(deliveryId, 1), args: [input] });
      await during?.();
      const result = (await handle.result()) as DeliverWebhookResult;
      await settleDrains();
      return result;
    });
  };
  suite.deliverBatch = (accountId, deliveryIds, during) => {
    const input: DeliverBatchInput = { accountId, deliveries: deliveryIds.map((deliveryId) => ({ deliveryId, series: 1 })), schedule: scheduleFrom(cfg), attemptTimeoutMs: 5_000 };
    return worker.runUntil(async () => {
      const handle = await suite.env.client.workflow.start('deliverBatch', { taskQueue, workflowId: `batch-${deliveryIds[0]}`, args: [input] });
      await during?.();
      const batch = (await handle.result()) as DeliverBatchResult;
      const retries = new Map<string, DeliverWebhookResult>();
      for (const id of deliveryIds) {
        const handle = suite.env.client.workflow.getHandle(workflowIdFor(id, 1));
        const started = await handle.describe().then(
          () => true,
          () => false,
        );
        if (started) retries.set(id, (await handle.result()) as DeliverWebhookResult);
      }
      await settleDrains();
      return { batch, retries };
    });
  };
  return suite;
}
