import type { Config } from '../config';
import type { Database } from '../db/database';
import type { DestinationGuard } from '../http/destinationGuard';
import type { SendStops } from '../http/sendStops';
import type { PortalKeyRing } from '../domain/portalToken';
import type { Logger } from '../logger';
import type { Registry } from '../metrics';
import type { RateLimits } from './rateLimits';
import type { Dispatcher } from '../services/dispatcher';

/** What the API's routers need; built by the entry point, replaced piecemeal in tests. */
export interface ApiDeps {
  cfg: Config;
  db: Database;
  dispatcher: Dispatcher;
  guard: DestinationGuard;
  log: Logger;
  /** The current admin token (ADMIN_TOKEN or the embedded one). */
  adminToken: string;
  /** Keys that sign portal links; default: derived from the admin token. */
  portalKeys?: PortalKeyRing;
  /** Served at /metrics (admin token unless METRICS_PUBLIC). */
  metrics?: Registry;
  /** The worker's, when it runs in this process: a delete, disable or downgrade aborts its requests not yet sent. */
  sendStops?: SendStops;
  /** The abuse limits; default: from cfg, shared through the database when it is a real Postgres. */
  rateLimits?: RateLimits;
  /** Readiness probe of Temporal, used by /readyz. */
  temporalReady?: () => Promise<boolean>;
}
