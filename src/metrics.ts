/**
 * A small Prometheus registry (text format 0.0.4): counters and histograms updated in
 * process, gauges read at scrape time. One registry per process; the embedded mode's single
 * process serves the worker's and the API's metrics together.
 */
type Labels = Record<string, string>;
const key = (labels: Labels) => JSON.stringify(Object.entries(labels).sort());
const fmtLabels = (labels: Labels) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};

interface Metric {
  render(): Promise<string[]>;
}

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    const entry = this.values.get(k) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(k, entry);
  }
  async render(): Promise<string[]> {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`, ...[...this.values.values()].map((e) => `${this.name}${fmtLabels(e.labels)} ${e.value}`)];
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {}
  observe(value: number, labels: Labels = {}): void {
    const k = key(labels);
    const s = this.series.get(k) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.buckets.forEach((b, i) => {
      if (value <= b) s.counts[i]++;
    });
    s.sum += value;
    s.count++;
    this.series.set(k, s);
  }
  async render(): Promise<string[]> {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket${fmtLabels({ ...s.labels, le: String(b) })} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${fmtLabels({ ...s.labels, le: '+Inf' })} ${s.count}`);
      lines.push(`${this.name}_sum${fmtLabels(s.labels)} ${s.sum}`, `${this.name}_count${fmtLabels(s.labels)} ${s.count}`);
    }
    return lines;
  }
}

/** A gauge whose samples are read when scraped (e.g. from the database). */
export class Gauge implements Metric {
  constructor(readonly name: string, readonly help: string, private readonly read: () => Promise<{ labels?: Labels; value: number }[]>) {}
  async render(): Promise<string[]> {
    const samples = await this.read().catch(() => []);
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, ...samples.map((s) => `${this.name}${fmtLabels(s.labels ?? {})} ${s.value}`)];
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];
  add<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }
  async render(): Promise<string> {
    return (await Promise.all(this.metrics.map((m) => m.render()))).flat().join('\n') + '\n';
  }
}

/** The delivery metrics the worker records; `statusClass` maps an attempt to 2xx…5xx/timeout/network/refused. */
export function deliveryMetrics(registry: Registry) {
  return {
    attempts: registry.add(new Counter('rr_delivery_attempts_total', 'Delivery attempts by outcome class (2xx, 3xx, 4xx, 5xx, timeout, network, refused).')),
    attemptSeconds: registry.add(new Histogram('rr_delivery_attempt_duration_seconds', 'Duration of one delivery attempt (request to response).', [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30])),
    finished: registry.add(new Counter('rr_deliveries_finished_total', 'Deliveries that reached a final status, by status.')),
  };
}
export type DeliveryMetrics = ReturnType<typeof deliveryMetrics>;

export function statusClass(r: { statusCode?: number; timedOut?: boolean; forbidden?: boolean }): string {
  if (r.forbidden) return 'refused';
  if (r.timedOut) return 'timeout';
  if (r.statusCode === undefined) return 'network';
  return `${Math.floor(r.statusCode / 100)}xx`;
}
