import type { Client } from 'pg';

/** Reconnects after a dropped listening connection this long later; what was sent meanwhile is the periodic pass's to find. */
const RECONNECT_MS = 1_000;

/**
 * Postgres LISTEN on a connection of its own (a pooled one would stop listening once released),
 * connected again after it drops (a server restart, a network cut). Notifications are hints:
 * one sent while this was not listening is lost, so every user also has a periodic pass over the
 * table it is about. Resolves once listening; the returned function stops it.
 */
export async function listenOn(connect: () => Client, channel: string, onPayload: (payload: string) => void, onError: (err: Error) => void): Promise<() => Promise<void>> {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a plain channel name: ${channel}`);
  let stopped = false;
  let client: Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  const open = async (): Promise<void> => {
    if (stopped) return;
    const c = connect();
    client = c;
    c.on('notification', (m) => {
      if (m.channel === channel) onPayload(m.payload ?? '');
    });
    // One drop, one reconnect: 'error' and 'end' may both come.
    let dropped = false;
    const drop = (err?: Error) => {
      if (dropped || stopped) return;
      dropped = true;
      if (err) onError(err);
      void c.end().catch(() => undefined);
      retry = setTimeout(() => void open().catch(() => undefined), RECONNECT_MS); // a failure drops that client too: next attempt
      retry.unref();
    };
    c.on('error', drop);
    c.on('end', () => drop(new Error('listening connection ended')));
    try {
      await c.connect();
      await c.query(`listen ${channel}`);
    } catch (err) {
      drop(err as Error); // (on a reconnect: the next attempt is scheduled)
      throw err;
    }
  };
  try {
    await open();
  } catch (err) {
    // The first connection failed: the caller hears it (and the start fails), nothing is left running.
    stopped = true;
    clearTimeout(retry);
    await client?.end().catch(() => undefined);
    throw err;
  }
  return async () => {
    stopped = true;
    clearTimeout(retry);
    await client?.end().catch(() => undefined);
  };
}
