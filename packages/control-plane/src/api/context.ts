import type { Config } from '../config.js';
import type { Metrics } from '../observability/metrics.js';
import type { EventFeed } from '../service/event-feed.js';
import type { BackupJobs } from '../service/backup-jobs.js';
import type { MaintenanceWindows } from '../service/maintenance.js';
import type { LocatorClaims } from '../service/locator-claims.js';
import type { Instances } from '../service/instances.js';
import type { Offerings } from '../service/offerings.js';
import type { Operations } from '../service/operations.js';
import type { Providers } from '../service/providers.js';
import type { Schedules } from '../service/schedules.js';
import type { Tenants } from '../service/tenants.js';
import type { AgentRepository } from '../store/agent-repository.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import type { Db } from '../store/db.js';
import type { IdempotencyRepository } from '../store/idempotency-repository.js';
import type { JobRepository } from '../store/job-repository.js';
import type { Audiences } from './audience.js';
import type { ListCursors } from './paging.js';
import type { BackupRepository } from '../store/backup-repository.js';
import type { EventRepository } from '../store/event-repository.js';
import type { TaskRepository } from '../store/task-repository.js';
import type { UsageRepository } from '../store/usage-repository.js';

/** What route modules receive from main.ts. */
export interface ApiDeps {
  config: Config;
  db: Db;
  /** Tenants, their quotas and API tokens (and who a bearer token is). */
  tenants: Tenants;
  agents: AgentRepository;
  catalog: CatalogRepository;
  tasks: TaskRepository;
  backups: BackupRepository;
  events: EventRepository;
  usage: UsageRepository;
  idempotency: IdempotencyRepository;
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
  /** Who may claim locators and restore targets on the SP's infrastructure. */
  claims: LocatorClaims;
  /** User schedules (PUT/GET/DELETE /v1/instances/{id}/schedule). */
  schedules: Schedules;
  /** The scheduler's clock: when an SLA set through the API starts counting. */
  scheduleClock: () => number;
  /** Backup jobs (/v1/backup-jobs): the store, and the service with policy and views. */
  jobs: JobRepository;
  backupJobs: BackupJobs;
  /** Maintenance windows (/v1/maintenance, zones', agents'). */
  maintenance: MaintenanceWindows;
  /** Live events, one poller per process. */
  feed: EventFeed;
  metrics: Metrics;
  /**
   * This process's agent sessions, told of credential changes made through the API. Both act
   * once the request has committed (a session must not act on a change that may yet roll back).
   */
  agentSessions: { agentRevoked(agentId: string): void; rotationRequested(agentId: string): void };
  /** False once shutdown began: /readyz fails first. */
  isAccepting: () => boolean;
}
