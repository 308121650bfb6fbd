import type { Database } from '../db/database';
import { takeAccepted, undispatched } from '../db/deliveries';
import type { Logger } from '../logger';
import type { DispatchTarget } from './dispatcher';

/** The Postgres channel on which API processes announce newly accepted deliveries to the workers. */
export const ACCEPTED_CHANNEL = 'rr_accepted';
/** A notification's payload is at most 8,000 bytes: each of ours (account-grouped delivery ids, see payloads) at most this many. */
const PAYLOAD_BYTES = 7_500;
/**
 * How long a taken delivery is the taker's alone. Within it a worker sends it (its claim then
 * holds it), queues it at most INLINE_MAX_WAIT_MS, or hands it to a batch workflow; if the worker
 * dies first, the reconciler of another takes it once this has passed.
 */
export const TAKE_HOLD_MS = 15_000;

/**
 * The API side of the outbox (separate api and worker processes, DISPATCH_OUTBOX): the accepted
 * deliveries are committed already (the durable acceptance); this only tells the workers, by
 * Postgres NOTIFY, which ids to take now. The ids of one turn of the event loop go in one
 * notification (several when they do not fit). A notification that fails or finds no worker
 * listening is not retried: the workers' reconciler takes those deliveries after its grace.
 */
export class AcceptedNotifier {
  private pending = new Map<string, string[]>();
  private scheduled = false;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
  ) {}

  notify(targets: DispatchTarget[]): void {
    for (const t of targets) {
      const accountId = t.meta?.accountId ?? '';
      const ids = this.pending.get(accountId);
      if (ids) ids.push(t.id);
      else this.pending.set(accountId, [t.id]);
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const byAccount = this.pending;
      this.pending = new Map();
      for (const payload of payloads(byAccount))
        this.db.query('select pg_notify($1, $2)', [ACCEPTED_CHANNEL, payload]).catch((err: Error) => this.log.warn('dispatch.notify_failed', { error: err.message }));
    });
  }
}

/**
 * Payloads of `account:id,id;account:id` (ids and account ids are ASCII), each under
 * PAYLOAD_BYTES: an account's ids may continue in the next one.
 */
export function payloads(byAccount: Map<string, string[]>): string[] {
  const out: string[] = [];
  let current = '';
  let currentAccount: string | undefined;
  for (const [accountId, ids] of byAccount) {
    for (const id of ids) {
      const piece = currentAccount === accountId ? `,${id}` : `${current ? ';' : ''}${accountId}:${id}`;
      if (current && current.length + piece.length > PAYLOAD_BYTES) {
        out.push(current);
        current = `${accountId}:${id}`;
      } else current += piece;
      currentAccount = accountId;
    }
  }
  if (current) out.push(current);
  return out;
}

/** The ids of each account in a payload. */
export function parsePayload(payload: string): Map<string, string[]> {
  const byAccount = new Map<string, string[]>();
  for (const group of payload.split(';')) {
    const colon = group.indexOf(':');
    if (colon < 0) continue;
    const ids = group
      .slice(colon + 1)
      .split(',')
      .filter(Boolean);
    const accountId = group.slice(0, colon);
    byAccount.set(accountId, [...(byAccount.get(accountId) ?? []), ...ids]);
  }
  return byAccount;
}

/** Most ids in one take (one statement), and the fewest an account with ids and room gets in it. */
const TAKE_AT_MOST = 500;
const MIN_SHARE = 20;
/** Announced ids kept per account while it is not taken from. */
const PENDING_PER_ACCOUNT = 10_000;

/** Where taken deliveries wait for room: the worker's InlineFirstAttempts. */
export interface TakerBacklog {
  /** Undefined while the account's deliveries waiting in the process are few; else resolves once they are. */
  backlog(accountId: string): Promise<void> | undefined;
}

/**
 * The worker side: listens on ACCEPTED_CHANNEL, takes the announced deliveries that no other
 * worker took (takeAccepted: each is taken once) and dispatches them as the API of `npm start`
 * does, so their first attempts are sent from this worker (DISPATCH_INLINE) without a batch
 * workflow. An account with a long backlog waiting in this process is not taken from until it
 * shrinks (its ids stay announced here, committed in the database, and free for another worker
 * with room): a flood is taken at the rate it is sent, as `npm start` holds the publishes, instead
 * of overflowing into batch workflows. The other accounts' deliveries are taken meanwhile.
 */
export class AcceptedTaker {
  /** Announced ids per account, oldest first, not yet taken. */
  private readonly pending = new Map<string, string[]>();
  /** Accounts whose oldest announced ids were let go here (PENDING_PER_ACCOUNT): refilled from the database once their list is empty. */
  private readonly overflowed = new Set<string>();
  private taking?: Promise<void>;
  private stopListening?: () => Promise<void>;
  private stopped = false;
  /** Ends the wait of a take loop whose accounts all have a backlog (new ids, or a stop). */
  private wake?: () => void;
  /** Each held account's wait for its backlog to shrink, one at a time. */
  private readonly backlogs = new Map<string, Promise<void>>();
  /** Dispatches of taken deliveries under way (a stop waits for them to be queued or handed off). */
  private readonly dispatching = new Set<Promise<void>>();

  constructor(
    private readonly db: Database,
    private readonly dispatcher: { dispatchAll(targets: DispatchTarget[]): Promise<void> },
    private readonly log: Logger,
    private readonly room?: TakerBacklog,
    private readonly holdMs = TAKE_HOLD_MS,
    private readonly pendingPerAccount = PENDING_PER_ACCOUNT,
  ) {}

  /** Starts listening (resolves once it does); false when the database cannot (PGlite). */
  async start(): Promise<boolean> {
    if (!this.db.listen) return false;
    this.stopListening = await this.db.listen(
      ACCEPTED_CHANNEL,
      (payload) => this.offer(parsePayload(payload)),
      (err) => this.log.warn('dispatch.listen_failed', { error: err.message }),
    );
    return true;
  }

  /** Deliveries announced as accepted, per account: taken on the next pass. */
  offer(byAccount: Map<string, string[]>): void {
    if (this.stopped) return;
    for (const [accountId, ids] of byAccount) {
      const list = this.pending.get(accountId) ?? [];
      list.push(...ids);
      // Every worker hears every announcement: past this many an account's oldest are let go here
      // (still committed and undispatched: another worker takes them, or the reconciler).
      if (list.length > this.pendingPerAccount) {
        list.splice(0, list.length - this.pendingPerAccount);
        this.overflowed.add(accountId);
      }
      this.pending.set(accountId, list);
    }
    this.wake?.(); // new ids, maybe of an account with room
    this.taking ??= this.takeAll().finally(() => (this.taking = undefined));
  }

  /** Announced ids not yet taken (for tests). */
  get waiting(): number {
    let n = 0;
    for (const ids of this.pending.values()) n += ids.length;
    return n;
  }

  private async takeAll(): Promise<void> {
    while (this.pending.size && !this.stopped) {
      // A share of the take for each account with room, oldest ids first; an account that keeps
      // ids goes to the back, so the next take starts with another.
      const ids: string[] = [];
      const held: Promise<void>[] = [];
      const share = Math.max(MIN_SHARE, Math.ceil(TAKE_AT_MOST / this.pending.size));
      for (const [accountId, list] of [...this.pending]) {
        if (ids.length >= TAKE_AT_MOST) break;
        const backlog = this.backlogOf(accountId);
        if (backlog) {
          held.push(backlog);
          continue;
        }
        if (!list.length && this.overflowed.has(accountId)) await this.refill(accountId, list);
        ids.push(...list.splice(0, Math.min(share, TAKE_AT_MOST - ids.length)));
        this.pending.delete(accountId);
        // An account whose ids were let go stays, to be refilled, until the database has no more.
        if (list.length || this.overflowed.has(accountId)) this.pending.set(accountId, list);
      }
      if (!ids.length) {
        // Every account with ids announced has a backlog here: wait for one to shrink, new ids, or a stop.
        await Promise.race([...held, new Promise<void>((resolve) => (this.wake = resolve))]);
        this.wake = undefined;
        continue;
      }
      try {
        const taken = await takeAccepted(this.db, ids, this.holdMs);
        // Not awaited: the next ids are taken while these wait for room or are sent.
        if (taken.length) {
          const dispatched = this.dispatcher
            .dispatchAll(taken)
            .catch((err: Error) => this.log.warn('dispatch.deferred', { deliveries: taken.length, error: err.message }))
            .finally(() => this.dispatching.delete(dispatched));
          this.dispatching.add(dispatched);
        }
      } catch (err) {
        // Left undispatched: the reconciler takes them after its grace.
        this.log.warn('dispatch.take_failed', { deliveries: ids.length, error: (err as Error).message });
      }
    }
  }

  /**
   * The ids let go of an account that has room again, read back from the database (oldest first,
   * not taken, not under an attempt's lease): without it a flood past PENDING_PER_ACCOUNT waited
   * for the reconciler (fan-out 20 on the Postgres-backed stack: 163 instead of ~5,000 deliveries/s).
   */
  private async refill(accountId: string, list: string[]): Promise<void> {
    try {
      const found = await undispatched(this.db, 0, this.pendingPerAccount, accountId);
      list.push(...found.map((t) => t.id));
      if (found.length < this.pendingPerAccount) this.overflowed.delete(accountId);
    } catch (err) {
      this.overflowed.delete(accountId); // left to the reconciler, as before
      this.log.warn('dispatch.refill_failed', { accountId, error: (err as Error).message });
    }
  }

  /** Stops listening and taking; what was announced and not taken is the reconciler's. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.stopListening?.();
    await this.taking;
    await Promise.all([...this.dispatching]);
  }

  private backlogOf(accountId: string): Promise<void> | undefined {
    const known = this.backlogs.get(accountId);
    if (known) return known;
    const backlog = this.room?.backlog(accountId);
    if (!backlog) return undefined;
    const settled = backlog.finally(() => this.backlogs.delete(accountId));
    this.backlogs.set(accountId, settled);
    return settled;
  }
}
