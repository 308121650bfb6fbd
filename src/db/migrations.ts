import type { Database } from './database';

/**
 * Ordered, append-only schema migrations (one set for PGlite and Postgres). Each runs in a
 * transaction together with its bookkeeping row; a lock keeps concurrent starters apart.
 */
const MIGRATIONS: { id: number; name: string; sql: string }[] = [
  {
    id: 1,
    name: 'core',
    sql: `
create table accounts (
  id text primary key,
  name text not null,
  plan text not null check (plan in ('free', 'paid')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create table api_keys (
  id text primary key,
  account_id text not null references accounts(id) on delete cascade,
  key_hash text not null unique,
  created_at timestamptz not null default now()
);
create table endpoints (
  id text primary key,
  account_id text not null references accounts(id) on delete cascade,
  url text not null,
  description text not null default '',
  event_types jsonb not null,
  enabled boolean not null default true,
  disabled_reason text,
  disabled_at timestamptz,
  secret text not null,
  previous_secret text,
  previous_secret_expires_at timestamptz,
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index endpoints_account on endpoints (account_id) where deleted_at is null;
create table events (
  id text primary key,
  account_id text not null references accounts(id) on delete cascade,
  event_type text not null,
  body text not null,
  idempotency_key text,
  request_hash text,
  is_test boolean not null default false,
  created_at timestamptz not null default now(),
  unique (account_id, idempotency_key)
);
create table deliveries (
  id text primary key,
  account_id text not null references accounts(id) on delete cascade,
  event_id text not null references events(id) on delete cascade,
  endpoint_id text not null references endpoints(id) on delete cascade,
  event_type text not null,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'undeliverable', 'cancelled')),
  series int not null default 1,
  dispatched_series int not null default 0,
  attempt_count int not null default 0,
  last_attempt_at timestamptz,
  next_attempt_at timestamptz,
  delivered_at timestamptz,
  finished_at timestamptz,
  final_reason text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index deliveries_account_id on deliveries (account_id, id desc);
create index deliveries_endpoint_status on deliveries (endpoint_id, status);
create index deliveries_undispatched on deliveries (updated_at) where dispatched_series < series;
create table delivery_attempts (
  delivery_id text not null references deliveries(id) on delete cascade,
  attempt int not null,
  series int not null,
  started_at timestamptz not null,
  duration_ms int not null,
  status_code int,
  error text,
  response_body text,
  primary key (delivery_id, attempt)
);
`,
  },
  {
    id: 2,
    name: 'endpoint failure tracking',
    sql: `
alter table endpoints add column failing_since timestamptz;
alter table endpoints add column last_success_at timestamptz
`,
  },
  {
    id: 3,
    name: 'pending deliveries index',
    sql: `create index deliveries_pending on deliveries (created_at) where status = 'pending'`,
  },
  {
    id: 4,
    name: 'payload retention',
    sql: `
alter table events add column purged_at timestamptz;
create index delivery_attempts_started on delivery_attempts (started_at);
create index events_created on events (created_at) where purged_at is null
`,
  },
  {
    id: 5,
    name: 'delivery owner workflow',
    // Which workflow may attempt the delivery now (a first-attempt batch, then its own retry
    // workflow): a claim, so two dispatch paths can never both send it.
    sql: `alter table deliveries add column workflow_id text`,
  },
  {
    id: 6,
    name: 'named api keys',
    // Several keys per account, each named, listed by prefix, revocable; the key itself stays a hash.
    sql: `
alter table api_keys add column name text not null default 'default';
alter table api_keys add column prefix text not null default '';
alter table api_keys add column last_used_at timestamptz;
alter table api_keys add column revoked_at timestamptz;
create index api_keys_account on api_keys (account_id) where revoked_at is null
`,
  },
  {
    id: 7,
    name: 'portal link revocation',
    // Links are stateless tokens: a revocation is remembered until the link would have expired.
    sql: `
alter table accounts add column portal_links_revoked_before timestamptz;
create table portal_link_revocations (
  link_id text primary key,
  account_id text not null references accounts(id) on delete cascade,
  revoked_at timestamptz not null default now(),
  expires_at timestamptz not null
)
`,
  },
  {
    id: 8,
    name: 'endpoint health',
    // One row per endpoint that has ever failed (no row reads as healthy): the circuit state,
    // its failure streak and probe schedule, and the auto-disable clock (was
    // endpoints.failing_since, which is no longer written). prev_state is set by every UPDATE so
    // that RETURNING shows transitions (Postgres 15 has no RETURNING old.*).
    sql: `
create table endpoint_health (
  endpoint_id text primary key references endpoints(id) on delete cascade,
  state text not null default 'healthy' check (state in ('healthy', 'failing', 'open', 'probing')),
  prev_state text,
  since timestamptz not null default now(),
  consecutive_failures int not null default 0,
  last_error text,
  last_failure_at timestamptz,
  last_success_at timestamptz,
  failing_since timestamptz,
  probe_attempt int not null default 0,
  next_probe_at timestamptz,
  probe_owner text,
  probe_lease_until timestamptz,
  updated_at timestamptz not null default now()
);
insert into endpoint_health (endpoint_id, state, since, consecutive_failures, failing_since, last_success_at)
  select id, case when failing_since is null then 'healthy' else 'failing' end, coalesce(failing_since, now()),
         case when failing_since is null then 0 else 1 end, failing_since, last_success_at
  from endpoints where failing_since is not null or last_success_at is not null
`,
  },
  {
    id: 9,
    name: 'held deliveries',
    // A wake-up of a delivery whose endpoint's circuit is open makes no request and no attempt
    // row: it is recorded here (why, since when, how often). The delivery is shown held while
    // held_at is later than its last attempt.
    sql: `
alter table deliveries add column held_reason text;
alter table deliveries add column held_detail text;
alter table deliveries add column held_since timestamptz;
alter table deliveries add column held_at timestamptz;
alter table deliveries add column held_wakeups int not null default 0
`,
  },
  {
    id: 10,
    name: 'drain lease',
    // A recovery drain (workflow drain-<endpointId>) that claimed a parked delivery sends it
    // until then; its retry workflow takes it back only after the lease has expired.
    sql: `alter table deliveries add column lease_until timestamptz`,
  },
  {
    id: 11,
    name: 'endpoint limits',
    // Per-endpoint rate limit and concurrency, enforced across every worker: endpoint_limits
    // holds the rate limiter's state (GCRA: when the next send slot is free) and a receiver's
    // 429 throttle; endpoint_slots one leased row per allowed concurrent request.
    sql: `
alter table endpoints add column rate_limit_per_second double precision check (rate_limit_per_second > 0);
alter table endpoints add column max_in_flight int check (max_in_flight > 0);
create table endpoint_limits (
  endpoint_id text primary key references endpoints(id) on delete cascade,
  next_free_at timestamptz not null default '-infinity',
  last_start timestamptz,
  last_grant int not null default 0,
  throttled_until timestamptz,
  throttle_streak int not null default 0
);
create table endpoint_slots (
  endpoint_id text not null references endpoints(id) on delete cascade,
  slot int not null,
  holder text,
  lease_until timestamptz,
  primary key (endpoint_id, slot)
)
`,
  },
  {
    id: 12,
    name: 'rate limits',
    // The API's rate-limit counters on a real Postgres, shared by every API process: the table
    // rate-limiter-flexible's RateLimiterPostgres expects (one fixed-window counter per key,
    // expire in epoch ms). Unlogged: a counter lost in a crash only forgives one window.
    sql: `
create unlogged table rate_limits (
  key varchar(255) primary key,
  points integer not null default 0,
  expire bigint
)
`,
  },
  {
    id: 13,
    name: 'endpoint stats rollup and custom headers',
    // endpoint_attempt_stats: the attempt log rolled up per endpoint and minute (one row per
    // minute that had attempts), written by recordAttempts in the same statement as the attempts,
    // so GET /v1/endpoints/:id/stats reads at most one row per minute of its window whatever the
    // number of attempts. latency: a histogram of response times over LATENCY_BOUNDS_MS
    // (src/domain/endpointStats.ts), for p50/p95. endpoints.headers: the custom request headers,
    // sealed like the signing secret (they may carry a receiver's credentials). The rollup starts
    // from the attempts of the last 8 days (LATENCY_BOUNDS_MS spelled out: a migration is frozen).
    sql: `
create table endpoint_attempt_stats (
  endpoint_id text not null references endpoints(id) on delete cascade,
  minute timestamptz not null,
  attempts int not null,
  succeeded int not null,
  failed_3xx int not null,
  failed_4xx int not null,
  failed_5xx int not null,
  failed_timeout int not null,
  failed_network int not null,
  failed_refused int not null,
  latency int[] not null,
  last_error text,
  last_error_at timestamptz,
  primary key (endpoint_id, minute)
);
create index endpoint_attempt_stats_minute on endpoint_attempt_stats (minute);
insert into endpoint_attempt_stats (endpoint_id, minute, attempts, succeeded, failed_3xx, failed_4xx, failed_5xx, failed_timeout, failed_network, failed_refused, latency, last_error, last_error_at)
select endpoint_id, minute, attempts, succeeded, f3, f4, f5, ft, fn, 0,
  (select array_agg((select count(*) from unnest(g.lb) x where x = i)::int order by i) from generate_series(1, 47) i), last_error, last_error_at
from (
  select endpoint_id, minute, count(*)::int as attempts, count(*) filter (where ok)::int as succeeded,
    count(*) filter (where status_code between 300 and 399)::int as f3, count(*) filter (where status_code between 400 and 499)::int as f4,
    count(*) filter (where not ok and (status_code >= 500 or status_code < 200))::int as f5,
    count(*) filter (where status_code is null and error like 'timed out%')::int as ft,
    count(*) filter (where status_code is null and error not like 'timed out%')::int as fn,
    array_agg(b) filter (where b is not null) as lb,
    (array_agg(left(error, 500) order by started_at desc) filter (where not ok))[1] as last_error, max(started_at) filter (where not ok) as last_error_at
  from (
    select d.endpoint_id, to_timestamp(floor(extract(epoch from a.started_at) / 60) * 60) as minute, a.started_at, a.status_code, coalesce(a.error, '') as error,
      coalesce(a.status_code between 200 and 299, false) as ok,
      case when a.status_code is not null then width_bucket(a.duration_ms, array[0,1,2,3,4,5,6,8,10,12,15,20,25,30,40,50,60,80,100,120,150,200,250,300,400,500,600,800,1000,1200,1500,2000,2500,3000,4000,5000,6000,8000,10000,12000,15000,20000,25000,30000,40000,50000,60000]) end as b
    from delivery_attempts a join deliveries d on d.id = a.delivery_id where a.started_at > now() - interval '8 days'
  ) t group by endpoint_id, minute
) g;
alter table endpoints add column headers text
`,
  },
  {
    id: 14,
    name: 'operational webhooks and recover',
    // The platform's operational endpoints are endpoints of an internal paid account (see
    // src/domain/operationalEvents.ts); rr_new_id makes time-sortable ids (src/domain/ids.ts) in
    // the SQL statements that emit operational events. One delivery per event and endpoint (as
    // publishing makes them) becomes a constraint, so recovering missing events is idempotent;
    // the account/time index finds an account's events since a time. `if not exists`: a large
    // database can have them built beforehand with CREATE INDEX CONCURRENTLY (README).
    sql: `
insert into accounts (id, name, plan) values ('acc_000000000000000000platform', 'Platform (operational webhooks)', 'paid') on conflict (id) do nothing;
create or replace function rr_new_id(prefix text) returns text language sql volatile as $$ select prefix || '_' || (select string_agg(substr('0123456789abcdefghjkmnpqrstvwxyz', (((floor(extract(epoch from now()) * 1000)::bigint >> (5 * i)) & 31)::int + 1), 1), '' order by i desc) from generate_series(0, 9) as i) || substr(replace(gen_random_uuid()::text, '-', ''), 1, 16) $$;
create unique index if not exists deliveries_event_endpoint on deliveries (event_id, endpoint_id);
create index if not exists events_account_created on events (account_id, created_at)
`,
  },
  {
    id: 15,
    name: 'attempt fences',
    // One live attempt per delivery (src/db/deliveries.ts claimForAttempt): the activity execution
    // that may send it now, and until when. A timed-out attempt still running (a zombie) finds its
    // token taken over, or its lease past, and does not send.
    sql: `
alter table deliveries add column attempt_token text;
alter table deliveries add column attempt_lease_until timestamptz
`,
  },
  {
    id: 16,
    name: 'dispatched workflow',
    // Which workflow the last confirmed start (dispatched_series) was: the operator's Web UI link
    // of a delivery that no workflow has claimed yet (src/api/mappers.ts deliveryOut).
    sql: `alter table deliveries add column dispatched_workflow_id text`,
  },
  {
    id: 17,
    name: 'attempt headers',
    // Each attempt's request headers (custom values redacted) and the kept subset of its response
    // headers (src/domain/attemptHeaders.ts), for the delivery log. Nullable, no default: a
    // catalog-only change, no rewrite of a large attempts table; older attempts stay null.
    sql: `
alter table delivery_attempts add column request_headers jsonb;
alter table delivery_attempts add column response_headers jsonb
`,
  },
  {
    id: 18,
    name: 'deliveries fillfactor',
    // Room on each page for a row's next version: an update that changes no indexed column (the
    // attempt claim, src/db/deliveries.ts claimForAttempt) then stays on its page as a HOT update
    // and writes none of the table's six indexes. A storage parameter: applies to pages written
    // from now on, no rewrite of a large table.
    sql: `alter table deliveries set (fillfactor = 70)`,
  },
  {
    id: 19,
    name: 'outbox take',
    // Separate api and worker processes: the worker that took a newly accepted delivery from the
    // outbox (src/services/acceptedOutbox.ts) holds it until then, so no other worker and no
    // reconciler pass takes it meanwhile. Nullable, not indexed: a catalog-only change, and
    // setting it keeps the update HOT.
    sql: `alter table deliveries add column taken_until timestamptz`,
  },
];

export async function migrate(db: Database): Promise<void> {
  await db.query('create table if not exists schema_migrations (id int primary key, name text not null, applied_at timestamptz not null default now())');
  for (const m of MIGRATIONS) {
    await db.transaction(
      async (tx) => {
        // Serialise concurrent starters (two workers booting at once) on real Postgres.
        if (db.kind === 'postgres') await tx.query('select pg_advisory_xact_lock(727274)');
        const done = await tx.query('select 1 from schema_migrations where id = $1', [m.id]);
        if (done.length > 0) return;
        // One statement per call: PGlite's extended protocol takes a single statement.
        for (const statement of m.sql
          .split(/;\s*\n/)
          .map((x) => x.trim())
          .filter(Boolean))
          await tx.query(statement);
        await tx.query('insert into schema_migrations (id, name) values ($1, $2)', [m.id, m.name]);
      },
      { unbounded: true },
    ); // a migration may rewrite a large table: no statement timeouts
  }
}
