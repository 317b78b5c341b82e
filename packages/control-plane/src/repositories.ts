import { presenceStaleAfterMs } from './domain/heartbeat-pace.js';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import { JobRuns } from './lifecycle/job-runs.js';
import type { ReportStores } from './lifecycle/reports.js';
import { Retention } from './lifecycle/retention.js';
import { Sync } from './lifecycle/sync.js';
import { Maintenance, MaintenanceGate } from './lifecycle/maintenance.js';
import { ProviderSchedules } from './lifecycle/provider-schedules.js';
import { reactToTaskEnds } from './lifecycle/task-end.js';
import { AgentRepository } from './store/agent-repository.js';
import { BackupRepository } from './store/backup-repository.js';
import { CatalogRepository } from './store/catalog-repository.js';
import type { Db, Store } from './store/db.js';
import { DutyLeaseRepository } from './store/duty-lease-repository.js';
import { EventRepository } from './store/event-repository.js';
import { JobRepository } from './store/job-repository.js';
import { MaintenanceRepository } from './store/maintenance-repository.js';
import { ProviderScheduleRepository } from './store/provider-schedule-repository.js';
import { QueueRepository } from './store/queue-repository.js';
import { QuotaRepository } from './store/quota-repository.js';
import { ReportRepository } from './store/report-repository.js';
import { scopedDb } from './store/request-scope.js';
import { RpoRepository } from './store/rpo-repository.js';
import { ScheduleRepository } from './store/schedule-repository.js';
import type { SecretBox } from './store/secrets.js';
import { SyncRepository } from './store/sync-repository.js';
import { TaskEndings } from './store/task-endings.js';
import { TaskRepository } from './store/task-repository.js';
import { TenantRepository } from './store/tenant-repository.js';

/** Every repository of the store, and the lifecycle parts their task-end reactions reach. */
export interface Repositories {
  tenants: TenantRepository;
  quotas: QuotaRepository;
  agents: AgentRepository;
  catalog: CatalogRepository;
  events: EventRepository;
  backups: BackupRepository;
  endings: TaskEndings;
  tasks: TaskRepository;
  queue: QueueRepository;
  schedules: ScheduleRepository;
  jobs: JobRepository;
  jobRuns: JobRuns;
  retention: Retention;
  providerSchedules: ProviderSchedules;
  providerSyncs: SyncRepository;
  sync: Sync;
  rpo: RpoRepository;
  dutyLeases: DutyLeaseRepository;
  maintenanceScopes: MaintenanceRepository;
  maintenanceGate: MaintenanceGate;
  maintenance: Maintenance;
}

export interface RepositoryWiring {
  store: Store;
  config: Pick<Config, 'taskLeaseMs' | 'syncVanishShare'>;
  secrets: SecretBox;
  clock: Clock;
}

/**
 * The repositories as the control plane runs them: on the request-scoped handle (inside a
 * mutating request every repository joins that request's transaction), with every reaction to a
 * task's end registered in the order lifecycle/task-end.ts gives. The composition root and the
 * store tests both build them here, so tests run what production runs.
 */
export async function wireRepositories({ store, config, secrets, clock }: RepositoryWiring): Promise<{
  repos: Repositories;
  providerTenant: string;
}> {
  const db = scopedDb(store.db);
  const tenants = new TenantRepository(db, clock);
  const quotas = new QuotaRepository(db, clock, store.dialect);
  const agents = new AgentRepository(db, clock, presenceStaleAfterMs(config.taskLeaseMs), secrets);
  const catalog = new CatalogRepository(db, clock, secrets);
  const providerTenant = await tenants.ensureProviderTenant();
  const events = new EventRepository(db, providerTenant);
  const backups = new BackupRepository(db, clock);
  // Whichever way a task ends, what else its end changes is written in the same transaction.
  const endings = new TaskEndings();
  const tasks = new TaskRepository(db, clock, endings);
  const queue = new QueueRepository(db, clock, endings);
  const schedules = new ScheduleRepository(db);
  const jobs = new JobRepository(db);
  // Maintenance is asked in one place: what is in maintenance, judged by domain/maintenance.ts.
  const maintenanceScopes = new MaintenanceRepository(db);
  const maintenanceGate = new MaintenanceGate({ db, clock, scopes: maintenanceScopes, tasks });
  // The job-run engine: runs move by the rules of domain/job-run.ts.
  const jobRuns = new JobRuns({ db, jobs, tasks, events, quotas, maintenanceGate });
  // Retention and sync decide by domain/retention.ts and domain/sync.ts and write through the repositories.
  const retention = new Retention({ db, clock, backups, tasks, agents, events, schedules, jobs });
  const providerSchedules = new ProviderSchedules({
    db,
    clock,
    rows: new ProviderScheduleRepository(),
    catalog,
    tasks,
    agents,
    events,
  });
  const providerSyncs = new SyncRepository(db);
  const sync = new Sync({
    db,
    clock,
    syncs: providerSyncs,
    backups,
    tasks,
    retention,
    events,
    vanishShare: config.syncVanishShare,
  });
  const rpo = new RpoRepository(db);
  const dutyLeases = new DutyLeaseRepository(db);
  const maintenance = new Maintenance({
    db,
    clock,
    scopes: maintenanceScopes,
    agents,
    events,
    tasks,
    began: jobRuns.refuseOutdated,
    providerTenantId: providerTenant,
  });
  reactToTaskEnds(endings, { retention, providerSchedules, sync, jobs: jobRuns, maintenance });
  const repos = { tenants, quotas, agents, catalog, events, backups, endings, tasks, queue, schedules, jobs };
  return {
    repos: {
      ...repos,
      jobRuns,
      retention,
      providerSchedules,
      providerSyncs,
      sync,
      rpo,
      dutyLeases,
      maintenanceScopes,
      maintenanceGate,
      maintenance,
    },
    providerTenant,
  };
}

/** The repositories agents' reports are applied with (lifecycle/reports.ts), on `db`. */
export function reportStores(db: Db, repos: Repositories): ReportStores {
  const { catalog, events, backups, retention, endings, maintenanceGate, providerSyncs: syncs } = repos;
  return { db, rows: new ReportRepository(), catalog, events, backups, retention, endings, maintenanceGate, syncs };
}
