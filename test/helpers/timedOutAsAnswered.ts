/**
 * The at-least-once case of a held answer on a loaded machine: the sender's deadline passed as the
 * receiver wrote its 2xx, so the sender logged that attempt as timed out (and a retry sent the
 * delivery again). True when one of these worker log lines says so for `deliveryId`: a
 * `delivery.attempted` timeout whose request started no later than the receiver saw `first`,
 * with the answer written within a second of that attempt's deadline and no later than a second
 * after it ended.
 */
export function timedOutAsAnswered(lines: Record<string, unknown>[], deliveryId: string, first: { at: number; answeredAt?: number }, attemptTimeoutMs: number): boolean {
  return lines.some((l) => {
    if (l.deliveryId !== deliveryId || l.msg !== 'delivery.attempted' || !/^timed out/.test(String(l.error))) return false;
    const ended = Date.parse(String(l.time));
    const started = ended - Number(l.durationMs);
    return first.at >= started - 50 && first.answeredAt! >= started + attemptTimeoutMs - 1_000 && first.answeredAt! <= ended + 1_000;
  });
}
