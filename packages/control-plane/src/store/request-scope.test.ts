import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, freshDatabase, type TestDatabase } from '@cairn/test-harness/databases';
import { migrate, openStore, type Store } from './db.js';
import { afterCommit, currentTransaction, inRequestTransaction, scopedDb } from './request-scope.js';
import { TenantRepository } from './tenant-repository.js';
import { EventRepository } from './event-repository.js';
import { TaskRepository } from './task-repository.js';

describe.each(backends)('a request transaction (%s)', (backend) => {
  let tdb: TestDatabase;
  let store: Store;
  let tenants: TenantRepository;
  let tasks: TaskRepository;

  beforeAll(async () => {
    tdb = await freshDatabase(backend);
    store = openStore(tdb.url);
    await migrate(store.db);
    tenants = new TenantRepository(scopedDb(store.db));
    tasks = new TaskRepository(scopedDb(store.db), new EventRepository(scopedDb(store.db)));
  });

  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });

  const names = async () => (await store.db.selectFrom('tenants').select('name').execute()).map((r) => r.name);

  it('rolls back every write of every repository when the request does not commit', async () => {
    const woken: string[] = [];
    const committed = await inRequestTransaction(store.db, async () => {
      const t = await tenants.create('rolled-back');
      // A repository that opens its own transaction joins the request's instead.
      await tasks.create({
        kind: 'backup',
        tenantId: t.id,
        instanceId: null,
        backupId: null,
        offeringId: null,
        providerId: 'prv_x',
        plugin: 'p',
        zone: 'z',
        pinnedAgentId: null,
        priority: 0,
        params: {},
      });
      afterCommit(() => woken.push('dispatcher'));
      return false;
    });
    expect(committed).toBe(false);
    expect(await names()).not.toContain('rolled-back');
    expect(await store.db.selectFrom('tasks').select('id').execute()).toEqual([]);
    expect(await store.db.selectFrom('events').select('id').execute()).toEqual([]);
    expect(woken).toEqual([]);
  });

  it('rolls back when the request throws, and rethrows', async () => {
    await expect(
      inRequestTransaction(store.db, async () => {
        await tenants.create('thrown');
        throw new Error('late failure');
      }),
    ).rejects.toThrow('late failure');
    expect(await names()).not.toContain('thrown');
  });

  it('commits as one, then runs after-commit work outside the scope, where the rows are visible', async () => {
    let seenInside: boolean | undefined;
    const committed = await inRequestTransaction(store.db, async () => {
      await tenants.create('kept');
      afterCommit(() => {
        seenInside = currentTransaction() !== undefined;
      });
      return true;
    });
    expect(committed).toBe(true);
    expect(seenInside).toBe(false);
    expect(await names()).toContain('kept');
  });

  it('leaves code outside a request on the pool', async () => {
    expect(currentTransaction()).toBeUndefined();
    await tenants.create('outside');
    expect(await names()).toContain('outside');
  });
});
