import type { TestWorkflowEnvironment } from '@temporalio/testing';

export default async function globalTeardown(): Promise<void> {
  const env = (globalThis as Record<string, unknown>).__RR_TEMPORAL_ENV as TestWorkflowEnvironment | undefined;
  await env?.teardown();
  // A Postgres started by globalSetup stays up for the next run (start is idempotent and fast to reuse);
  // `bash scripts/test-postgres.sh stop` stops it.
}
