import type { Queryable } from '../db/database';
import { recordAttempts, type AttemptRecord } from '../db/deliveries';
import { persistently } from './persistently';

/**
 * Records a batch's attempts in as few statements as their finishing times allow: a write goes
 * out once every outstanding attempt has finished, or when the oldest unwritten one has waited
 * `lingerMs`. So a fast batch costs one write, and a slow receiver never holds back the record of
 * the fast ones for long (a crash then re-sends only what was really in flight). After a write
 * fails for good, every later record fails too: the batch as a whole is retried or handed over.
 */
interface AttemptRecorder {
  record(record: AttemptRecord): Promise<number>;
  /** One of the expected attempts will not be made (the delivery was cancelled before its wave). */
  drop(): void;
  /** A write failed for good: no further request may start (it could not be recorded). */
  readonly failed: boolean;
}

export function attemptRecorder(db: Queryable, expected: number, lingerMs = 100): AttemptRecorder {
  let queue: { record: AttemptRecord; resolve(n: number): void; reject(err: unknown): void }[] = [];
  let outstanding = expected;
  let writing = false;
  let timer: NodeJS.Timeout | undefined;
  let failed: unknown;
  const write = async () => {
    clearTimeout(timer);
    timer = undefined;
    if (writing || queue.length === 0) return;
    writing = true;
    const taken = queue;
    queue = [];
    outstanding -= taken.length;
    try {
      if (failed) throw failed;
      const numbers = await persistently(() =>
        recordAttempts(
          db,
          taken.map((t) => t.record),
        ),
      );
      taken.forEach((t, i) => t.resolve(numbers[i]));
    } catch (err) {
      failed = err;
      taken.forEach((t) => t.reject(err));
    }
    writing = false;
    schedule();
  };
  const schedule = () => {
    if (writing || queue.length === 0) return;
    if (queue.length >= outstanding || failed) void write();
    else timer ??= setTimeout(() => void write(), lingerMs);
  };
  return {
    record: (record) =>
      new Promise<number>((resolve, reject) => {
        queue.push({ record, resolve, reject });
        schedule();
      }),
    drop() {
      outstanding--;
      schedule();
    },
    get failed() {
      return failed !== undefined;
    },
  };
}
