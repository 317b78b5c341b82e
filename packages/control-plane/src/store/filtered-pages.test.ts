import { CompiledQuery } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { newId } from './ids.js';
import { SCANNED_ROWS, type Page } from './page.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';

/** The tenant's tasks and instances: three times what one filtered page reads. */
const MANY = 3 * SCANNED_ROWS;

/**
 * A list filtered by something its index does not hold (tasks by state or kind, instances and
 * jobs by a search) reads a bounded stretch of rows a page, however many the tenant has: a page
 * may come back short, or empty, with a cursor to go on from, and the walk still visits every
 * matching row once.
 */
describe.each(backends)('a filtered page (%s)', (backend) => {
  let watching = false;
  const statements: string[] = [];
  const f = storeFixture(backend, { tasksByHand: true, observe: (text) => void (watching && statements.push(text)) });
  const { tasks, catalog } = f.repos;
  let tenantId: string;
  /** The tenant's running tasks, newest first: the newest task, one in the middle, the oldest. */
  let running: string[];
  /** The instances named "needle": the first, one in the middle, the last. */
  let needles: string[];

  beforeAll(async () => {
    const providerId = (await f.provider()).id;
    tenantId = f.providerTenant;
    const other = (await f.repos.tenants.create('other')).id;
    const template = await tasks.create(backupTask({ tenantId, providerId }));
    const { id: _id, ...taskColumns } = (await tasks.get(template.id))!;
    await f.store.db.deleteFrom('tasks').execute();
    const instance = await f.instance({ name: 'template' });
    const { id: _iid, ...instanceColumns } = (await catalog.getInstance(instance.id))!;
    await f.store.db.deleteFrom('instances').execute();
    let at = Date.now() - 10 * 86_400_000;
    const taskRows = [];
    const instanceRows = [];
    for (let i = 0; i < MANY; i++) {
      at += 1000;
      const edge = i === 0 || i === MANY / 2 || i === MANY - 1;
      taskRows.push({ ...taskColumns, id: newId('tsk', at), tenantId, state: edge ? 'running' : 'succeeded' });
      instanceRows.push({ ...instanceColumns, id: newId('ins', at), tenantId, name: edge ? `needle-${i}` : `vm-${i}` });
      // Another tenant's rows between them, none of them its own concern.
      if (i % 10 === 0) taskRows.push({ ...taskColumns, id: newId('tsk', at + 1), tenantId: other, state: 'running' });
    }
    for (let i = 0; i < taskRows.length; i += 250)
      await f.store.db
        .insertInto('tasks')
        .values(taskRows.slice(i, i + 250))
        .execute();
    for (let i = 0; i < instanceRows.length; i += 250)
      await f.store.db
        .insertInto('instances')
        .values(instanceRows.slice(i, i + 250))
        .execute();
    running = taskRows
      .filter((t) => t.tenantId === tenantId && t.state === 'running')
      .map((t) => t.id)
      .reverse();
    needles = instanceRows.filter((r) => r.name.startsWith('needle')).map((r) => r.id);
  });

  /** Every page of a walk, cursor to cursor. */
  async function walk<T>(list: (cursor?: string) => Promise<Page<T>>): Promise<Page<T>[]> {
    const pages: Page<T>[] = [];
    let cursor: string | undefined;
    do {
      const page = await list(cursor);
      pages.push(page);
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined && pages.length < 100);
    return pages;
  }

  it('walks every match once, in the list order, a bounded stretch a page', async () => {
    const byState = await walk((cursor) => tasks.list({ limit: 50, cursor }, { tenantId, state: 'running' }));
    expect(byState.flatMap((p) => p.items.map((t) => t.id))).toEqual(running);
    // Short pages with a cursor: each found the one match of its stretch.
    expect(byState.map((p) => p.items.length)).toEqual([1, 1, 1]);
    const byKind = await walk((cursor) => tasks.list({ limit: 50, cursor }, { tenantId, kind: 'restore' }));
    expect(byKind.flatMap((p) => p.items)).toEqual([]);
    expect(byKind.length).toBe(MANY / SCANNED_ROWS);
    const searched = await walk((cursor) => catalog.listInstances({ limit: 50, cursor }, tenantId, 'needle'));
    expect(searched.flatMap((p) => p.items.map((i) => i.id))).toEqual(needles);
    // A filter that fills the page cuts it as ever; a list with no filter reads by its index.
    const full = await tasks.list({ limit: 50 }, { tenantId, state: 'succeeded' });
    expect(full.items).toHaveLength(50);
    expect(full.nextCursor).not.toBeNull();
    expect((await tasks.list({ limit: 500 }, { tenantId })).items).toHaveLength(500);
    const two = await walk((cursor) => tasks.list({ limit: 2, cursor }, { tenantId, state: 'running' }));
    expect(two.flatMap((p) => p.items.map((t) => t.id))).toEqual(running);
  });

  // SQLite runs a page on the thread every tenant's requests share: each statement of a filtered
  // page reads its stretch through the index by tenant and id, never every row of the tenant.
  it.runIf(backend === 'sqlite')(
    'reads each filtered page as a range of the index by tenant and id on SQLite',
    async () => {
      const first = await tasks.list({ limit: 50 }, { tenantId, state: 'running' });
      const pages: [string, () => Promise<unknown>, RegExp][] = [
        [
          'tasks by state',
          () => tasks.list({ limit: 50, cursor: first.nextCursor! }, { tenantId, state: 'running' }),
          /tasks_tenant_newest \(tenant_id=\? AND id[<>]\?/,
        ],
        [
          'instances by name',
          () => catalog.listInstances({ limit: 50 }, tenantId, 'needle'),
          /instances_tenant \(tenant_id=\?/,
        ],
        // Every tenant's (the sp-admin's list): walked by the primary key, not by state and sorted.
        ['all tasks by state', () => tasks.list({ limit: 50 }, { state: 'succeeded' }), /sqlite_autoindex_tasks_1/],
      ];
      for (const [name, page, index] of pages) {
        statements.length = 0;
        watching = true;
        await page();
        watching = false;
        expect(statements, name).toHaveLength(2);
        for (const text of statements) {
          const nulls = Array.from(text.matchAll(/\?/g), () => null);
          const plan = await f.store.db.executeQuery<{ detail: string }>(
            CompiledQuery.raw(`explain query plan ${text}`, nulls),
          );
          const steps = plan.rows.map((r) => r.detail).join('; ');
          expect(steps, `${name}: ${text}`).toMatch(index);
          expect(steps, `${name}: ${text}`).not.toMatch(/SCAN (tasks|instances)(;|$)|TEMP B-TREE|tasks_queue/);
        }
        // The read is bounded below by the stretch's far end as well as by the cursor.
        expect(statements[1], name).toMatch(/"id" (>=|<=) \?/);
      }
    },
  );
});
