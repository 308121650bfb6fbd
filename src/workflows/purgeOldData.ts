import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { RetentionActivities } from '../activities/retention';

export interface PurgeOldDataInput {
  retentionMs: number;
  batchSize: number;
  /** Totals carried across continue-as-new. */
  purged?: { attempts: number; payloads: number };
}

const MAX_BATCHES_PER_RUN = 200; // keeps one run's history small; continue-as-new for the rest

/** Started by the retention Schedule: purges old attempt logs and payloads in bounded batches. */
export async function purgeOldData(input: PurgeOldDataInput): Promise<{ attempts: number; payloads: number }> {
  const { purgeOldDataBatch } = proxyActivities<RetentionActivities>({ startToCloseTimeout: '5m', retry: { maximumInterval: '1m', maximumAttempts: 10 } });
  const cutoffMs = Date.now() - input.retentionMs;
  const total = { ...(input.purged ?? { attempts: 0, payloads: 0 }) };
  for (let batch = 0; batch < MAX_BATCHES_PER_RUN; batch++) {
    const n = await purgeOldDataBatch({ cutoffMs, batchSize: input.batchSize });
    total.attempts += n.attempts;
    total.payloads += n.payloads;
    if (n.attempts < input.batchSize && n.payloads < input.batchSize) return total;
  }
  return continueAsNew<typeof purgeOldData>({ ...input, purged: total });
}
