import type { Queryable } from './database';
import { purgeStats } from './endpointStats';

/**
 * One bounded purge batch: attempt logs older than the cutoff, and the payloads of events
 * older than the cutoff that nothing is still delivering, and stats rollup rows older than any
 * stats window. Delivery rows (status history) stay.
 */
export async function purgeBatch(db: Queryable, cutoff: Date, batchSize: number): Promise<{ attempts: number; payloads: number }> {
  const attempts = await db.query(
    `delete from delivery_attempts where (delivery_id, attempt) in
       (select delivery_id, attempt from delivery_attempts where started_at < $1 limit $2)
     returning 1`,
    [cutoff, batchSize],
  );
  const payloads = await db.query(
    `update events set body = '', purged_at = now() where id in
       (select e.id from events e where e.created_at < $1 and e.purged_at is null
          and not exists (select 1 from deliveries d where d.event_id = e.id and d.status = 'pending')
        limit $2)
     returning 1`,
    [cutoff, batchSize],
  );
  // The stats rollup is read for at most 7 days back (GET /v1/endpoints/:id/stats?window=7d).
  await purgeStats(db, new Date(Date.now() - 8 * 86_400_000), batchSize);
  return { attempts: attempts.length, payloads: payloads.length };
}
