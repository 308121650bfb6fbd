/** Most requests outstanding to one origin (scheme, host and port) from one worker. */
export const REQUESTS_PER_ORIGIN = 50;

type Release = () => void;

/**
 * Caps the requests outstanding per origin, with a FIFO wait for a slot. The HTTP agent itself is
 * unbounded, so a request is written as soon as it is made: a sender takes its slot *before* its
 * last check of the delivery (endpoint enabled, not deleted, account paid) and sends right after
 * it, instead of checking once and then queueing inside the agent for seconds while the endpoint
 * may be deleted or disabled.
 */
export class SendSlots {
  private readonly origins = new Map<string, { busy: number; waiting: ((release: Release) => void)[] }>();

  constructor(readonly perOrigin = REQUESTS_PER_ORIGIN) {}

  /** A slot now, or undefined when every slot of the origin is taken. */
  tryAcquire(url: string): Release | undefined {
    const o = this.origin(url);
    if (o.busy >= this.perOrigin || o.waiting.length > 0) return undefined;
    o.busy++;
    return this.releaser(url);
  }

  /** A slot, when one is free (first come, first served). */
  acquire(url: string): Promise<Release> {
    const now = this.tryAcquire(url);
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => this.origin(url).waiting.push(resolve));
  }

  /** Requests outstanding to the origin of `url` (for tests and metrics). */
  busy(url: string): number {
    return this.origins.get(key(url))?.busy ?? 0;
  }

  private origin(url: string) {
    const k = key(url);
    let o = this.origins.get(k);
    if (!o) this.origins.set(k, (o = { busy: 0, waiting: [] }));
    return o;
  }

  private releaser(url: string): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const k = key(url);
      const o = this.origins.get(k)!;
      const next = o.waiting.shift();
      if (next)
        next(this.releaser(url)); // the slot passes on; busy stays
      else if (--o.busy === 0) this.origins.delete(k);
    };
  }
}

function key(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
