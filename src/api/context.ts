import type { Config } from '../config';
import type { Database } from '../db/database';
import type { DestinationGuard } from '../http/destinationGuard';
import type { Logger } from '../logger';
import type { Registry } from '../metrics';
import type { Dispatcher } from '../services/dispatcher';

/** What the API's routers need; built by the entry point, replaced piecemeal in tests. */
export interface ApiDeps {
  cfg: Config;
  db: Database;
  dispatcher: Dispatcher;
  guard: DestinationGuard;
  log: Logger;
  adminToken: string;
  /** Served at /metrics (admin token unless METRICS_PUBLIC). */
  metrics?: Registry;
  /** Readiness probe of Temporal, used by /readyz. */
  temporalReady?: () => Promise<boolean>;
}
