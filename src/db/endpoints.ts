import type { EventType } from '../domain/eventCatalog';
import { newId } from '../domain/ids';
import { newSigningSecret } from '../domain/signing';
import type { Database, Queryable } from './database';
import { syncEndpointLimits } from './endpointLimits';
import type { CustomHeaders } from '../domain/customHeaders';
import { openHeaders, openSecret, sealHeaders, sealSecret } from './endpointSecrets';
import { emitOperational, ENDPOINT_CHANGED_DATA, isoSql } from './operational';

export interface EndpointRow {
  id: string;
  account_id: string;
  url: string;
  description: string;
  event_types: EventType[];
  enabled: boolean;
  disabled_reason: string | null;
  disabled_at: Date | null;
  /** Plaintext here; the table holds an `enc:v1:` envelope (see endpointSecrets.ts). */
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  deleted_at: Date | null;
  failing_since: Date | null;
  last_success_at: Date | null;
  rate_limit_per_second: number | null;
  max_in_flight: number | null;
  /** Custom request headers, opened here; the table holds them sealed (see endpointSecrets.ts sealHeaders). */
  headers: CustomHeaders;
  created_at: Date;
  updated_at: Date;
}

export async function createEndpoint(
  db: Queryable,
  accountId: string,
  input: {
    url: string;
    eventTypes: EventType[];
    description?: string;
    enabled?: boolean;
    rateLimitPerSecond?: number | null;
    maxInFlight?: number | null;
    headers?: CustomHeaders | null;
  },
): Promise<EndpointRow> {
  const id = newId('ep');
  // endpoint.created is emitted by the same statement (src/db/operational.ts).
  const [row] = await db.query<EndpointRow>(
    `with e as (
       insert into endpoints (id, account_id, url, description, event_types, enabled, secret, rate_limit_per_second, max_in_flight, headers)
       values ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10) returning *
     ), ops_src as (
       select e.account_id, 'endpoint.created'::text as event_type, ${ENDPOINT_CHANGED_DATA} as data from e
     ), ${emitOperational('ops_src')}
     select * from e`,
    [
      id,
      accountId,
      input.url,
      input.description ?? '',
      JSON.stringify(input.eventTypes),
      input.enabled ?? true,
      sealSecret(id, newSigningSecret()),
      input.rateLimitPerSecond ?? null,
      input.maxInFlight ?? null,
      sealHeaders(id, input.headers),
    ],
  );
  if (row.rate_limit_per_second !== null || row.max_in_flight !== null)
    await syncEndpointLimits(db, id, { rateLimitPerSecond: row.rate_limit_per_second, maxInFlight: row.max_in_flight });
  return opened(row);
}

/**
 * Creates an endpoint unless the account already has `max` live ones (deleted ones do not count;
 * 0 = no cap): then undefined. The account row is locked first (FOR NO KEY UPDATE: it does not
 * block the inserts that reference the account), so concurrent creates for one account count one
 * after the other, each in a snapshot that sees the others' endpoints, and the cap holds.
 */
export async function createEndpointWithinCap(db: Database, accountId: string, input: Parameters<typeof createEndpoint>[2], max: number): Promise<EndpointRow | undefined> {
  if (max <= 0) return createEndpoint(db, accountId, input);
  return db.transaction(async (tx) => {
    await tx.query('select 1 from accounts where id = $1 for no key update', [accountId]);
    const [{ n }] = await tx.query<{ n: number }>('select count(*)::int as n from endpoints where account_id = $1 and deleted_at is null', [accountId]);
    return n >= max ? undefined : createEndpoint(tx, accountId, input);
  });
}

/** A row as the code uses it: secrets decrypted. */
function opened(row: EndpointRow): EndpointRow;
function opened(row: EndpointRow | undefined): EndpointRow | undefined;
function opened(row: EndpointRow | undefined): EndpointRow | undefined {
  return (
    row && {
      ...row,
      secret: openSecret(row.id, row.secret),
      previous_secret: openSecret(row.id, row.previous_secret),
      headers: openHeaders(row.id, row.headers as unknown as string | null),
    }
  );
}

/** Only live endpoints of this account: another account's id reads as "not found". */
export async function getEndpoint(db: Queryable, accountId: string, id: string): Promise<EndpointRow | undefined> {
  const [row] = await db.query<EndpointRow>('select * from endpoints where id = $1 and account_id = $2 and deleted_at is null', [id, accountId]);
  return opened(row);
}

export async function listEndpoints(db: Queryable, accountId: string): Promise<EndpointRow[]> {
  return (await db.query<EndpointRow>('select * from endpoints where account_id = $1 and deleted_at is null order by id', [accountId])).map((r) => opened(r));
}

export async function updateEndpoint(
  db: Queryable,
  accountId: string,
  id: string,
  patch: {
    url?: string;
    eventTypes?: EventType[];
    description?: string;
    enabled?: boolean;
    rateLimitPerSecond?: number | null;
    maxInFlight?: number | null;
    headers?: CustomHeaders | null;
  },
): Promise<EndpointRow | undefined> {
  const [row] = await db.query<EndpointRow>(
    `with before as (
       select id, enabled from endpoints where id = $1 and account_id = $2 and deleted_at is null
     ), e as (
     update endpoints set
       url = coalesce($3, url),
       event_types = coalesce($4::jsonb, event_types),
       description = coalesce($5, description),
       enabled = coalesce($6, enabled),
       disabled_reason = case when $6::boolean is null then disabled_reason when $6 then null else 'disabled by the account' end,
       disabled_at = case when $6::boolean is null then disabled_at when $6 then null else now() end,
       failing_since = case when $6::boolean then null else failing_since end,
       rate_limit_per_second = case when $7 then $8::double precision else rate_limit_per_second end,
       max_in_flight = case when $9 then $10::int else max_in_flight end,
       headers = case when $11 then $12::text else headers end,
       updated_at = now()
     where id = $1 and account_id = $2 and deleted_at is null returning *
     ), ops_src as (
       -- endpoint.updated, and endpoint.disabled when this disabled it (src/db/operational.ts)
       select e.account_id, 'endpoint.updated'::text as event_type, ${ENDPOINT_CHANGED_DATA} as data from e
       union all
       select e.account_id, 'endpoint.disabled', json_build_object('accountId', e.account_id, 'endpointId', e.id, 'url', e.url, 'trigger', 'manual', 'reason', e.disabled_reason, 'disabledAt', ${isoSql('e.disabled_at')})
       from e join before b on b.id = e.id where b.enabled and not e.enabled
     ), ${emitOperational('ops_src')}
     select * from e`,
    [
      id,
      accountId,
      patch.url ?? null,
      patch.eventTypes ? JSON.stringify(patch.eventTypes) : null,
      patch.description ?? null,
      patch.enabled ?? null,
      patch.rateLimitPerSecond !== undefined,
      patch.rateLimitPerSecond ?? null,
      patch.maxInFlight !== undefined,
      patch.maxInFlight ?? null,
      patch.headers !== undefined,
      patch.headers === undefined ? null : sealHeaders(id, patch.headers),
    ],
  );
  if (row && (patch.rateLimitPerSecond !== undefined || patch.maxInFlight !== undefined))
    await syncEndpointLimits(db, id, { rateLimitPerSecond: row.rate_limit_per_second, maxInFlight: row.max_in_flight });
  // Re-enabled: a fresh start for its health record (circuit closed, streak and auto-disable clock reset).
  if (row && patch.enabled === true) await db.query('delete from endpoint_health where endpoint_id = $1', [id]);
  return opened(row);
}

export async function softDeleteEndpoint(db: Queryable, accountId: string, id: string): Promise<boolean> {
  const rows = await db.query(
    `with e as (
       update endpoints set deleted_at = now(), enabled = false, updated_at = now() where id = $1 and account_id = $2 and deleted_at is null returning id, account_id, url
     ), ops_src as (
       select e.account_id, 'endpoint.deleted'::text as event_type, json_build_object('accountId', e.account_id, 'endpointId', e.id, 'url', e.url) as data from e
     ), ${emitOperational('ops_src')}
     select id from e`,
    [id, accountId],
  );
  return rows.length > 0;
}

/** New secret; the old one keeps signing until `overlapMs` from now. */
export async function rotateSecret(db: Queryable, accountId: string, id: string, overlapMs: number): Promise<EndpointRow | undefined> {
  const [row] = await db.query<EndpointRow>(
    `update endpoints set previous_secret = secret, secret = $3,
       previous_secret_expires_at = now() + ($4::bigint * interval '1 millisecond'), updated_at = now()
     where id = $1 and account_id = $2 and deleted_at is null returning *`,
    [id, accountId, sealSecret(id, newSigningSecret()), overlapMs],
  );
  return opened(row);
}

/**
 * Secrets that sign right now, newest first, decrypted. `row` holds them as stored (the
 * attempt context of claimForAttempt), bound to `endpointId`.
 */
export function activeSecrets(row: Pick<EndpointRow, 'secret' | 'previous_secret' | 'previous_secret_expires_at'>, now: Date, endpointId: string): string[] {
  const secrets = [openSecret(endpointId, row.secret)];
  if (row.previous_secret && row.previous_secret_expires_at && row.previous_secret_expires_at > now) secrets.push(openSecret(endpointId, row.previous_secret));
  return secrets;
}

/** Disables an enabled endpoint with a reason (410 Gone, auto-disable) and emits endpoint.disabled in the same statement; false if it already was. */
export async function disableEndpoint(db: Queryable, endpointId: string, reason: string, at: Date): Promise<boolean> {
  const rows = await db.query(
    `with e as (
       update endpoints set enabled = false, disabled_reason = $2, disabled_at = $3, updated_at = now() where id = $1 and enabled returning id, account_id, url, disabled_reason, disabled_at
     ), ops_src as (
       select e.account_id, 'endpoint.disabled'::text as event_type,
              json_build_object('accountId', e.account_id, 'endpointId', e.id, 'url', e.url, 'trigger', 'automatic', 'reason', e.disabled_reason, 'disabledAt', ${isoSql('e.disabled_at')}) as data
       from e
     ), ${emitOperational('ops_src')}
     select id from e`,
    [endpointId, reason, at],
  );
  return rows.length > 0;
}
