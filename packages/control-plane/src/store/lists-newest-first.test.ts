import { CompiledQuery, sql, type Kysely } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { newId } from './ids.js';
import * as migration from './migrations/0031-lists-newest-first.js';
import { currentTransaction, inRequestTransaction } from './request-scope.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';

/** Rows of the tenant (and instance) the lists page through; the other tenant has a few, older. */
const MANY = 1500;
const FEW = 150;
const PAGE = 50;

/**
 * A page of a list costs the rows of that page, however many the tenant or instance has: the
 * lists go newest first by id, and an index by (tenant or instance, id) hands them out in that
 * order, with no read of every row and no sort.
 */
describe.each(backends)('a page of tasks or restore points (%s)', (backend) => {
  let watching = false;
  const statements: string[] = [];
  const f = storeFixture(backend, { observe: (text) => void (watching && statements.push(text)) });
  const { tasks, backups } = f.repos;
  let busy: { tenantId: string; instanceId: string };
  let quiet: { tenantId: string; instanceId: string };
  /** The busy tenant's other instance: a few rows, all older than the busy instance's. */
  let sparse: { tenantId: string; instanceId: string };

  beforeAll(async () => {
    const providerId = (await f.provider()).id;
    const offeringId = (await f.offering({ providerId })).id;
    const quietTenant = (await f.repos.tenants.create('quiet')).id;
    quiet = { tenantId: quietTenant, instanceId: (await f.instance({ tenantId: quietTenant, name: 'q' })).id };
    busy = { tenantId: f.providerTenant, instanceId: (await f.instance({ name: 'b' })).id };
    sparse = { tenantId: f.providerTenant, instanceId: (await f.instance({ name: 's' })).id };
    const template = await tasks.create(backupTask({ ...busy, offeringId, providerId }));
    const { id: _id, ...taskColumns } = (await tasks.get(template.id))!;
    // The quiet tenant's rows first (older ids), then the busy one's, written in bulk.
    let at = Date.now() - 10 * 86_400_000;
    const rows = (owner: typeof busy, n: number) => Array.from({ length: n }, () => ({ at: (at += 1000), ...owner }));
    const all = [...rows(quiet, FEW), ...rows(sparse, FEW), ...rows(busy, MANY)];
    for (let i = 0; i < all.length; i += 250) {
      const chunk = all.slice(i, i + 250);
      await f.store.db
        .insertInto('tasks')
        .values(
          chunk.map((r) => ({
            ...taskColumns,
            id: newId('tsk', r.at),
            tenantId: r.tenantId,
            instanceId: r.instanceId,
            createdAt: r.at,
          })),
        )
        .execute();
      await f.store.db
        .insertInto('backups')
        .values(
          chunk.map((r) => {
            const id = newId('bkp', r.at);
            return {
              id,
              tenantId: r.tenantId,
              instanceId: r.instanceId,
              offeringId,
              taskId: null,
              name: id,
              mode: 'FULL',
              createdAt: r.at,
              sizeBytes: 1,
              addedBytes: null,
              externalId: id,
              parentId: null,
              expiresAt: null,
              deleteTaskId: null,
              vanishedAt: null,
              recordedAt: r.at,
            };
          }),
        )
        .execute();
    }
    if (backend === 'mysql') await sql`analyze table tasks, backups`.execute(f.store.db);
  });

  const lists = () => [
    { name: 'tasks of the busy tenant', list: () => tasks.list({ limit: PAGE }, { tenantId: busy.tenantId }) },
    { name: 'tasks of the quiet tenant', list: () => tasks.list({ limit: PAGE }, { tenantId: quiet.tenantId }) },
    { name: 'tasks of the busy instance', list: () => tasks.list({ limit: PAGE }, { instanceId: busy.instanceId }) },
    {
      name: "tasks of the busy tenant's sparse instance",
      list: () => tasks.list({ limit: PAGE }, { tenantId: busy.tenantId, instanceId: sparse.instanceId }),
    },
    {
      name: "backups of the busy tenant's sparse instance",
      list: () => backups.list({ limit: PAGE }, { tenantId: busy.tenantId, instanceId: sparse.instanceId }),
    },
    { name: 'backups of the busy tenant', list: () => backups.list({ limit: PAGE }, { tenantId: busy.tenantId }) },
    { name: 'backups of the quiet tenant', list: () => backups.list({ limit: PAGE }, { tenantId: quiet.tenantId }) },
    {
      name: 'backups of the busy instance',
      list: () => backups.list({ limit: PAGE }, { instanceId: busy.instanceId }),
    },
    {
      name: 'backups of the quiet instance',
      list: () => backups.list({ limit: PAGE }, { instanceId: quiet.instanceId }),
    },
  ];

  it('answers the newest first, page by page', async () => {
    for (const { name, list } of lists()) {
      const page = await list();
      const ids = page.items.map((r) => r.id);
      expect(ids, name).toHaveLength(PAGE);
      expect(ids, name).toEqual([...ids].sort().reverse());
      expect(page.nextCursor, name).toBeTruthy();
    }
    // The busy tenant's newest: the last written.
    const newest = await f.store.db
      .selectFrom('backups')
      .select('id')
      .where('tenantId', '=', busy.tenantId)
      .orderBy('id', 'desc')
      .limit(PAGE)
      .execute();
    expect((await backups.list({ limit: PAGE }, { tenantId: busy.tenantId })).items.map((r) => r.id)).toEqual(
      newest.map((r) => r.id),
    );
  });

  it.runIf(backend === 'sqlite')('reads each page through an index in id order, with no sort', async () => {
    for (const { name, list } of lists()) {
      statements.length = 0;
      watching = true;
      await list();
      watching = false;
      expect(statements, name).toHaveLength(1);
      const text = statements[0]!;
      const nulls = Array.from(text.matchAll(/\?/g), () => null);
      const plan = await f.store.db.executeQuery<{ detail: string }>(
        CompiledQuery.raw(`explain query plan ${text}`, nulls),
      );
      const steps = plan.rows.map((r) => r.detail).join('; ');
      expect(steps, name).toMatch(/USING (COVERING )?INDEX (tasks|backups)_(tenant|instance)_newest/);
      expect(steps, name).not.toMatch(/TEMP B-TREE/);
    }
  });

  // MySQL/MariaDB choose a plan from their statistics: count the rows the server read instead.
  it.runIf(backend === 'mysql')('reads about one page of rows for each page, not every row of the tenant', async () => {
    for (const { name, list } of lists()) {
      let read = 0;
      await inRequestTransaction(f.store.db, async () => {
        const trx = currentTransaction()!;
        const rowsRead = async () => {
          const r = await sql<{ name: string; value: string }>`select variable_name as name, variable_value as value
            from information_schema.session_status where variable_name like 'HANDLER_READ%'`.execute(trx);
          const counted = r.rows.filter((v) => /^HANDLER_READ_(NEXT|PREV|RND|RND_NEXT)$/i.test(v.name));
          expect(counted.map((v) => v.name.toUpperCase()).sort()).toEqual([
            'HANDLER_READ_NEXT',
            'HANDLER_READ_PREV',
            'HANDLER_READ_RND',
            'HANDLER_READ_RND_NEXT',
          ]);
          return counted.reduce((n, v) => n + Number(v.value), 0);
        };
        const s0 = await rowsRead();
        const s1 = await rowsRead();
        await list();
        const s2 = await rowsRead();
        // What reading the status costs itself (the same each time), taken off.
        read = s2 - s1 - (s1 - s0);
        return false;
      });
      expect(read, name).toBeLessThanOrEqual(2 * (PAGE + 1));
    }
  });

  it('goes down to the indexes by creation time and up again', async () => {
    const indexes = async () => {
      const q =
        backend === 'mysql'
          ? sql<{ name: string }>`select distinct index_name as name from information_schema.statistics
              where table_schema = database() and table_name in ('tasks', 'backups')`
          : sql<{
              name: string;
            }>`select name from sqlite_master where type = 'index' and tbl_name in ('tasks', 'backups')`;
      return (await q.execute(f.store.db)).rows
        .map((r) => r.name)
        .filter((n) => /_(tenant|instance)(_newest)?$/.test(n));
    };
    const newest = [
      'backups_instance_newest',
      'backups_tenant_newest',
      'tasks_instance',
      'tasks_instance_newest',
      'tasks_tenant_newest',
    ];
    expect((await indexes()).sort()).toEqual(newest);
    const db = f.store.db as unknown as Kysely<unknown>;
    await migration.down(db);
    expect((await indexes()).sort()).toEqual(['backups_instance', 'backups_tenant', 'tasks_instance', 'tasks_tenant']);
    await migration.up(db);
    expect((await indexes()).sort()).toEqual(newest);
    expect((await backups.list({ limit: PAGE }, { instanceId: busy.instanceId })).items).toHaveLength(PAGE);
  });
});
