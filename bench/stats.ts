/**
 * Endpoint stats at 1 million attempts: seeds one endpoint's attempt log over the last 7 days
 * through the real write path (recordAttempts, which keeps the per-minute rollup), then times
 * GET /v1/endpoints/:id/stats's query (src/db/endpointStats.ts) for each window, next to the same
 * figures computed straight from the attempt log (deliveries ⋈ delivery_attempts, exact
 * percentile_cont) for comparison.
 *
 *   npx tsx bench/stats.ts                                  # embedded PGlite, in memory
 *   npx tsx bench/stats.ts postgres://postgres@127.0.0.1:54329/rr_webhooks_test   # a real Postgres (a fresh database on that server)
 *
 * STATS_ATTEMPTS (default 1000000), STATS_BATCH (attempts per recordAttempts statement, default 1000).
 */
import { randomBytes } from 'node:crypto';
import { Client as PgClient } from 'pg';
import { openPglite, openPostgres, type Database } from '../src/db/database';
import { recordAttempts, type AttemptRecord } from '../src/db/deliveries';
import { useSecretKeyRing } from '../src/db/endpointSecrets';
import { endpointStats } from '../src/db/endpointStats';
import { migrate } from '../src/db/migrations';
import { STATS_WINDOWS, windowBuckets, type StatsWindow } from '../src/domain/endpointStats';

const TOTAL = Number(process.env.STATS_ATTEMPTS ?? 1_000_000);
const BATCH = Number(process.env.STATS_BATCH ?? 1_000);
const ATTEMPTS_PER_DELIVERY = 4;
const WRITE_PATH = Math.min(TOTAL, Number(process.env.STATS_WRITE_PATH ?? 20_000));
const RUNS = 5;

async function open(): Promise<{ db: Database; label: string; drop(): Promise<void> }> {
  const server = process.argv[2];
  if (!server) {
    const db = await openPglite(undefined);
    return { db, label: 'PGlite (in memory)', drop: () => db.close() };
  }
  const name = `rr_stats_bench_${randomBytes(4).toString('hex')}`;
  const admin = new PgClient({ connectionString: server });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(server);
  url.pathname = `/${name}`;
  const db = await openPostgres(url.toString());
  const version = (await db.query<{ v: string }>("select current_setting('server_version') as v"))[0].v;
  return {
    db,
    label: `Postgres ${version}`,
    async drop() {
      await db.close();
      const c = new PgClient({ connectionString: server });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** Like the bulk insert: response times around 80 ms with a long tail; 95 % 2xx, 3 % 503, 1 % timeouts, 1 % refused connections. */
function attemptAt(i: number, startMs: number, spanMs: number): Omit<AttemptRecord, 'deliveryId' | 'series'> {
  const startedAt = new Date(startMs + Math.floor((i / TOTAL) * spanMs));
  const r = i % 100;
  const ms = Math.round(40 + 80 * Math.exp(((i * 104_729) % 1000) / 400) - 80);
  if (r >= 95 && r < 98) return { startedAt, durationMs: ms, statusCode: 503, error: 'HTTP 503', outcome: '5xx' };
  if (r < 95) return { startedAt, durationMs: ms, statusCode: 200, delivered: true, outcome: '2xx' };
  if (r === 98) return { startedAt, durationMs: 5000, error: 'timed out after 5000 ms', outcome: 'timeout' };
  return { startedAt, durationMs: 1, error: 'ECONNREFUSED: connect ECONNREFUSED', outcome: 'network' };
}

async function time(fn: () => Promise<unknown>): Promise<{ medianMs: number; minMs: number }> {
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn();
    runs.push(performance.now() - t);
  }
  runs.sort((a, b) => a - b);
  return { medianMs: Math.round(runs[Math.floor(RUNS / 2)] * 10) / 10, minMs: Math.round(runs[0] * 10) / 10 };
}

/** The same figures straight from the attempt log: what the rollup saves. */
async function fromLog(db: Database, endpointId: string, window: StatsWindow, nowMs: number) {
  const { fromMs, toMs, bucketMs } = windowBuckets(window, nowMs);
  return db.query(
    `select floor((extract(epoch from a.started_at) - extract(epoch from $2::timestamptz)) / $4)::int as b, count(*)::int as attempts,
       count(*) filter (where a.status_code between 200 and 299)::int as succeeded,
       percentile_cont(0.5) within group (order by a.duration_ms) filter (where a.status_code is not null) as p50,
       percentile_cont(0.95) within group (order by a.duration_ms) filter (where a.status_code is not null) as p95
     from deliveries d join delivery_attempts a on a.delivery_id = d.id
     where d.endpoint_id = $1 and a.started_at >= $2 and a.started_at < $3 group by 1`,
    [endpointId, new Date(fromMs), new Date(toMs), bucketMs / 1000],
  );
}

async function main() {
  useSecretKeyRing(null);
  const { db, label, drop } = await open();
  try {
    await migrate(db);
    const nowMs = Date.now();
    const spanMs = 7 * 86_400_000 - 60_000;
    const startMs = nowMs - spanMs;
    await db.query(`insert into accounts (id, name, plan) values ('acc_bench', 'bench', 'paid')`);
    for (const id of ['ep_bench', 'ep_other']) {
      await db.query(`insert into endpoints (id, account_id, url, event_types, secret) values ($1, 'acc_bench', 'https://example.com/hooks', '["referrer_added"]', 'whsec_x')`, [
        id,
      ]);
    }
    await db.query(`insert into events (id, account_id, event_type, body) values ('evt_bench', 'acc_bench', 'referrer_added', '{}')`);
    const deliveries = Math.ceil(TOTAL / ATTEMPTS_PER_DELIVERY);
    await db.query(
      `insert into deliveries (id, account_id, event_id, endpoint_id, event_type, status, dispatched_series)
       select 'dlv_' || lpad(g::text, 10, '0'), 'acc_bench', 'evt_bench', case when g % 10 = 0 then 'ep_other' else 'ep_bench' end, 'referrer_added', 'delivered', 1
       from generate_series(1, $1) g`,
      [deliveries],
    );
    // The bulk of the log is written in one statement, then the rollup is built the way an
    // upgrade builds it (migration 13's backfill, the same buckets as recordAttempts); the last
    // WRITE_PATH attempts go through recordAttempts, timed.
    const bulk = TOTAL - WRITE_PATH;
    let t = performance.now();
    await db.query(
      `insert into delivery_attempts (delivery_id, attempt, series, started_at, duration_ms, status_code, error)
       select 'dlv_' || lpad(((g % $2) + 1)::text, 10, '0'), g / $2 + 1, 1, to_timestamp(($3::double precision + g * $4::double precision / $1) / 1000),
         case when g % 100 = 98 then 5000 when g % 100 = 99 then 1 else round(40 + 80 * exp(((g::bigint * 104729) % 1000) / 400.0) - 80)::int end,
         case when g % 100 < 95 then 200 when g % 100 < 98 then 503 end,
         case when g % 100 between 95 and 97 then 'HTTP 503' when g % 100 = 98 then 'timed out after 5000 ms' when g % 100 = 99 then 'ECONNREFUSED: connect ECONNREFUSED' end
       from generate_series(0, $1::int - 1) g`,
      [bulk, deliveries, startMs, spanMs * (bulk / TOTAL)],
    );
    await db.query('update deliveries d set attempt_count = x.n from (select delivery_id, count(*)::int as n from delivery_attempts group by 1) x where d.id = x.delivery_id');
    const bulkSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    await db.query('delete from schema_migrations where id = 13');
    await db.query('drop table endpoint_attempt_stats');
    await db.query('alter table endpoints drop column headers');
    await migrate(db);
    const backfillSeconds = (performance.now() - t) / 1000;
    const seedStart = performance.now();
    for (let from = bulk; from < TOTAL; from += BATCH) {
      const batch: AttemptRecord[] = [];
      for (let i = from; i < Math.min(TOTAL, from + BATCH); i++) {
        batch.push({ ...attemptAt(i, startMs, spanMs), deliveryId: `dlv_${String((i % deliveries) + 1).padStart(10, '0')}`, series: 1 });
      }
      await recordAttempts(db, batch);
    }
    const seedSeconds = (performance.now() - seedStart) / 1000;
    await db.query('analyze');
    const [{ attempts }] = await db.query<{ attempts: number }>('select count(*)::int as attempts from delivery_attempts');
    const [{ rows }] = await db.query<{ rows: number }>(`select count(*)::int as rows from endpoint_attempt_stats where endpoint_id = 'ep_bench'`);

    console.log(`\n${label}: ${attempts} attempts over 7 days (${Math.round(attempts * 0.9)} of them to the measured endpoint), ${rows} rollup rows for it`);
    console.log(`bulk insert of ${bulk} attempts: ${bulkSeconds.toFixed(1)} s; rollup backfill (migration 13): ${backfillSeconds.toFixed(1)} s`);
    console.log(
      `last ${WRITE_PATH} attempts through recordAttempts (attempt log + rollup), ${BATCH} per statement: ${seedSeconds.toFixed(1)} s (${Math.round(WRITE_PATH / seedSeconds)} attempts/s)`,
    );
    console.log('| window | buckets | rollup (median of 5) | from the attempt log (median of 5) | attempts in window |');
    console.log('|---|---|---|---|---|');
    for (const window of Object.keys(STATS_WINDOWS) as StatsWindow[]) {
      const stats = await endpointStats(db, 'ep_bench', window, nowMs);
      const rollup = await time(() => endpointStats(db, 'ep_bench', window, nowMs));
      const raw = await time(() => fromLog(db, 'ep_bench', window, nowMs));
      console.log(
        `| ${window} | ${stats.buckets.length} | ${rollup.medianMs} ms | ${raw.medianMs} ms | ${stats.totals.attempts} (p50 ${stats.totals.p50Ms} ms, p95 ${stats.totals.p95Ms} ms) |`,
      );
    }
    const exact = await db.query<{ p50: number; p95: number }>(
      `select percentile_cont(0.5) within group (order by a.duration_ms) as p50, percentile_cont(0.95) within group (order by a.duration_ms) as p95
       from deliveries d join delivery_attempts a on a.delivery_id = d.id where d.endpoint_id = 'ep_bench' and a.status_code is not null`,
    );
    console.log(`exact over the 7 days: p50 ${Math.round(exact[0].p50)} ms, p95 ${Math.round(exact[0].p95)} ms`);
  } finally {
    await drop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
