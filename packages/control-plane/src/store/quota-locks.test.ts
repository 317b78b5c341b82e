import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { newId } from './ids.js';
import { transact } from './db.js';
import { jobRow, jobScheduleRow } from '../testing/job-rows.js';
import { whileHeld } from '../testing/row-locks.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';

const TENANTS = 5;
const TASKS_EACH = 600;
const BACKUPS_EACH = 300;

/*
 * A backup's start counts its tenant's restore points and backups in flight with locking reads
 * (on MySQL/MariaDB), so that two starts of one tenant take their turn. InnoDB locks every row
 * such a read reads, and the gaps between them, until the transaction ends: read through an index
 * of every tenant's rows (or the whole table, which MariaDB's planner chose for the tasks with a
 * handful of tenants), one tenant's backup start waited for any transaction that held another
 * tenant's task, or that had recorded another tenant's backup of the same offering, and held them
 * up in turn.
 */
describe.runIf(backends.includes('mysql'))("a backup's start and other tenants' rows (mysql)", () => {
  const f = storeFixture('mysql', { tasksByHand: true });
  const tenants: string[] = [];
  const queuedOf = new Map<string, string>();
  let offeringId: string;
  let instanceOf: Map<string, string>;
  let backupColumns: Record<string, unknown>;

  beforeAll(async () => {
    const providerId = (await f.provider()).id;
    offeringId = (await f.offering({ providerId })).id;
    for (let i = 0; i < TENANTS; i++) tenants.push((await f.repos.tenants.create(`quota-${i}`)).id);
    instanceOf = new Map();
    for (const tenantId of tenants) instanceOf.set(tenantId, (await f.instance({ tenantId, name: 'vm' })).id);
    const template = await f.repos.tasks.create(backupTask({ tenantId: tenants[0]!, providerId }));
    const { id: _id, ...columns } = (await f.repos.tasks.get(template.id))!;
    await f.store.db.deleteFrom('tasks').execute();
    const taskRows = [];
    const backupRows = [];
    let at = Date.now() - 86_400_000;
    for (const tenantId of tenants) {
      const instanceId = instanceOf.get(tenantId)!;
      for (let i = 0; i < TASKS_EACH; i++) {
        const id = newId('tsk', ++at);
        const state = i % 10 === 0 ? 'queued' : 'succeeded';
        if (state === 'queued') queuedOf.set(tenantId, id);
        taskRows.push({ ...columns, id, tenantId, instanceId, offeringId, state });
      }
      for (let i = 0; i < BACKUPS_EACH; i++)
        backupRows.push({
          id: newId('bkp', ++at),
          tenantId,
          instanceId,
          offeringId,
          taskId: null,
          name: `b${i}`,
          mode: 'FULL',
          createdAt: at,
          sizeBytes: 1,
          addedBytes: 1,
          externalId: `ext-${at}`,
          parentId: null,
          expiresAt: null,
          deleteTaskId: null,
          vanishedAt: null,
          recordedAt: at,
        });
    }
    for (let i = 0; i < taskRows.length; i += 500)
      await f.store.db
        .insertInto('tasks')
        .values(taskRows.slice(i, i + 500))
        .execute();
    for (let i = 0; i < backupRows.length; i += 500)
      await f.store.db
        .insertInto('backups')
        .values(backupRows.slice(i, i + 500))
        .execute();
    backupColumns = backupRows[0]!;
    await sql`analyze table tasks, backups`.execute(f.store.db);
  });

  /** Tenant 0's backup start, judged in a transaction of its own. */
  const start = () =>
    transact(f.store.db, (trx) => f.repos.quotas.backupStarts([{ tenantId: tenants[0]!, offeringId }], trx));

  it("does not wait for a transaction that holds another tenant's task", async () => {
    const outcome = await whileHeld(
      f.tdb.url,
      (run) => run('update tasks set percent = 50 where id = ?', [queuedOf.get(tenants[3]!)]),
      start,
    );
    expect(outcome).toBe('done');
  });

  it("does not wait for a transaction that recorded another tenant's backup of the same offering", async () => {
    const tenantId = tenants[3]!;
    const row = {
      ...backupColumns,
      id: newId('bkp', Date.now()),
      tenantId,
      instanceId: instanceOf.get(tenantId),
      externalId: 'new',
    };
    const names = Object.keys(row).map((k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
    const outcome = await whileHeld(
      f.tdb.url,
      async (run) => {
        await run(
          `insert into backups (${names.join(', ')}) values (${names.map(() => '?').join(', ')})`,
          Object.values(row),
        );
        // And counted, as a backup's end counts its record (the other tenant's first count here).
        await run(
          `insert into restore_point_usage (tenant_id, offering_id, restore_points, bytes, records, stored_bytes)
           values (?, ?, 1, 1, 1, 1)
           on duplicate key update restore_points = restore_points + 1, bytes = bytes + 1, records = records + 1,
             stored_bytes = stored_bytes + 1`,
          [tenantId, offeringId],
        );
      },
      start,
    );
    expect(outcome).toBe('done');
  });
});

const INSTANCES_EACH = 40;
const JOBS_EACH = 8;
const SCHEDULES_EACH_JOB = 4;

/*
 * A create that adds to a count quota (an instance, a user schedule, a backup job, a job's
 * schedule) reads what its tenant (or job) has with a locking read, in the request's
 * transaction: the tenant's kept count, or the job's own row for its schedules. Read through
 * anything but its key (a table scan), that read would lock every tenant's rows: one tenant's
 * create would wait for another tenant's open write, and hold others' up in turn. Each case holds
 * a row of another tenant, one of the rows counted or its kept counts, while a tenant reserves.
 */
describe.runIf(backends.includes('mysql'))("a count quota's reservation and other tenants' rows (mysql)", () => {
  const f = storeFixture('mysql');
  const tenants: string[] = [];
  /** Per tenant: one of its instances, and one of its jobs. */
  const instanceOf = new Map<string, string>();
  const jobOf = new Map<string, string>();

  beforeAll(async () => {
    for (let i = 0; i < TENANTS; i++) tenants.push((await f.repos.tenants.create(`count-${i}`)).id);
    const now = Date.now();
    let at = now - 86_400_000;
    const instances = [];
    const userSchedules = [];
    const jobs = [];
    const jobSchedules = [];
    for (const tenantId of tenants) {
      for (let i = 0; i < INSTANCES_EACH; i++) {
        const id = newId('ins', ++at);
        instanceOf.set(tenantId, id);
        instances.push({
          id,
          tenantId,
          name: `vm-${i}`,
          zone: 'z',
          locator: '{}',
          agentId: null,
          offeringId: null,
          createdAt: at,
          offeringSetAt: null,
          scheduleOwner: null,
          scheduleState: null,
          scheduleTaskId: null,
          locatorClaim: 'sp',
        });
        const cron = { cron: '0 3 * * *', timezone: 'UTC', createdAt: at, updatedAt: at };
        userSchedules.push({ instanceId: id, tenantId, keepLast: 7, ...cron });
      }
      for (let j = 0; j < JOBS_EACH; j++) {
        const jobId = newId('job', ++at);
        jobOf.set(tenantId, jobId);
        jobs.push(jobRow({ id: jobId, tenantId, createdAt: at, name: `job-${j}`, scheduleCount: SCHEDULES_EACH_JOB }));
        for (let s = 0; s < SCHEDULES_EACH_JOB; s++)
          jobSchedules.push(jobScheduleRow(newId('jsc', ++at), { id: jobId, tenantId }, at));
      }
    }
    await f.store.db.insertInto('instances').values(instances).execute();
    await f.store.db.insertInto('userSchedules').values(userSchedules).execute();
    await f.store.db.insertInto('backupJobs').values(jobs).execute();
    await f.store.db.insertInto('backupJobSchedules').values(jobSchedules).execute();
    // What the quotas keep as counts, as the creates above would have moved them.
    const kept = { instances: INSTANCES_EACH, userSchedules: INSTANCES_EACH, jobs: JOBS_EACH };
    await f.store.db
      .insertInto('tenantCounts')
      .values(tenants.flatMap((tenantId) => Object.entries(kept).map(([quota, used]) => ({ tenantId, quota, used }))))
      .execute();
    await sql`analyze table instances, user_schedules, backup_jobs, backup_job_schedules`.execute(f.store.db);
  });

  const other = () => tenants[3]!;
  const cases = [
    {
      quota: 'instances',
      hold: () => ({ text: 'update instances set name = name where id = ?', id: instanceOf.get(other()) }),
    },
    {
      quota: 'userSchedules',
      hold: () => ({
        text: 'update user_schedules set keep_last = keep_last where instance_id = ?',
        id: instanceOf.get(other()),
      }),
    },
    {
      quota: 'jobs',
      hold: () => ({ text: 'update backup_jobs set name = name where id = ?', id: jobOf.get(other()) }),
    },
    {
      quota: 'schedulesPerJob',
      hold: () => ({
        text: 'update backup_job_schedules set runs = runs + 1 where job_id = ?',
        id: jobOf.get(other()),
      }),
    },
    ...(['instances', 'userSchedules', 'jobs'] as const).map((quota) => ({
      quota,
      hold: () => ({ text: 'update tenant_counts set used = used where tenant_id = ?', id: other() }),
    })),
  ] as const;

  it.each(cases)("counts $quota without waiting for a transaction that holds another tenant's row", async (c) => {
    const { text, id } = c.hold();
    const tenantId = tenants[0]!;
    const outcome = await whileHeld(
      f.tdb.url,
      (run) => run(text, [id]),
      () => f.repos.quotas.reserve(tenantId, c.quota, 1, jobOf.get(tenantId)!),
    );
    expect(outcome).toBe('done');
  });
});
