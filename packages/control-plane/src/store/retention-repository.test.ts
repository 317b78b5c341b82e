import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, freshDatabase, type TestDatabase } from '@cairn/test-harness/databases';
import { AgentRepository, type AgentHelloInfo } from './agent-repository.js';
import { BackupRepository } from './backup-repository.js';
import { CatalogRepository } from './catalog-repository.js';
import { migrate, openStore, type Store } from './db.js';
import { EventRepository } from './event-repository.js';
import { HANDLES_CHAINS, RetentionRepository } from './retention-repository.js';
import { SecretBox } from './secrets.js';
import { ScheduleRepository } from './schedule-repository.js';
import { TaskRepository } from './task-repository.js';
import { TenantRepository } from './tenant-repository.js';

const PLUGIN = '@cairn/plugin-dummy';
const hello = (capabilities: string[]): AgentHelloInfo => ({
  zone: 'z',
  slots: 1,
  plugins: [{ name: PLUGIN, version: '1', apiVersion: 1, capabilities }],
  agentVersion: '1',
  hostname: 'h',
  draining: false,
  drainMessage: '',
  shuttingDown: false,
});

// Where the chain trait is decided: the agents of the zone, read inside the report's transaction.
describe.each(backends)('retention through the provider, in the store (%s)', (backend) => {
  let tdb: TestDatabase;
  let store: Store;
  let agents: AgentRepository;
  let backups: BackupRepository;
  let tasks: TaskRepository;
  let catalog: CatalogRepository;
  let retention: RetentionRepository;
  let tenantId: string;
  let agentIds: string[];
  let providerId: string;
  let offeringId: string;

  beforeAll(async () => {
    tdb = await freshDatabase(backend);
    store = openStore(tdb.url);
    await migrate(store.db);
    const events = new EventRepository(store.db);
    agents = new AgentRepository(store.db);
    backups = new BackupRepository(store.db);
    tasks = new TaskRepository(store.db, events);
    catalog = new CatalogRepository(store.db, SecretBox.load(undefined, tdb.dataDir));
    retention = new RetentionRepository(store.db, backups, tasks, agents, events, new ScheduleRepository(store.db));
    tenantId = await new TenantRepository(store.db).ensureProviderTenant();
    agentIds = [];
    for (const name of ['a1', 'a2']) {
      const e = await agents.createEnrollment('z', 'test', 60_000);
      agentIds.push((await agents.redeemEnrollment(e.token, name, name)).agentId);
    }
    providerId = (
      await catalog.createProvider({
        zone: 'z',
        name: 'p',
        plugin: PLUGIN,
        endpoint: null,
        config: {},
        credentials: {},
      })
    ).id;
    offeringId = (
      await catalog.createOffering({
        tenantId,
        name: 'o',
        description: '',
        zone: 'z',
        providerId,
        externalId: null,
        allowAdhoc: true,
        allowUserSchedules: false,
        sla: { cron: '0 2 * * *', keepLast: 1 },
      })
    ).id;
  });

  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });

  /** An instance with a full and an increment on it; the task of the increment. */
  async function chainOfTwo() {
    const instance = await catalog.createInstance({ tenantId, name: 'vm', zone: 'z', locator: {}, agentId: null });
    await catalog.setInstanceOffering(instance.id, offeringId);
    const made = [];
    for (const [i, mode] of (['FULL', 'INCREMENT'] as const).entries()) {
      const task = await tasks.create({
        kind: 'backup',
        tenantId,
        instanceId: instance.id,
        backupId: null,
        offeringId,
        providerId,
        plugin: PLUGIN,
        zone: 'z',
        pinnedAgentId: null,
        priority: 0,
        params: {},
      });
      await store.db
        .transaction()
        .execute((trx) =>
          backups.recordFromTask(
            trx,
            task,
            { externalId: `ext-${i}`, sizeBytes: 1, addedBytes: 1, mode, parentExternalId: i ? 'ext-0' : '' },
            Date.now() + i,
          ),
        );
      made.push(task);
    }
    return { instanceId: instance.id, task: made[1]! };
  }

  const deletesOf = async (instanceId: string) =>
    (await tasks.list({ limit: 50 }, { instanceId, kind: 'delete-backup' })).items;

  it('keeps the base of a kept increment unless every agent of the zone declares handles-chains', async () => {
    await agents.markConnected(agentIds[0]!, 's1', hello(['backup', 'delete-backup', HANDLES_CHAINS]));
    await agents.markConnected(agentIds[1]!, 's2', hello(['backup', 'delete-backup']));
    const mixed = await chainOfTwo();
    await store.db.transaction().execute((trx) => retention.afterBackup(trx, mixed.task, Date.now()));
    expect(await deletesOf(mixed.instanceId)).toEqual([]);

    await agents.markConnected(agentIds[1]!, 's2', hello(['backup', 'delete-backup', HANDLES_CHAINS]));
    const all = await chainOfTwo();
    for (let i = 0; i < 2; i++) {
      // A second run while the first delete is pending queues nothing more.
      await store.db.transaction().execute((trx) => retention.afterBackup(trx, all.task, Date.now()));
    }
    const deletes = await deletesOf(all.instanceId);
    expect(deletes).toHaveLength(1);
    const base = (await store.db.transaction().execute((trx) => backups.ofInstance(trx, all.instanceId))).find(
      (b) => b.mode === 'FULL',
    )!;
    expect(deletes[0]).toMatchObject({ kind: 'delete-backup', state: 'queued', backupId: base.id });
    // The instance goes with the delete: a plugin refuses a point tagged for another one.
    expect(JSON.parse(deletes[0]!.params)).toEqual({
      backupExternalId: 'ext-0',
      locator: {},
      instanceId: all.instanceId,
    });
    expect(base.deleteTaskId).toBe(deletes[0]!.id);
  });
});
