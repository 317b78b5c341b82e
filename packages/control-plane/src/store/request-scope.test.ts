import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, freshDatabase, type TestDatabase } from '@cairn/test-harness/databases';
import { migrate, openStore, type Store } from './db.js';
import { afterCommit, currentTransaction, inRequestTransaction, scopedDb } from './request-scope.js';
import { TenantRepository } from './tenant-repository.js';
import { EventRepository } from './event-repository.js';
import { TaskRepository } from './task-repository.js';
import { systemClock } from '../clock.js';

describe.each(backends)('a request transaction (%s)', (backend) => {
  let tdb: TestDatabase;
  let store: Store;
  let tenants: TenantRepository;
  let tasks: TaskRepository;

  beforeAll(async () => {
    tdb = await freshDatabase(backend);
    store = openStore(tdb.url);
    await migrate(store.db);
    tenants = new TenantRepository(scopedDb(store.db), systemClock);
    tasks = new TaskRepository(scopedDb(store.db), systemClock, new EventRepository(scopedDb(store.db)));
  });

  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });

  /** A backup task of `tenantId` with nothing behind it: these tests look only at its row. */
  const queuedBackup = (tenantId: string) => ({
    kind: 'backup' as const,
    tenantId,
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
  const names = async () => (await store.db.selectFrom('tenants').select('name').execute()).map((r) => r.name);

  it('rolls back every write of every repository when the request does not commit', async () => {
    const woken: string[] = [];
    const committed = await inRequestTransaction(store.db, async () => {
      const t = await tenants.create('rolled-back');
      // A repository that opens its own transaction joins the request's instead.
      await tasks.create(queuedBackup(t.id));
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
  // SQLite has one connection: while a request's transaction is open no other writer can move a
  // row, so only MySQL/MariaDB, whose request transactions read from a snapshot, can show this.
  it.skipIf(backend === 'sqlite')(
    'cancels a task the dispatcher took after the request first read it, instead of spinning on its snapshot',
    async () => {
      const t = await tenants.create('cancel-race');
      const task = await tasks.create(queuedBackup(t.id));
      let answer: { state: string; cancelRequested: number } | undefined;
      const cancel = inRequestTransaction(store.db, async () => {
        // The request's first read fixes its snapshot: the task is queued in it.
        expect((await tasks.get(task.id))?.state).toBe('queued');
        // The dispatcher, on a connection of its own, takes the task meanwhile.
        await store.db
          .updateTable('tasks')
          .set({ state: 'dispatched', attempt: 1, agentId: 'agt_x' })
          .where('id', '=', task.id)
          .execute();
        answer = await tasks.requestCancel(task.id);
        return true;
      });
      // A cancel that keeps retrying on what its snapshot says never answers; give it ample time.
      const spun = new Promise<'spun'>((resolve) => setTimeout(() => resolve('spun'), 10_000).unref());
      expect(await Promise.race([cancel.then(() => 'answered'), spun])).toBe('answered');
      expect(answer).toMatchObject({ state: 'dispatched', cancelRequested: 1 });
      const row = await store.db.selectFrom('tasks').selectAll().where('id', '=', task.id).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ state: 'dispatched', cancelRequested: 1 });
    },
    20_000,
  );
});
