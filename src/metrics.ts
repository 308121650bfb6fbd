/**
 * The service's Prometheus metrics (prom-client): counters and histograms updated in process,
 * gauges read at scrape time, and prom-client's default process metrics (CPU, heap, event-loop
 * lag, GC). One registry per process; the embedded mode's single process serves the worker's and
 * the API's metrics together. The Temporal SDK's own metrics (temporal_*) are a separate endpoint:
 * TEMPORAL_METRICS_ADDRESS (src/temporal/runtime.ts).
 */
import * as prom from 'prom-client';

type Labels = Record<string, string>;
// Every metric declares its label names up front (prom-client's rule): an undeclared label
// throws at the first inc/observe/set, so a new metric's test finds it at once.

interface Metric {
  readonly metric: prom.Metric;
}

export class Counter implements Metric {
  readonly metric: prom.Counter;
  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: string[] = [],
  ) {
    this.metric = new prom.Counter({ name, help, labelNames, registers: [] });
  }
  inc(labels: Labels = {}, by = 1): void {
    this.metric.inc(labels, by);
  }
}

export class Histogram implements Metric {
  readonly metric: prom.Histogram;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: number[],
    labelNames: string[] = [],
  ) {
    this.metric = new prom.Histogram({ name, help, buckets, labelNames, registers: [] });
  }
  observe(value: number, labels: Labels = {}): void {
    this.metric.observe(labels, value);
  }
}

/** A gauge whose samples are read when scraped (e.g. from the database); a failed read shows NaN (unlabelled) or no samples. */
export class Gauge implements Metric {
  readonly metric: prom.Gauge;
  constructor(
    readonly name: string,
    readonly help: string,
    read: () => Promise<{ labels?: Labels; value: number }[]>,
    labelNames: string[] = [],
  ) {
    this.metric = new prom.Gauge({
      name,
      help,
      labelNames,
      registers: [],
      async collect() {
        const samples = await read().catch(() => undefined);
        this.reset();
        if (!samples && labelNames.length === 0) this.set(NaN);
        for (const s of samples ?? []) this.set(s.labels ?? {}, s.value);
      },
    });
  }
}

export class Registry {
  private readonly registry = new prom.Registry();
  /** `processMetrics`: prom-client's default process and Node.js runtime metrics (on unless turned off). */
  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) prom.collectDefaultMetrics({ register: this.registry });
  }
  add<M extends Metric>(m: M): M {
    this.registry.registerMetric(m.metric);
    return m;
  }
  get contentType(): string {
    return this.registry.contentType;
  }
  render(): Promise<string> {
    return this.registry.metrics();
  }
}

/** The delivery metrics the worker records; `statusClass` maps an attempt to 2xx…5xx/timeout/network/refused. */
export function deliveryMetrics(registry: Registry) {
  return {
    attempts: registry.add(new Counter('rr_delivery_attempts_total', 'Delivery attempts by outcome class (2xx, 3xx, 4xx, 5xx, timeout, network, refused).', ['outcome'])),
    attemptSeconds: registry.add(
      new Histogram(
        'rr_delivery_attempt_duration_seconds',
        'Duration of one delivery attempt (request to response).',
        [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
      ),
    ),
    finished: registry.add(new Counter('rr_deliveries_finished_total', 'Deliveries that reached a final status, by status.', ['status'])),
  };
}
export type DeliveryMetrics = ReturnType<typeof deliveryMetrics>;

export function statusClass(r: { statusCode?: number; timedOut?: boolean; forbidden?: boolean }): string {
  if (r.forbidden) return 'refused';
  if (r.timedOut) return 'timeout';
  if (r.statusCode === undefined) return 'network';
  return `${Math.floor(r.statusCode / 100)}xx`;
}
