/** Retries a database write for up to ~15 s (server restart, failover) before giving up. */
export async function persistently<T>(write: () => Promise<T>): Promise<T> {
  for (let delay = 100; ; delay *= 2) {
    try {
      return await write();
    } catch (err) {
      if (delay > 8_000) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
