import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Config } from '../config';
import type { PurgeOldDataInput } from '../workflows/purgeOldData';

export const RETENTION_SCHEDULE_ID = 'rr-retention-purge';
export const RETENTION_BATCH_SIZE = 1000;

/**
 * Creates (or brings up to date) the Temporal Schedule that runs the purge every
 * RETENTION_PURGE_INTERVAL; overlapping runs are skipped. Every worker calls it at start-up.
 */
export async function ensureRetentionSchedule(client: Client, cfg: Config): Promise<void> {
  const args: [PurgeOldDataInput] = [{ retentionMs: cfg.RETENTION, batchSize: RETENTION_BATCH_SIZE }];
  const action = { type: 'startWorkflow' as const, workflowType: 'purgeOldData', taskQueue: cfg.TEMPORAL_TASK_QUEUE, args, workflowId: `${RETENTION_SCHEDULE_ID}-run` };
  const spec = { intervals: [{ every: cfg.RETENTION_PURGE_INTERVAL }] };
  try {
    await client.schedule.create({ scheduleId: RETENTION_SCHEDULE_ID, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP } });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(RETENTION_SCHEDULE_ID).update((prev) => ({ ...prev, spec, action }));
  }
}
