/** EMBEDDED_POSTGRES_SETTINGS: its syntax and what it may not change (src/db/embeddedPostgres.ts runs the server). */

/**
 * Settings EMBEDDED_POSTGRES_SETTINGS may not change: with `trust` authentication the server is
 * safe only while it answers on its private socket alone (a TCP listener, another socket folder or
 * looser socket permissions, another hba file would admit anyone who reaches them).
 */
export const RESERVED_SERVER_SETTINGS = [
  'listen_addresses',
  'port',
  'unix_socket_directories',
  'unix_socket_permissions',
  'unix_socket_group',
  'hba_file',
  'ident_file',
  'config_file',
  'data_directory',
] as const;

/** `name=value;name=value` (EMBEDDED_POSTGRES_SETTINGS) as settings; names in lower case, as Postgres reads them. */
export function parseServerSettings(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (text ?? '').split(';')) {
    const at = pair.indexOf('=');
    if (at > 0) out[pair.slice(0, at).trim().toLowerCase()] = pair.slice(at + 1).trim();
  }
  return out;
}

/** The settings among `settings` that EMBEDDED_POSTGRES_SETTINGS may not change. */
export const reservedServerSettings = (settings: Record<string, string>): string[] =>
  Object.keys(settings).filter((k) => (RESERVED_SERVER_SETTINGS as readonly string[]).includes(k.toLowerCase()));
