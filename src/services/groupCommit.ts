/**
 * Group commit: items go in runs of at most `maxBatch` (in arrival order), at most `maxInFlight`
 * runs at a time. A run starts on the next turn of the event loop, so the items submitted by
 * every request read in the same turn go together (PGlite runs a statement synchronously, so
 * without that turn nothing would ever wait behind a run in flight); under load the items that
 * arrive while runs are in flight wait and share the next one. Nothing waits for a window, and
 * the items of one run share one statement's fixed cost. When a run of several fails, each of
 * its items is retried alone, so one bad item cannot fail the others.
 */
export class GroupCommit<I, O> {
  private waiting: { item: I; done: (o: O) => void; fail: (e: unknown) => void }[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly runOne: (item: I) => Promise<O>,
    private readonly runMany: (items: I[]) => Promise<O[]>,
    private readonly opts: { maxBatch: number; maxInFlight: number },
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((done, fail) => {
      this.waiting.push({ item, done, fail });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.opts.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.opts.maxBatch);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        if (this.waiting.length) this.schedule();
      });
    }
  }

  private async run(batch: { item: I; done: (o: O) => void; fail: (e: unknown) => void }[]): Promise<void> {
    if (batch.length > 1) {
      try {
        const out = await this.runMany(batch.map((b) => b.item));
        batch.forEach((b, i) => b.done(out[i]));
        return;
      } catch {
        // One by one below: each item gets its own result or its own error.
      }
    }
    await Promise.all(
      batch.map(async (b) => {
        try {
          b.done(await this.runOne(b.item));
        } catch (err) {
          b.fail(err);
        }
      }),
    );
  }
}
