import { afterAll, beforeAll } from 'vitest';
import { freshDatabase, type Backend, type TestDatabase } from '@cairn/test-harness/databases';
import { loadConfig } from '../config.js';
import { systemClock, type Clock } from '../clock.js';
import { reportStores, wireRepositories, type Repositories as Wired } from '../repositories.js';
import type { NewTask } from '../domain/task-factory.js';
import { Reports } from '../lifecycle/reports.js';
import { BackupRepository } from '../store/backup-repository.js';
import type { InstanceInput, OfferingInput, ProviderInput } from '../store/catalog-repository.js';
import { migrate, openStore, type StatementObserver, type Store } from '../store/db.js';
import { scopedDb } from '../store/request-scope.js';
import { SecretBox } from '../store/secrets.js';
import { checkTaskCounts } from './task-counts.js';

/** The plugin every store test names: the dummy provider. */
export const PLUGIN = '@cairn/plugin-dummy';

/** The repositories of the store, wired by {@link wireRepositories} as the control plane wires them, and its reports. */
export interface Repositories extends Wired {
  reports: Reports;
}

async function wire(store: Store, tdb: TestDatabase): Promise<{ repos: Repositories; providerTenant: string }> {
  const config = loadConfig({ CAIRN_DATABASE_URL: tdb.url, CAIRN_DATA_DIR: tdb.dataDir });
  const secrets = SecretBox.load(undefined, tdb.dataDir);
  const { repos, providerTenant } = await wireRepositories({ store, config, secrets, clock: systemClock });
  const reports = new Reports(reportStores(scopedDb(store.db), repos), {
    clock: systemClock,
    wireClock: systemClock,
    leaseMs: config.taskLeaseMs,
  });
  return { repos: { ...repos, reports }, providerTenant };
}

export interface StoreFixtureOptions {
  /** Run the migrations and wire the repositories (default); false: an empty database only. */
  migrate?: boolean;
  /** MySQL: create the database with the server's default collation (see freshDatabase). */
  serverCollation?: boolean;
  /** Told of every statement the fixture's store runs (its `openStore` observer). */
  observe?: StatementObserver;
  /**
   * The block writes tasks' states by hand, past the store's writers that keep the counts of
   * ended tasks: those counts are not checked as it closes (they are otherwise).
   */
  tasksByHand?: boolean;
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
  private opened?: { tdb: TestDatabase; store: Store; tasksByHand: boolean };
  private wired?: { repos: Repositories; providerTenant: string };
  private readonly replicas: Store[] = [];

  /** @internal storeFixture's hook. */
  async open(backend: Backend, opts: StoreFixtureOptions): Promise<void> {
    const tdb = await freshDatabase(backend, { serverCollation: opts.serverCollation });
    this.opened = { tdb, store: openStore(tdb.url, opts.observe), tasksByHand: opts.tasksByHand ?? false };
    if (opts.migrate === false) return;
    await migrate(this.opened.store.db);
    this.wired = await wire(this.opened.store, tdb);
  }

  /** @internal storeFixture's hook. */
  async close(): Promise<void> {
    for (const store of this.replicas) await store.close();
    try {
      // Whatever the block's tests did to tasks, the kept counts of ended ones followed it.
      if (this.wired && !this.opened!.tasksByHand) await checkTaskCounts(this.opened!.store.db);
    } finally {
      await this.opened?.store.close();
      await this.opened?.tdb.drop();
    }
  }

  /** The repositories of another replica: a second handle on the same database, wired alike (closed with the fixture). */
  async replica(): Promise<Repositories> {
    const store = openStore(this.tdb.url);
    this.replicas.push(store);
    return (await wire(store, this.tdb)).repos;
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
  backupsOn(clock: Clock): BackupRepository {
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

  /** An offering `o` of the provider tenant in zone `z`, ad-hoc backups allowed, no SLA unless given; made at `now` when given. */
  offering(input: Partial<OfferingInput> & { providerId: string }, now?: number) {
    return this.wiredRepos().catalog.createOffering(
      {
        tenantId: this.providerTenant,
        name: 'o',
        description: '',
        zone: 'z',
        externalId: null,
        allowAdhoc: true,
        allowUserSchedules: false,
        sla: null,
        ...input,
      },
      now,
    );
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
