import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Pinned by scripts/provision-temporal.mjs; keep the versions in step with it. */
export const TEMPORAL_CLI_VERSION = '1.9.1';
export const TEMPORAL_TEST_SERVER_VERSION = '1.40.0';

const toolsDir = () => process.env.TEMPORAL_TOOLS_DIR ?? resolve(__dirname, '..', '..', '.tools', 'temporal');

export type ServerExecutable = { type: 'existing-path'; path: string } | { type: 'cached-download' };

/** The provisioned binary when present; otherwise let the SDK download it (needs internet). */
function executable(file: string, override?: string): ServerExecutable {
  if (override) return { type: 'existing-path', path: override };
  const local = join(toolsDir(), file);
  return existsSync(local) ? { type: 'existing-path', path: local } : { type: 'cached-download' };
}

export const devServerExecutable = (override?: string) => executable(`temporal-${TEMPORAL_CLI_VERSION}`, override);
export const testServerExecutable = (override?: string) => executable(`temporal-test-server-${TEMPORAL_TEST_SERVER_VERSION}`, override);
