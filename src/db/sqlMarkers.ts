// Markers shared by both databases, apart from src/db/pglitePrepared.ts so that the Postgres
// default never loads PGlite's module.

/**
 * Put at the start of a statement that looks its rows up by primary key (`id = any($1)`): on
 * PGlite it then always runs its cached generic plan. Postgres keeps re-planning a statement whose
 * custom plans look cheaper than the generic one, and for this service's claim that planning
 * (~3 ms in WebAssembly) was most of a one-delivery claim (3.8 ms, against ~1 ms with the generic
 * plan). Not for statements with range conditions, whose best plan depends on the values.
 */
export const GENERIC_PLAN = '/* rr:generic-plan */ ';

/** Postgres' SQLSTATE when a prepared statement's result columns changed under it (DDL since it was prepared). */
export const FEATURE_NOT_SUPPORTED = '0A000';
