/**
 * What a delivery's own workflow (`delivery-<id>`) tells the operator on its Temporal Web UI page,
 * as the workflow's current details: its last attempt numbered as in the delivery log, when the
 * next one is due, when it gives up, and the last error — e.g. "attempt 4, next at 2026-11-27
 * 10:42 UTC, gives up at 2026-11-30 10:05 UTC, last error HTTP 503". Pure: the workflow formats it
 * from what it knows (its input, its first attempt's result, and the `attempted` signal of each
 * later attempt), so it issues no command.
 */

/** The signal a retry attempt sends its workflow once recorded (the server-side retries are otherwise invisible to it). */
export const ATTEMPTED_SIGNAL = 'attempted';

/** One recorded attempt that failed, as the workflow learns of it. */
export interface AttemptNews {
  /** Its number in the delivery log (GET /v1/deliveries/:id). */
  attempt: number;
  error?: string;
  /** When the next attempt is due; absent when none follows. */
  nextAtMs?: number;
}

export interface DeliveryStory {
  /** The last attempt this delivery's workflows know of, numbered as in the delivery log (undefined: none known). */
  attempt?: number;
  lastError?: string;
  nextAtMs?: number;
  /** No request was made at the last wake-up (circuit open, send limits): why. */
  held?: string;
  windowEndsAtMs: number;
  /** The workflow is done. */
  outcome?: { status: string; reason?: string };
}

/** Minute precision, in UTC, as the Web UI shows times: 2026-11-30 10:05 UTC. */
export function utc(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const MAX_ERROR = 200;
const short = (text: string) => (text.length > MAX_ERROR ? `${text.slice(0, MAX_ERROR - 1)}…` : text);

/** One line for the workflow's current details. */
export function storyText(s: DeliveryStory): string {
  const attempt = s.attempt ? `attempt ${s.attempt}` : undefined;
  if (s.outcome) {
    const { status, reason } = s.outcome;
    if (status === 'delivered') return attempt ? `delivered at ${attempt}` : 'delivered';
    const head = attempt ? `${status} after ${attempt}` : status;
    return reason ? `${head}: ${short(reason)}` : head;
  }
  if (!attempt && s.nextAtMs === undefined && !s.held) return `first attempt under way, gives up at ${utc(s.windowEndsAtMs)}`;
  const parts = [attempt ?? 'retrying'];
  if (s.held) parts.push(`held: ${short(s.held)}`);
  parts.push(s.nextAtMs === undefined ? 'no further attempt' : `next at ${utc(s.nextAtMs)}`);
  parts.push(`gives up at ${utc(s.windowEndsAtMs)}`);
  if (s.lastError) parts.push(`last error ${short(s.lastError)}`);
  return parts.join(', ');
}
