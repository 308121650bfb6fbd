/**
 * At most `perAccount` tasks of one account at a time; the others wait in their account's own
 * first-in, first-out queue. The embedded database runs one statement at a time: without a share,
 * an account publishing with 32 requests in flight queues 32 inserts ahead of every other
 * account's one.
 */
export class AccountShare {
  private readonly accounts = new Map<string, { running: number; waiting: (() => void)[] }>();

  constructor(readonly perAccount: number) {}

  async run<T>(accountId: string, task: () => Promise<T>): Promise<T> {
    let a = this.accounts.get(accountId);
    if (!a) this.accounts.set(accountId, (a = { running: 0, waiting: [] }));
    const account = a;
    if (account.running >= this.perAccount) await new Promise<void>((go) => account.waiting.push(go));
    else account.running++;
    try {
      return await task();
    } finally {
      const next = account.waiting.shift();
      if (next)
        next(); // the turn passes on; running stays
      else if (--account.running === 0) this.accounts.delete(accountId);
    }
  }

  /** Tasks of the account running now (for tests). */
  running(accountId: string): number {
    return this.accounts.get(accountId)?.running ?? 0;
  }
}

/** Publish requests of one account handled at once per process (the rest wait their turn before touching the database). */
export const PUBLISH_SHARE_PER_ACCOUNT = 32;
