import { afterAll, beforeAll } from 'vitest';
import { freshDatabase, type Backend, type TestDatabase } from '@cairn/test-harness/databases';
import { loadConfig } from '../config.js';
import type { NewTask } from '../domain/task-factory.js';
import { JobRuns } from '../lifecycle/job-runs.js';
import { Reports } from '../lifecycle/reports.js';
import { reactToTaskEnds } from '../lifecycle/task-end.js';
import { AgentRepository } from '../store/agent-repository.js';
import { BackupRepository } from '../store/backup-repository.js';
import {
  CatalogRepository,
  type InstanceInput,
  type OfferingInput,
  type ProviderInput,
} from '../store/catalog-repository.js';
import { migrate, openStore, type Store } from '../store/db.js';
import { EventRepository } from '../store/event-repository.js';
import { JobRepository } from '../store/job-repository.js';
import { MaintenanceRepository } from '../store/maintenance-repository.js';
import { ProviderScheduleRepository } from '../store/provider-schedule-repository.js';
import { QueueRepository } from '../store/queue-repository.js';
import { QuotaRepository } from '../store/quota-repository.js';
import { ReportRepository } from '../store/report-repository.js';
import { scopedDb } from '../store/request-scope.js';
import { RetentionRepository } from '../store/retention-repository.js';
import { RpoRepository } from '../store/rpo-repository.js';
import { ScheduleRepository } from '../store/schedule-repository.js';
import { SecretBox } from '../store/secrets.js';
import { SyncRepository } from '../store/sync-repository.js';
import { TaskEndings } from '../store/task-endings.js';
import { TaskRepository } from '../store/task-repository.js';
import { TenantRepository } from '../store/tenant-repository.js';

/** The plugin every store test names: the dummy provider. */
export const PLUGIN = '@cairn/plugin-dummy';

/**
 * The repositories of a store, wired as the composition root (server.ts) wires them: on the
 * request-scoped handle, every reaction to a task's end registered, the settings at their defaults.
 * This is the one place tests build repositories: a constructor that changes is changed here.
 */
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
  retention: RetentionRepository;
  providerSchedules: ProviderScheduleRepository;
  sync: SyncRepository;
  rpo: RpoRepository;
  maintenance: MaintenanceRepository;
  reports: Reports;
}

async function wire(store: Store, tdb: TestDatabase): Promise<{ repos: Repositories; providerTenant: string }> {
  const config = loadConfig({ CAIRN_DATABASE_URL: tdb.url, CAIRN_DATA_DIR: tdb.dataDir });
  const secrets = SecretBox.load(undefined, tdb.dataDir);
  const db = scopedDb(store.db);
  const tenants = new TenantRepository(db);
  const quotas = new QuotaRepository(db, store.dialect);
  const agents = new AgentRepository(db, config.taskLeaseMs, secrets);
  const catalog = new CatalogRepository(db, secrets);
  const providerTenant = await tenants.ensureProviderTenant();
  const events = new EventRepository(db, providerTenant);
  const backups = new BackupRepository(db);
  const endings = new TaskEndings();
  const tasks = new TaskRepository(db, events, endings);
  const queue = new QueueRepository(db, events, endings);
  const schedules = new ScheduleRepository(db);
  const jobs = new JobRepository(db);
  const jobRuns = new JobRuns(db, jobs, tasks, events, quotas);
  const retention = new RetentionRepository(db, backups, tasks, agents, events, schedules, (trx, task) =>
    jobs.keepLastOf(trx, task),
  );
  const providerSchedules = new ProviderScheduleRepository(db, catalog, tasks, agents, events);
  const sync = new SyncRepository(db, backups, tasks, retention, events, config.syncVanishShare);
  const rpo = new RpoRepository(db);
  const maintenance = new MaintenanceRepository(db, events, tasks, jobRuns.refuseOutdated, providerTenant);
  reactToTaskEnds(endings, { retention, providerSchedules, sync, jobs: jobRuns, maintenance });
  const reports = new Reports(
    { db, rows: new ReportRepository(), catalog, events, backups, retention, endings },
    { leaseMs: config.taskLeaseMs },
  );
  const repos: Repositories = {
    tenants,
    quotas,
    agents,
    catalog,
    events,
    backups,
    endings,
    tasks,
    queue,
    schedules,
    jobs,
    jobRuns,
    retention,
    providerSchedules,
    sync,
    rpo,
    maintenance,
    reports,
  };
  return { repos, providerTenant };
}

export interface StoreFixtureOptions {
  /** Run the migrations and wire the repositories (default); false: an empty database only. */
  migrate?: boolean;
  /** MySQL: create the database with the server's default collation (see freshDatabase). */
  serverCollation?: boolean;
}

/**
 * A fresh database of `backend` for the tests of one `describe` block: opened and migrated before
 * its first test, its repositories built once, closed and dropped after its last. Call it in the
 * block's body; what it holds is there from the block's first hook on.
 */
export function storeFixture(backend: Backend, opts: StoreFixtureOptions = {}): StoreFixture {
  const fixture = new StoreFixture();
  beforeAll(() => fixture.open(backend, opts));
  afterAll(() => fixture.close());
  return fixture;
}

export class StoreFixture {
  private opened?: { tdb: TestDatabase; store: Store };
  private wired?: { repos: Repositories; providerTenant: string };

  /** @internal storeFixture's hook. */
  async open(backend: Backend, opts: StoreFixtureOptions): Promise<void> {
    const tdb = await freshDatabase(backend, { serverCollation: opts.serverCollation });
    this.opened = { tdb, store: openStore(tdb.url) };
    if (opts.migrate === false) return;
    await migrate(this.opened.store.db);
    this.wired = await wire(this.opened.store, tdb);
  }

  /** @internal storeFixture's hook. */
  async close(): Promise<void> {
    await this.opened?.store.close();
    await this.opened?.tdb.drop();
  }

  get tdb(): TestDatabase {
    return this.ready().tdb;
  }

  get store(): Store {
    return this.ready().store;
  }

  /**
   * The repositories, each through a stand-in that may be taken in the block's body (before they
   * are built: `const { tasks } = f.repos`) and reaches the repository when it is used.
   */
  readonly repos: Repositories = new Proxy({} as Repositories, {
    get: (_, name) => late(() => this.wiredRepos()[name as keyof Repositories]),
  });

  private wiredRepos(): Repositories {
    if (!this.wired) throw new Error('the store fixture wires repositories only with its migrations (migrate: true)');
    return this.wired.repos;
  }

  /** The service provider's own tenant, made when the repositories were wired. */
  get providerTenant(): string {
    if (!this.wired) throw new Error('the store fixture makes the provider tenant only with its migrations');
    return this.wired.providerTenant;
  }

  /** Backup records on another clock than the system's (when a restore point was made). */
  backupsOn(clock: () => number): BackupRepository {
    return new BackupRepository(scopedDb(this.store.db), clock);
  }

  /** A dummy provider connection in zone `z` named `p`, without credentials unless given. */
  provider(input: Partial<ProviderInput> = {}) {
    return this.wiredRepos().catalog.createProvider({
      zone: 'z',
      name: 'p',
      plugin: PLUGIN,
      endpoint: null,
      config: {},
      credentials: null,
      ...input,
    });
  }

  /** An offering `o` of the provider tenant in zone `z`, ad-hoc backups allowed, no SLA unless given. */
  offering(input: Partial<OfferingInput> & { providerId: string }) {
    return this.wiredRepos().catalog.createOffering({
      tenantId: this.providerTenant,
      name: 'o',
      description: '',
      zone: 'z',
      externalId: null,
      allowAdhoc: true,
      allowUserSchedules: false,
      sla: null,
      ...input,
    });
  }

  /** An instance `vm` of the provider tenant in zone `z`, with an empty locator and no agent. */
  instance(input: Partial<InstanceInput> = {}, now?: number) {
    return this.wiredRepos().catalog.createInstance(
      { tenantId: this.providerTenant, name: 'vm', zone: 'z', locator: {}, agentId: null, ...input },
      now,
    );
  }

  /** An agent enrolled in zone `z` (hostname: its name unless given); its id. */
  async agent(name: string, hostname = name): Promise<string> {
    const { token } = await this.wiredRepos().agents.createEnrollment('z', 'test', 60_000);
    return (await this.wiredRepos().agents.redeemEnrollment(token, name, hostname)).agentId;
  }

  private ready() {
    if (!this.opened)
      throw new Error('the store fixture opens its database in beforeAll: use it inside a hook or test');
    return this.opened;
  }
}

/** A stand-in for `get()`'s object: each property read reaches the object as it is then. */
function late<T extends object>(get: () => T): T {
  return new Proxy({} as T, {
    get(_, prop) {
      const target = get();
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A backup task of the dummy plugin in zone `z`, pinned to no agent, at priority 0 unless given. */
export function backupTask(task: Omit<Partial<NewTask>, 'kind'> & Pick<NewTask, 'tenantId' | 'providerId'>): NewTask {
  return {
    kind: 'backup',
    instanceId: null,
    backupId: null,
    offeringId: null,
    plugin: PLUGIN,
    zone: 'z',
    pinnedAgentId: null,
    priority: 0,
    params: {},
    ...task,
  };
}
