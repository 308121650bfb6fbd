import type { Queryable } from '../db/database';
import { purgeBatch } from '../db/retention';
import type { Logger } from '../logger';

/** Activities of the retention workflow. */
export function createRetentionActivities(deps: { db: Queryable; log: Logger }) {
  return {
    async purgeOldDataBatch(input: { cutoffMs: number; batchSize: number }): Promise<{ attempts: number; payloads: number }> {
      const purged = await purgeBatch(deps.db, new Date(input.cutoffMs), input.batchSize);
      if (purged.attempts || purged.payloads) deps.log.info('retention.purged', { ...purged, cutoff: new Date(input.cutoffMs).toISOString() });
      return purged;
    },
  };
}
export type RetentionActivities = ReturnType<typeof createRetentionActivities>;
