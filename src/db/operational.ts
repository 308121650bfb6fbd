import { PLATFORM_ACCOUNT_ID } from '../domain/operationalEvents';

/** The internal account of the operational endpoints, as an SQL literal. */
export const PLATFORM = `'${PLATFORM_ACCOUNT_ID}'`;

const SUBSCRIBED = (type: string) => `o.account_id = ${PLATFORM} and o.deleted_at is null and o.event_types ? ${type}`;

/**
 * Operational events, emitted by the statement that makes the state change they report: CTEs
 * to append to that statement's WITH list. `src` names an earlier CTE with the columns
 * (account_id, event_type, data json); each of its rows becomes one event of the platform
 * account and one pending delivery per operational endpoint subscribed to its type, committed
 * atomically with the change (so a crash right after it loses nothing: the reconciler starts
 * whatever was not started). Rows about the platform's own endpoints are dropped (an
 * operational delivery failing never reports on itself), and so is an event no operational
 * endpoint subscribes to (a disabled one counts: recovering it finds the events it missed).
 * `name` keeps two emissions of one statement apart.
 */
export function emitOperational(src: string, name = 'ops'): string {
  return `${name}_ev as (
    insert into events (id, account_id, event_type, body, created_at)
    select rr_new_id('evt'), ${PLATFORM}, s.event_type,
           json_build_object('eventType', s.event_type, 'data', s.data, 'createdAt', m.ms, 'updatedAt', m.ms)::text, now()
    from ${src} s cross join (select floor(extract(epoch from now()) * 1000)::bigint as ms) m
    where s.account_id <> ${PLATFORM} and exists (select 1 from endpoints o where ${SUBSCRIBED('s.event_type')}) -- disabled ones too: recover's "missing" finds it
    returning id, event_type
  ), ${name}_dl as (
    insert into deliveries (id, account_id, event_id, endpoint_id, event_type)
    select rr_new_id('dlv'), ${PLATFORM}, e.id, o.id, e.event_type
    from ${name}_ev e join endpoints o on ${SUBSCRIBED('e.event_type')} and o.enabled
    returning id
  )`;
}

/** `data` of the endpoint.created / endpoint.updated events, from an endpoints row aliased `e`. */
export const ENDPOINT_CHANGED_DATA = `json_build_object('accountId', e.account_id, 'endpointId', e.id, 'url', e.url, 'description', e.description, 'eventTypes', e.event_types, 'enabled', e.enabled)`;

/** An ISO 8601 string (UTC, milliseconds) of a timestamptz, as JavaScript's toISOString writes it. */
export const isoSql = (col: string) => `to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
