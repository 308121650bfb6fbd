// Endpoint stats on the settings page: figures and two small inline SVG charts, built with DOM
// APIs (no library, no inline styles: colours come from classes in app.css). An ES module:
// endpoints.js calls renderEndpointStats(card, stats).
import { formatTime } from './core.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const CHART_W = 300;
const CHART_H = 64;
const STATS_PERIODS = { '1h': 'last hour', '24h': 'last 24 hours', '7d': 'last 7 days' };
const BUCKET_WORDS = { 60: 'minute', 900: '15 minutes', 3600: 'hour' };

function svgEl(tag, attrs = {}, children = []) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child);
  return node;
}

function percent(rate) {
  if (rate === null || rate === undefined) return '—';
  const p = rate * 100;
  return `${p === 100 || p === 0 ? p.toFixed(0) : p.toFixed(1)} %`;
}

function ms(value) {
  if (value === null || value === undefined) return '—';
  return value >= 10000 ? `${(value / 1000).toFixed(1)} s` : `${value} ms`;
}

function bucketTime(iso, bucketSeconds) {
  const d = new Date(iso);
  const opts = bucketSeconds >= 3600 ? { weekday: 'short', hour: '2-digit', minute: '2-digit' } : { hour: '2-digit', minute: '2-digit' };
  return d.toLocaleString(undefined, opts);
}

function failureWords(failedBy) {
  const names = { '3xx': 'redirect (3xx)', '4xx': '4xx', '5xx': '5xx', timeout: 'timeout', network: 'network error', refused: 'refused address' };
  return Object.entries(failedBy || {})
    .filter(([, n]) => n > 0)
    .map(([cls, n]) => `${n} × ${names[cls] || cls}`)
    .join(', ');
}

/** Stacked bars: successes (bottom) and failures (top) per bucket, scaled to the busiest bucket. */
function outcomesChart(s) {
  const n = s.buckets.length;
  const max = Math.max(1, ...s.buckets.map((b) => b.attempts));
  const w = CHART_W / n;
  const bars = [];
  s.buckets.forEach((b, i) => {
    if (b.attempts === 0) return;
    const okH = (b.succeeded / max) * CHART_H;
    const failH = (b.failed / max) * CHART_H;
    const title = svgEl('title');
    title.textContent = `${bucketTime(b.start, s.bucketSeconds)}: ${b.succeeded} succeeded, ${b.failed} failed`;
    const group = svgEl('g', { 'data-bucket': i }, [title]);
    if (okH > 0)
      group.append(svgEl('rect', { class: 'bar-ok', x: (i * w).toFixed(2), y: (CHART_H - okH).toFixed(2), width: Math.max(0.6, w * 0.8).toFixed(2), height: okH.toFixed(2) }));
    if (failH > 0)
      group.append(
        svgEl('rect', { class: 'bar-fail', x: (i * w).toFixed(2), y: (CHART_H - okH - failH).toFixed(2), width: Math.max(0.6, w * 0.8).toFixed(2), height: failH.toFixed(2) }),
      );
    bars.push(group);
  });
  const t = s.totals;
  const label = t.attempts
    ? `Successes and failures per ${BUCKET_WORDS[s.bucketSeconds] || `${s.bucketSeconds} s`}, ${STATS_PERIODS[s.window]}: ${t.succeeded} succeeded, ${t.failed} failed; busiest ${BUCKET_WORDS[s.bucketSeconds] || 'bucket'}: ${max} attempts.`
    : `No attempts in the ${STATS_PERIODS[s.window]}.`;
  return svgEl(
    'svg',
    { viewBox: `0 0 ${CHART_W} ${CHART_H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': label, class: 'chart-svg', 'data-testid': 'chart-outcomes-svg' },
    [svgEl('line', { class: 'chart-base', x1: 0, y1: CHART_H - 0.5, x2: CHART_W, y2: CHART_H - 0.5 }), ...bars],
  );
}

/** p50 and p95 lines over the buckets that had answers (a gap where none did). */
function latencyChart(s) {
  const n = s.buckets.length;
  const max = Math.max(1, ...s.buckets.map((b) => b.p95Ms || 0));
  const w = CHART_W / n;
  const line = (key, cls) => {
    const paths = [];
    let d = '';
    s.buckets.forEach((b, i) => {
      const v = b[key];
      if (v === null || v === undefined) {
        if (d) paths.push(d);
        d = '';
        return;
      }
      const x = (i * w + w * 0.4).toFixed(2);
      const y = (CHART_H - 2 - (v / max) * (CHART_H - 4)).toFixed(2);
      d += d ? ` L${x} ${y}` : `M${x} ${y}`;
    });
    if (d) paths.push(d);
    // A lone point has no length: draw it as a dot.
    return paths.map((p) =>
      p.includes('L') ? svgEl('path', { class: cls, d: p }) : svgEl('circle', { class: `${cls}-dot`, cx: p.split(' ')[0].slice(1), cy: p.split(' ')[1], r: 1.5 }),
    );
  };
  const t = s.totals;
  const label =
    t.p50Ms === null
      ? `No responses in the ${STATS_PERIODS[s.window]}.`
      : `Response time, ${STATS_PERIODS[s.window]}: median ${ms(t.p50Ms)}, 95th percentile ${ms(t.p95Ms)}; highest 95th percentile in a ${BUCKET_WORDS[s.bucketSeconds] || 'bucket'}: ${ms(max)}.`;
  return svgEl(
    'svg',
    {
      viewBox: `0 0 ${CHART_W} ${CHART_H}`,
      preserveAspectRatio: 'none',
      role: 'img',
      'aria-label': label,
      class: 'chart-svg',
      'data-testid': 'chart-latency-svg',
      'data-max-ms': max,
    },
    [svgEl('line', { class: 'chart-base', x1: 0, y1: CHART_H - 0.5, x2: CHART_W, y2: CHART_H - 0.5 }), ...line('p95Ms', 'line-p95'), ...line('p50Ms', 'line-p50')],
  );
}

/** Fills a card's stats block from GET /v1/endpoints/:id/stats. */
export function renderEndpointStats(card, s) {
  const q = (testId) => card.querySelector(`[data-testid="${testId}"]`);
  const t = s.totals;
  q('stats-success-rate').textContent = percent(t.successRate);
  q('stats-success-rate').className = t.successRate === null ? '' : t.successRate >= 0.99 ? 'rate-good' : t.successRate >= 0.9 ? 'rate-warn' : 'rate-bad';
  q('stats-attempts').textContent = String(t.attempts);
  q('stats-latency').textContent = t.p50Ms === null ? '—' : `${ms(t.p50Ms)} / ${ms(t.p95Ms)}`;
  const failures = failureWords(t.failedBy);
  q('stats-failures').textContent = failures ? `Failures: ${failures}.` : '';
  q('stats-failures').hidden = !failures;
  q('chart-outcomes').replaceChildren(outcomesChart(s));
  q('chart-latency').replaceChildren(latencyChart(s));
  const maxLatency = Math.max(0, ...s.buckets.map((b) => b.p95Ms || 0));
  q('chart-latency-max').textContent = maxLatency ? `up to ${ms(maxLatency)}` : '';
  for (const node of card.querySelectorAll('.axis-from')) node.textContent = { '1h': '1 h ago', '24h': '24 h ago', '7d': '7 days ago' }[s.window];
  const last = q('stats-last-error');
  if (s.lastError) {
    last.replaceChildren(
      Object.assign(document.createElement('span'), { className: 'muted', textContent: 'Last error: ' }),
      Object.assign(document.createElement('span'), { className: 'break', textContent: s.lastError.error }),
      Object.assign(document.createElement('span'), { className: 'muted', textContent: ` (${formatTime(s.lastError.at)})` }),
    );
  }
  last.hidden = !s.lastError;
  card.querySelector('.card-stats').dataset.window = s.window;
}
