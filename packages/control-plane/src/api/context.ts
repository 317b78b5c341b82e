import type { Config } from '../config.js';
import type { Agents } from '../service/agents.js';
import type { Metrics } from '../observability/metrics.js';
import type { EventFeed } from '../service/event-feed.js';
import type { BackupJobs } from '../service/backup-jobs.js';
import type { MaintenanceWindows } from '../service/maintenance.js';
import type { Instances } from '../service/instances.js';
import type { Offerings } from '../service/offerings.js';
import type { Operations } from '../service/operations.js';
import type { Providers } from '../service/providers.js';
import type { Records } from '../service/records.js';
import type { Schedules } from '../service/schedules.js';
import type { Tenants } from '../service/tenants.js';
import type { Db } from '../store/db.js';
import type { IdempotencyRepository } from '../store/idempotency-repository.js';
import type { Audiences } from './audience.js';
import type { ListCursors } from './paging.js';

/** What route modules receive from main.ts. */
export interface ApiDeps {
  config: Config;
  db: Db;
  /** Tenants, their quotas and API tokens (and who a bearer token is). */
  tenants: Tenants;
  /** Agents: enrollment, each with its maintenance, credential revocation and rotation, zones and plugins. */
  agents: Agents;
  /** `Idempotency-Key` claims and answers (mutatingRequests, in api/app.ts). */
  idempotency: IdempotencyRepository;
  /** What the API reads back: tasks and their progress, events, restore points, backup jobs, usage. */
  records: Records;
  /** Seals every list's nextCursor to that list, and checks the cursors that come back. */
  cursors: ListCursors;
  /** Who an answer is for: what a tenant may read of the SP's endpoints and tokens. */
  audiences: Audiences;
  operations: Operations;
  /** Instances: creating one, assigning its offering, deleting it. */
  instances: Instances;
  /** Backup offerings: their provider and zone, SLA, grants. */
  offerings: Offerings;
  /** Provider connections of a zone: create, edit, delete, tenant roots, work through the plugin. */
  providers: Providers;
  /** User schedules (PUT/GET/DELETE /v1/instances/{id}/schedule). */
  schedules: Schedules;
  /** Backup jobs (/v1/backup-jobs): policy and views. */
  backupJobs: BackupJobs;
  /** Maintenance windows (/v1/maintenance, zones', agents'). */
  maintenance: MaintenanceWindows;
  /** Live events, one poller per process. */
  feed: EventFeed;
  metrics: Metrics;
  /** False once shutdown began: /readyz fails first. */
  isAccepting: () => boolean;
}
