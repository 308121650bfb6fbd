import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deliveryMetrics, Gauge, Registry } from '../../src/metrics';

// The Grafana dashboard (docs/grafana) and the compose `observability` profile cannot run here
// (no Docker Compose): what can be checked without them is checked. Every metric a panel queries
// must exist: rr_* and process metrics in the service's registry, temporal_* in the README's
// Telemetry table (whose names test/api/temporalMetrics.pg.test.ts reads from a real worker).
const ROOT = join(__dirname, '..', '..');
const dashboard = JSON.parse(readFileSync(join(ROOT, 'docs', 'grafana', 'rr-webhooks-dashboard.json'), 'utf8'));
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const compose = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: { expr: string; refId: string }[];
  gridPos: { x: number; y: number; w: number; h: number };
}
const panels: Panel[] = dashboard.panels;
const queries = panels.filter((p) => p.type !== 'row');
const metricNames = (expr: string) => [...expr.matchAll(/\b((?:rr|temporal|nodejs|process)_[a-z0-9_]+)/g)].map((m) => m[1].replace(/_(bucket|sum|count)$/, ''));

async function serviceMetricNames(): Promise<Set<string>> {
  const registry = new Registry();
  deliveryMetrics(registry);
  // The database gauges, as addDatabaseGauges registers them (names only: the values do not matter here).
  for (const [name, labels] of [
    ['rr_deliveries', ['status']],
    ['rr_deliveries_pending', []],
    ['rr_deliveries_oldest_pending_age_seconds', []],
  ] as const) {
    registry.add(new Gauge(name, name, async () => [], [...labels]));
  }
  const text = await registry.render();
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
}

test('when the dashboard is read, then it is a Grafana dashboard with unique panel ids, no overlapping panels, and every query on the Prometheus data-source variable', () => {
  expect(dashboard.uid).toBe('rr-webhooks');
  expect(dashboard.templating.list).toEqual([expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' })]);
  expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
  for (const p of queries) {
    expect([p.title, p.datasource?.uid]).toEqual([p.title, '${datasource}']);
    expect([p.title, (p.targets ?? []).length > 0]).toEqual([p.title, true]);
    for (const t of p.targets!) expect([p.title, t.expr.split('(').length]).toEqual([p.title, t.expr.split(')').length]);
  }
  const cells = new Map<string, string>();
  for (const p of panels) {
    for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
      for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
        expect([p.title, x < 24, cells.get(`${x},${y}`)]).toEqual([p.title, true, undefined]);
        cells.set(`${x},${y}`, p.title);
      }
    }
  }
});

test('when the dashboard queries a metric, then the service registers it (rr_*, process) or the README documents it (temporal_*), and the dashboard covers the SDK metrics the issue names', async () => {
  const known = await serviceMetricNames();
  const used = new Set(queries.flatMap((p) => p.targets!.flatMap((t) => metricNames(t.expr))));
  for (const name of used) {
    if (name.startsWith('temporal_')) expect([name, readme.includes(`\`${name}`)]).toEqual([name, true]);
    else expect([name, known.has(name)]).toEqual([name, true]);
  }
  for (const name of [
    'temporal_workflow_task_execution_failed',
    'temporal_workflow_task_schedule_to_start_latency',
    'temporal_activity_schedule_to_start_latency',
    'temporal_worker_task_slots_available',
    'temporal_num_pollers',
    'rr_delivery_attempts_total',
    'rr_deliveries_oldest_pending_age_seconds',
    'nodejs_eventloop_lag_p99_seconds',
  ]) {
    expect([name, used.has(name)]).toEqual([name, true]);
  }
});

test('when the compose file is read, then the observability profile provisions this dashboard and scrapes the API, the workers and their SDK exporter', () => {
  expect(compose).toContain('file: ./docs/grafana/rr-webhooks-dashboard.json');
  expect(compose).toMatch(/profiles: \["observability"\]/);
  expect(compose).toContain('TEMPORAL_METRICS_ADDRESS: 0.0.0.0:9465');
  for (const job of ['rr-api', 'rr-worker', 'temporal-sdk']) expect(compose).toContain(`job_name: ${job}`);
});
