import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { newId } from './ids.js';
import { inRequestTransaction, scopedDb } from './request-scope.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';

/** A large tenant's tasks and events, with a small tenant's tenth of them among them. */
const MANY = 6000;
const LIMIT = 50;

/*
 * A page of a list keyed by (tenant or instance, id) reads its own rows, however deep into the
 * list it is and whatever the planner's statistics say. MariaDB's planner, with the statistics of
 * a table that just grew, looked the tenant up and walked its rows from the newest, comparing the
 * cursor row by row (a page 5,000 rows deep read 5,000 rows); with fresh ones it may walk the
 * primary key over every other tenant's rows. Rows read are counted by the server (the session's
 * handler reads), on one connection: a request transaction's.
 */
describe.runIf(backends.includes('mysql'))('a page deep in a list (mysql)', () => {
  const backend = 'mysql';
  const statements: string[] = [];
  let watching = false;
  const f = storeFixture(backend, { observe: (text) => void (watching && statements.push(text)) });
  const { tasks, events, backups, jobs } = f.repos;
  let big: string;
  let small: string;
  let instanceId: string;
  /** Each tenant's task ids, oldest first. */
  const taskIds: Record<string, string[]> = {};
  const eventIds: Record<string, number[]> = {};

  beforeAll(async () => {
    const providerId = (await f.provider()).id;
    big = f.providerTenant;
    small = (await f.repos.tenants.create('small')).id;
    instanceId = (await f.instance({ name: 'vm' })).id;
    const template = await tasks.create(backupTask({ tenantId: big, providerId }));
    const { id: _id, ...columns } = (await tasks.get(template.id))!;
    await f.store.db.deleteFrom('tasks').execute();
    let at = Date.now() - 10 * 86_400_000;
    const taskRows = [];
    const eventRows = [];
    for (let i = 0; i < MANY; i++) {
      at += 1000;
      const tenantId = i % 10 === 0 ? small : big;
      // The small tenant's tasks are all of one instance.
      const instance = tenantId === small ? instanceId : null;
      taskRows.push({ ...columns, id: newId('tsk', at), tenantId, instanceId: instance });
      eventRows.push({ tenantId, type: 'test.event', at, message: `event ${i}` });
    }
    for (let i = 0; i < MANY; i += 500) {
      await f.store.db
        .insertInto('tasks')
        .values(taskRows.slice(i, i + 500))
        .execute();
      await f.store.db
        .insertInto('events')
        .values(eventRows.slice(i, i + 500))
        .execute();
    }
    for (const t of [big, small]) {
      taskIds[t] = taskRows.filter((r) => r.tenantId === t).map((r) => r.id);
      eventIds[t] = (
        await f.store.db.selectFrom('events').select('id').where('tenantId', '=', t).orderBy('id').execute()
      ).map((r) => Number(r.id));
    }
  });

  /** `read` inside one request transaction, and the rows the server read for it. */
  async function rowsRead<T>(read: () => Promise<T>): Promise<{ result: T; rows: number }> {
    let rows = 0;
    let result!: T;
    const handlerReads = async () => {
      const r = await sql<{ Variable_name?: string; variableName?: string; Value?: string; value?: string }>`
        show session status where variable_name in ('Handler_read_next', 'Handler_read_prev', 'Handler_read_rnd_next', 'Handler_read_key', 'Handler_read_first', 'Handler_read_last')`.execute(
        scopedDb(f.store.db),
      );
      return r.rows.reduce((n, row) => n + Number(row.Value ?? row.value), 0);
    };
    await inRequestTransaction(f.store.db, async () => {
      const floor0 = await handlerReads();
      const floor1 = await handlerReads();
      const before = await handlerReads();
      result = await read();
      const after = await handlerReads();
      // What one `show session status` reads itself, taken off.
      rows = after - before - (floor1 - floor0);
      return true;
    });
    return { result, rows };
  }

  const cursorAt = (id: string | number) => Buffer.from(String(id)).toString('base64url');

  it.each([
    // `depth`: the page ends that many rows from the end of the newest-first list.
    ['the large tenant, 1,000 rows from the end', () => big, 1000],
    ['the large tenant, 100 rows from the end', () => big, 100],
    ['the small tenant, 100 rows from the end', () => small, 100],
  ])('a page of tasks of %s reads about its own rows', async (_, tenant, depth) => {
    const ids = taskIds[tenant()]!;
    const { result, rows } = await rowsRead(() =>
      tasks.list({ limit: LIMIT, cursor: cursorAt(ids[depth]!) }, { tenantId: tenant() }),
    );
    expect(result.items.map((t) => t.id)).toEqual(ids.slice(depth - LIMIT, depth).reverse());
    expect(rows, 'rows read for a page of 50').toBeLessThanOrEqual(3 * LIMIT);
  });

  it("a page of an instance's tasks, and of a tenant's events, reads about its own rows", async () => {
    const ids = taskIds[small]!;
    const page = await rowsRead(() => tasks.list({ limit: LIMIT, cursor: cursorAt(ids[500]!) }, { instanceId }));
    expect(page.result.items.map((t) => t.id)).toEqual(ids.slice(450, 500).reverse());
    expect(page.rows).toBeLessThanOrEqual(3 * LIMIT);
    for (const t of [big, small]) {
      const ev = eventIds[t]!;
      const { result, rows } = await rowsRead(() => events.list(ev[ev.length - 200]!, LIMIT, t));
      expect(result.rows.map((e) => Number(e.id))).toEqual(ev.slice(ev.length - 199, ev.length - 149));
      expect(rows, `rows read for a page of ${t}'s events`).toBeLessThanOrEqual(3 * LIMIT);
    }
  });

  it('every list keyed by (owner, id) names its index', async () => {
    statements.length = 0;
    watching = true;
    await backups.list({ limit: 5 }, { tenantId: small });
    await backups.list({ limit: 5 }, { instanceId });
    await tasks.progress(taskIds[small]![0]!, { limit: 5 });
    await jobs.runs('job_00000000000000000000000000', { limit: 5 });
    await f.repos.catalog.listInstances({ limit: 5 }, small);
    await jobs.list({ limit: 5 }, small);
    watching = false;
    const hints = statements.map((s) => /force index \(`(\w+)`\)/.exec(s)?.[1]);
    expect(hints).toEqual([
      'backups_tenant_newest',
      'backups_instance_newest',
      'task_progress_task',
      'backup_job_runs_job',
      'instances_tenant',
      'backup_jobs_tenant',
    ]);
  });
});
