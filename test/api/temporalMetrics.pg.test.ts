import { Client, Connection } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PurgeOldDataInput } from '../../src/workflows/purgeOldData';
import { spawnApp, type AppProcess } from '../helpers/appProcess';
import { freshDatabase } from '../helpers/db';
import { freePort } from '../helpers/processes';
import { waitFor } from '../helpers/receiver';

// Temporal SDK metrics (issue 12): the separate worker process with TEMPORAL_METRICS_ADDRESS serves
// the SDK's temporal_* metrics through the Runtime's Prometheus exporter. A child process of its
// own, because the Runtime (and its exporter) is installed once per process.
let worker: AppProcess | undefined;
let app: Awaited<ReturnType<typeof freshDatabase>> | undefined;
let connection: Connection | undefined;
let logDir: string;
let sdkMetricsUrl: string;
let serviceMetricsUrl: string;
const taskQueue = `sdk-metrics-${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  logDir = mkdtempSync(join(tmpdir(), 'rr-sdk-metrics-'));
  app = await freshDatabase();
  const [sdkPort, servicePort] = [await freePort(), await freePort()];
  sdkMetricsUrl = `http://127.0.0.1:${sdkPort}/metrics`;
  serviceMetricsUrl = `http://127.0.0.1:${servicePort}/metrics`;
  worker = spawnApp(
    'worker',
    'src/worker.ts',
    {
      DATABASE_URL: app.url!,
      TEMPORAL_ADDRESS: process.env.RR_TEST_TEMPORAL_ADDRESS!,
      TEMPORAL_TASK_QUEUE: taskQueue,
      HOST: '127.0.0.1',
      PORT: '0',
      WORKER_METRICS_PORT: String(servicePort),
      TEMPORAL_METRICS_ADDRESS: `127.0.0.1:${sdkPort}`,
      LOG_LEVEL: 'info',
    },
    logDir,
  );
  await worker.waitForLog('worker.running', 90_000);
  connection = await Connection.connect({ address: process.env.RR_TEST_TEMPORAL_ADDRESS! });
}, 120_000);

afterAll(async () => {
  await worker?.stop(5_000);
  await connection?.close();
  await app?.drop();
  rmSync(logDir, { recursive: true, force: true });
});

const scrape = async (url: string) => (await fetch(url)).text();
/** Sum of the samples of `name` whose labels contain every `labels` pair. */
function sum(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const samples = text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  const matching = samples.filter((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return matching.length ? matching.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0) : undefined;
}

test('when a workflow has run on the worker, then its SDK metrics endpoint serves temporal_* completions, latencies, slots and pollers, and a failed workflow task is counted', async () => {
  const client = new Client({ connection: connection!, namespace: 'default' });
  const args: [PurgeOldDataInput] = [{ retentionMs: 30 * 86_400_000, batchSize: 1000 }];
  const result = await client.workflow.execute('purgeOldData', { taskQueue, workflowId: `sdk-metrics-purge-${randomBytes(4).toString('hex')}`, args });
  expect(result).toEqual({ attempts: 0, payloads: 0 });

  // A workflow type this worker does not have: its workflow task fails, the way a non-determinism error does.
  const broken = await client.workflow.start('noSuchWorkflow', { taskQueue, workflowId: `sdk-metrics-broken-${randomBytes(4).toString('hex')}`, args: [] });

  const text = await waitFor(
    async () => {
      const t = await scrape(sdkMetricsUrl).catch(() => '');
      return (sum(t, 'temporal_workflow_completed', { workflow_type: 'purgeOldData' }) ?? 0) >= 1 &&
        (sum(t, 'temporal_workflow_task_execution_failed', { task_queue: taskQueue }) ?? 0) >= 1
        ? t
        : undefined;
    },
    'temporal_* metrics on the SDK exporter',
    30_000,
    500,
  );
  await broken.terminate('test done');

  expect(sum(text, 'temporal_workflow_completed', { workflow_type: 'purgeOldData', task_queue: taskQueue })).toBeGreaterThanOrEqual(1);
  expect(sum(text, 'temporal_activity_execution_latency_count', { activity_type: 'purgeOldDataBatch' })).toBeGreaterThanOrEqual(1);
  expect(sum(text, 'temporal_activity_schedule_to_start_latency_count', { task_queue: taskQueue })).toBeGreaterThanOrEqual(1);
  expect(sum(text, 'temporal_workflow_task_schedule_to_start_latency_count', { task_queue: taskQueue })).toBeGreaterThanOrEqual(1);
  expect(sum(text, 'temporal_worker_task_slots_available', { task_queue: taskQueue, worker_type: 'ActivityWorker' })).toBeGreaterThan(0);
  expect(sum(text, 'temporal_num_pollers', { task_queue: taskQueue })).toBeGreaterThan(0);
  expect(sum(text, 'temporal_workflow_task_execution_failed', { task_queue: taskQueue, workflow_type: 'noSuchWorkflow' })).toBeGreaterThanOrEqual(1);
  // Durations in seconds (useSecondsForDurations): a sub-minute activity sums to far less than 60.
  expect(sum(text, 'temporal_activity_execution_latency_sum', { activity_type: 'purgeOldDataBatch' })).toBeLessThan(60);

  // The service's own metrics stay on WORKER_METRICS_PORT, with the process metrics of prom-client.
  const own = await scrape(serviceMetricsUrl);
  expect(own).toMatch(/^# TYPE rr_delivery_attempts_total counter$/m);
  expect(own).toMatch(/^nodejs_eventloop_lag_seconds [\d.e-]+$/m);
  expect(own).toMatch(/^process_resident_memory_bytes \d+$/m);
  expect(own).not.toMatch(/^temporal_/m);
});
