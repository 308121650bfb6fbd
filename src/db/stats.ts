import type { Queryable } from './database';

/** Scrape-time figures for /metrics: pending deliveries and the age of the oldest one. */
export async function pendingStats(db: Queryable): Promise<{ pending: number; oldestAgeSeconds: number }> {
  const [row] = await db.query<{ n: string; oldest: Date | null }>(`select count(*) as n, min(created_at) as oldest from deliveries where status = 'pending'`);
  return { pending: Number(row.n), oldestAgeSeconds: row.oldest ? Math.max(0, (Date.now() - new Date(row.oldest).getTime()) / 1000) : 0 };
}

export async function deliveriesByStatus(db: Queryable): Promise<{ status: string; n: number }[]> {
  const rows = await db.query<{ status: string; n: string }>('select status, count(*) as n from deliveries group by status');
  return rows.map((r) => ({ status: r.status, n: Number(r.n) }));
}

/** Pending deliveries held right now (no request on their wake-ups), by why: open circuit, 429 pause, send limits. */
export async function heldByReason(db: Queryable): Promise<{ reason: string; n: number }[]> {
  const rows = await db.query<{ reason: string; n: string }>(
    `select held_reason as reason, count(*) as n from deliveries
     where status = 'pending' and held_reason is not null and held_at is not null and (last_attempt_at is null or held_at > last_attempt_at)
     group by held_reason`,
  );
  return rows.map((r) => ({ reason: r.reason, n: Number(r.n) }));
}
