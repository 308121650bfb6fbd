/** A request checked and cleared to go: its abort signal, and `done()` once it has ended. */
export interface SendTicket {
  signal: AbortSignal;
  done(): void;
}

/** How long a stop is remembered: far longer than any check-to-send gap (a few event-loop turns). */
const REMEMBER_MS = 60_000;

/**
 * In-process half of "no request starts once the API has answered a delete, disable or
 * downgrade", for when the API and the worker share a process (`npm start`).
 *
 * The database check before each request is the guarantee across processes. But in one process
 * the API's queries (PGlite runs on the event loop) and a burst of sends share one thread, and a
 * request cleared by a check can take tens of milliseconds to reach the wire (a new socket waits
 * for its connect): long enough for the API to commit the delete and answer in between. So the
 * API calls `stop(endpointId)` after its commit and before it answers; a request checked before
 * that then either is on the wire already or never gets there:
 * - a sender takes `mark()` *before* its check, and `ticket(endpointId, mark)` after it: no
 *   ticket (do not send) when the endpoint was stopped after the mark, as the check may have read
 *   the endpoint before the commit;
 * - a request with a ticket that has not yet handed its bytes to the OS is aborted by the stop.
 */
export class SendStops {
  private seq = 0;
  private readonly stopped = new Map<string, { seq: number; atMs: number }>();
  private readonly live = new Map<string, Set<AbortController>>();

  /** Taken right before a check of the endpoint's state (a claim or a wave check). */
  mark(): number {
    return ++this.seq;
  }

  /** Clearance for a request to this endpoint checked after `mark`; undefined when stopped since. */
  ticket(endpointId: string, mark: number): SendTicket | undefined {
    const stop = this.stopped.get(endpointId);
    if (stop && stop.seq > mark) return undefined;
    const controller = new AbortController();
    let set = this.live.get(endpointId);
    if (!set) this.live.set(endpointId, (set = new Set()));
    set.add(controller);
    return {
      signal: controller.signal,
      done: () => {
        set.delete(controller);
        if (set.size === 0 && this.live.get(endpointId) === set) this.live.delete(endpointId);
      },
    };
  }

  /** The endpoint was deleted or disabled (or its account downgraded), and that is committed. */
  stop(endpointId: string): void {
    const nowMs = Date.now();
    for (const [id, s] of this.stopped) if (nowMs - s.atMs > REMEMBER_MS) this.stopped.delete(id);
    this.stopped.set(endpointId, { seq: ++this.seq, atMs: nowMs });
    for (const c of this.live.get(endpointId) ?? []) c.abort();
  }
}
