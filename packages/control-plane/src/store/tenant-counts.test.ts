import fc from 'fast-check';
import { sql, type Kysely } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import * as countsMigration from './migrations/0035-tenant-counts.js';
import * as keptMigration from './migrations/0037-kept-schedule-job-counts.js';
import * as protectedMigration from './migrations/0042-usage-counts.js';
import { UsageRepository } from './usage-repository.js';
import { transact } from './db.js';
import { newId } from './ids.js';
import { jobRow, jobScheduleRow } from '../testing/job-rows.js';
import { storeFixture } from '../testing/store-fixture.js';
import { QuotaExceededError } from '../domain/errors.js';

/*
 * A tenant's instances are kept as a count, moved where an instance is made or deleted, and read
 * by every create's quota check; those with an offering likewise, moved wherever an instance's
 * offering is set or cleared, and read by the usage report. Random runs of creates, deletes and
 * offering changes (through each writer of an instance's offering) on two tenants are checked
 * after each run against a count of the instances themselves.
 */
describe.each(backends)("a tenant's instance count kept with the instances (%s)", (backend) => {
  const f = storeFixture(backend);
  const { catalog, quotas } = f.repos;
  const tenants: string[] = [];
  const offerings: string[] = [];

  beforeAll(async () => {
    for (const t of [0, 1]) tenants.push((await f.repos.tenants.create(`counts-${t}`)).id);
    const providerId = (await f.provider({ name: 'counted', credentials: {} })).id;
    for (let i = 0; i < 2; i++) offerings.push((await f.offering({ providerId })).id);
  });

  /** The instances of each of the two tenants, and those with an offering, counted. */
  const counted = async () => {
    const { rows } = await sql<{ tenantId: string; n: number; offered: number }>`
      select tenant_id, count(*) as n, count(offering_id) as offered from instances group by tenant_id`.execute(
      f.store.db,
    );
    const by = new Map(rows.map((r) => [r.tenantId, r]));
    return tenants.map((t) => ({
      instances: Number(by.get(t)?.n ?? 0),
      protectedInstances: Number(by.get(t)?.offered ?? 0),
      unprotectedInstances: Number(by.get(t)?.n ?? 0) - Number(by.get(t)?.offered ?? 0),
    }));
  };
  /** The same, as kept (what the quota and the usage report read). */
  const kept = async () => {
    const report = new Map(
      (await new UsageRepository(f.store.db).perTenant({ limit: 100 })).items.map((u) => [u.tenantId, u]),
    );
    return Promise.all(
      tenants.map(async (t) => ({
        instances: (await quotas.usage(t)).instances,
        protectedInstances: report.get(t)?.protectedInstances,
        unprotectedInstances: report.get(t)?.unprotectedInstances,
      })),
    );
  };

  const WAYS = ['setInstanceOffering', 'setInstanceSchedule', 'setInstanceSchedule, another task waited for'] as const;
  let n = 0;
  let deleted = 0;
  /** Offering changes that took effect, by way and by what they did. */
  const offered = new Map<string, number>();
  it('follows every create, delete and offering change', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            op: fc.constantFrom('create', 'delete', 'offer'),
            tenant: fc.nat(1),
            pick: fc.nat(),
            offering: fc.nat(2),
            way: fc.nat(WAYS.length - 1),
          }),
          { minLength: 3, maxLength: 20 },
        ),
        async (ops) => {
          for (const op of ops) {
            const tenantId = tenants[op.tenant]!;
            if (op.op === 'create') {
              await catalog.createInstance({ tenantId, name: `vm-${++n}`, zone: 'z', locator: {}, agentId: null });
              continue;
            }
            const mine = await f.store.db
              .selectFrom('instances')
              .select(['id', 'offeringId', 'scheduleTaskId'])
              .where('tenantId', '=', tenantId)
              .orderBy('id')
              .execute();
            if (mine.length === 0) continue;
            const instance = mine[op.pick % mine.length]!;
            if (op.op === 'delete') {
              await catalog.deleteInstance(instance.id);
              deleted++;
              continue;
            }
            const offeringId = offerings[op.offering] ?? null;
            const way = WAYS[op.way]!;
            let written = true;
            if (way === 'setInstanceOffering') await catalog.setInstanceOffering(instance.id, offeringId, 1);
            else
              written = await transact(f.store.db, (trx) =>
                catalog.setInstanceSchedule(
                  trx,
                  instance.id,
                  { offeringId, offeringSetAt: 1, owner: null, state: null, taskId: `tsk_${n}` },
                  way === 'setInstanceSchedule' ? undefined : 'tsk_other',
                ),
              );
            const did = !written
              ? 'nothing (not the task waited for)'
              : (instance.offeringId === null) === (offeringId === null)
                ? 'kept it offered or not'
                : offeringId === null
                  ? 'cleared'
                  : 'set';
            offered.set(`${way}: ${did}`, (offered.get(`${way}: ${did}`) ?? 0) + 1);
          }
          expect(await kept()).toEqual(await counted());
        },
      ),
      // A fixed run (the same on both stores) that does every kind of change checked below.
      { numRuns: 25, seed: 42 },
    );
    // The runs did each (not how many are left: the walk may end anywhere, at none too).
    expect(n, 'instances made').toBeGreaterThan(0);
    expect(deleted, 'instances deleted').toBeGreaterThan(0);
    for (const way of WAYS.slice(0, 2))
      for (const did of ['set', 'cleared', 'kept it offered or not'])
        expect(offered.get(`${way}: ${did}`) ?? 0, `${way}: ${did}`).toBeGreaterThan(0);
    expect(offered.get(`${WAYS[2]}: nothing (not the task waited for)`) ?? 0).toBeGreaterThan(0);
  });

  it('migration 0042 counts the instances with an offering as they stand', async () => {
    const { id } = await catalog.createInstance({
      tenantId: tenants[1]!,
      name: 'offered',
      zone: 'z',
      locator: {},
      agentId: null,
    });
    await catalog.setInstanceOffering(id, offerings[0]!, 1);
    const before = await counted();
    expect(before[1]!.protectedInstances).toBeGreaterThan(0);
    const db = f.store.db as unknown as Kysely<unknown>;
    await protectedMigration.down(db);
    expect((await kept())[1]!.protectedInstances).toBe(0);
    await protectedMigration.up(db);
    expect(await kept()).toEqual(before);
  });

  it('migration 0035 counts the instances as they stand', async () => {
    await catalog.createInstance({ tenantId: tenants[0]!, name: 'one-more', zone: 'z', locator: {}, agentId: null });
    const before = await counted();
    const db = f.store.db as unknown as Kysely<unknown>;
    await countsMigration.down(db);
    await countsMigration.up(db);
    // The table's other count is filled by a later migration (the down above dropped it too).
    await protectedMigration.up(db);
    expect(await kept()).toEqual(before);
  });

  it("a create's quota check reads the kept count", async () => {
    const tenantId = tenants[1]!;
    // Set apart from the instances (the random runs above may have left this tenant none, and no row).
    await f.store.db.deleteFrom('tenantCounts').where('tenantId', '=', tenantId).execute();
    await f.store.db.insertInto('tenantCounts').values({ tenantId, quota: 'instances', used: 1_000_000 }).execute();
    await expect(quotas.reserve(tenantId, 'instances', 1)).rejects.toBeInstanceOf(QuotaExceededError);
    await expect(quotas.reserve(tenants[0]!, 'instances', 1)).resolves.toBeUndefined();
  });

  it("lists each offering the tenant's instances are assigned to, once, and no other tenant's", async () => {
    const providerId = (await f.provider({ credentials: {} })).id;
    const offerings = [];
    for (let i = 0; i < 4; i++) offerings.push((await f.offering({ providerId })).id);
    // Tenants of their own: the runs above left offerings on the others' instances.
    const mine = (await f.repos.tenants.create('listed-mine')).id;
    const other = (await f.repos.tenants.create('listed-other')).id;
    const assign = async (tenantId: string, offeringId: string | null, count: number) => {
      for (let i = 0; i < count; i++) {
        const { id } = await catalog.createInstance({
          tenantId,
          name: `vm-${++n}`,
          zone: 'z',
          locator: {},
          agentId: null,
        });
        await f.store.db.updateTable('instances').set({ offeringId }).where('id', '=', id).execute();
      }
    };
    await assign(mine, offerings[2]!, 3);
    await assign(mine, null, 2);
    await assign(mine, offerings[0]!, 1);
    await assign(mine, offerings[3]!, 2);
    await assign(other, offerings[1]!, 2);
    const listed = [...(await quotas.usageByOffering(mine)).keys()];
    expect(listed).toEqual([offerings[0], offerings[2], offerings[3]].sort());
    expect([...(await quotas.usageByOffering(other)).keys()]).toEqual([offerings[1]]);
  });
});

/*
 * A tenant's user schedules and backup jobs are kept as counts too, and each job's schedules and
 * members on its own row. Random runs of every change to them (a schedule set, replaced or
 * removed; a job made with schedules and members, deleted, given to the other tenant or given
 * other members; a job's schedule added or removed)
 * on two tenants are checked after each run against the rows themselves.
 */
describe.each(backends)("a tenant's user schedules and jobs counted with them (%s)", (backend) => {
  const f = storeFixture(backend);
  const { catalog, quotas, schedules, jobs } = f.repos;
  const tenants: string[] = [];
  let at = Date.now();

  beforeAll(async () => {
    for (const t of [0, 1]) tenants.push((await f.repos.tenants.create(`kept-${t}`)).id);
  });

  const jobSchedule = (job: { id: string; tenantId: string }) => jobScheduleRow(newId('jsc', ++at), job, at);
  const newJob = async (tenantId: string, scheduleCount: number) => {
    const instanceIds = JSON.stringify(Array.from({ length: scheduleCount }, (_, i) => `ins_j${i}`));
    const job = jobRow({ id: newId('job', ++at), tenantId, createdAt: at, scheduleCount, instanceIds });
    const rows = Array.from({ length: scheduleCount }, () => jobSchedule(job));
    await transact(f.store.db, (trx) => jobs.insert(trx, job, rows));
  };

  /** Per tenant: its user schedules, its jobs and the most schedules one of its jobs has, counted from the rows. */
  const counted = async () =>
    Promise.all(
      tenants.map(async (t) => {
        const n = async (q: { executeTakeFirstOrThrow(): Promise<{ n: number | string | bigint }> }) =>
          Number((await q.executeTakeFirstOrThrow()).n);
        const db = f.store.db;
        const perJob = await db
          .selectFrom('backupJobs')
          .leftJoin('backupJobSchedules', 'backupJobSchedules.jobId', 'backupJobs.id')
          .select((eb) => eb.fn.count<number>('backupJobSchedules.id').as('n'))
          .where('backupJobs.tenantId', '=', t)
          .groupBy('backupJobs.id')
          .execute();
        const members = await db.selectFrom('backupJobs').select('instanceIds').where('tenantId', '=', t).execute();
        return {
          membersPerJob: Math.max(0, ...members.map((r) => (JSON.parse(r.instanceIds) as unknown[]).length)),
          userSchedules: await n(
            db
              .selectFrom('userSchedules')
              .select((eb) => eb.fn.countAll<number>().as('n'))
              .where('tenantId', '=', t),
          ),
          jobs: perJob.length,
          schedulesPerJob: Math.max(0, ...perJob.map((r) => Number(r.n))),
        };
      }),
    );
  /** The same, as the quotas read them. */
  const kept = async () =>
    Promise.all(
      tenants.map(async (t) => {
        const u = await quotas.usage(t);
        return {
          membersPerJob: u.membersPerJob,
          userSchedules: u.userSchedules,
          jobs: u.jobs,
          schedulesPerJob: u.schedulesPerJob,
        };
      }),
    );
  const idsOf = async (table: 'userSchedules' | 'backupJobs', tenantId: string) =>
    table === 'userSchedules'
      ? (await f.store.db.selectFrom(table).select('instanceId as id').where('tenantId', '=', tenantId).execute()).map(
          (r) => r.id,
        )
      : (await f.store.db.selectFrom(table).select('id').where('tenantId', '=', tenantId).execute()).map((r) => r.id);

  const OPS = [
    'schedule',
    'unschedule',
    'job',
    'dropJob',
    'moveJob',
    'members',
    'addJobSchedule',
    'dropJobSchedule',
  ] as const;
  const step = (op: (typeof OPS)[number], size = 1) => ({ op, tenant: 0, pick: 0, size });
  const everyKind = [
    step('job', 2),
    step('job', 1),
    step('schedule'),
    step('schedule', 0),
    step('unschedule'),
    step('addJobSchedule'),
    step('dropJobSchedule'),
    step('members', 3),
    step('moveJob'),
    step('dropJob'),
  ];
  /** The changes that took effect, by kind (a schedule's replacement apart). */
  const did = new Set<string>();

  it('follow every change to the schedules and jobs', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ op: fc.constantFrom(...OPS), tenant: fc.nat(1), pick: fc.nat(), size: fc.nat(3) }), {
          minLength: 3,
          maxLength: 25,
        }),
        async (ops) => {
          for (const op of ops) {
            const tenantId = tenants[op.tenant]!;
            const pick = <T>(xs: readonly T[]) => xs[op.pick % xs.length];
            switch (op.op) {
              case 'schedule': {
                // A new instance's first schedule, or one set again on an instance that has one.
                const scheduled = await idsOf('userSchedules', tenantId);
                const replace = op.size === 0 ? pick(scheduled) : undefined;
                const instanceId =
                  replace ??
                  (await catalog.createInstance({ tenantId, name: `s-${++at}`, zone: 'z', locator: {}, agentId: null }))
                    .id;
                const input = { instanceId, tenantId, cron: '0 3 * * *', timezone: 'UTC', keepLast: 3 };
                await schedules.put(input, ++at);
                did.add(replace ? 'schedule replaced' : 'schedule');
                break;
              }
              case 'unschedule': {
                const id = pick(await idsOf('userSchedules', tenantId));
                if (id && (await schedules.delete(id))) did.add(op.op);
                break;
              }
              case 'job':
                await newJob(tenantId, op.size);
                did.add(op.op);
                break;
              case 'dropJob': {
                const id = pick(await idsOf('backupJobs', tenantId));
                if (!id) break;
                await transact(f.store.db, (trx) => jobs.delete(trx, id));
                did.add(op.op);
                break;
              }
              case 'moveJob': {
                const id = pick(await idsOf('backupJobs', tenantId));
                if (!id) break;
                const to = tenants[1 - op.tenant]!;
                await transact(f.store.db, (trx) => jobs.update(trx, id, { tenantId: to }, ++at));
                did.add(op.op);
                break;
              }
              case 'members': {
                // A job's members replaced by a list of another length (the ids need not exist here).
                const id = pick(await idsOf('backupJobs', tenantId));
                if (!id) break;
                const instanceIds = Array.from({ length: op.size * 2 + 1 }, (_, i) => `ins_m${i}`);
                await transact(f.store.db, (trx) => jobs.update(trx, id, { instanceIds }, ++at));
                did.add(op.op);
                break;
              }
              case 'addJobSchedule': {
                const id = pick(await idsOf('backupJobs', tenantId));
                if (!id) break;
                await transact(f.store.db, (trx) => jobs.addSchedule(trx, id, jobSchedule({ id, tenantId })));
                did.add(op.op);
                break;
              }
              case 'dropJobSchedule': {
                const id = pick(await idsOf('backupJobs', tenantId));
                const sid = id ? pick(await jobs.schedulesOf(id))?.id : undefined;
                if (!id || !sid) break;
                if (await transact(f.store.db, (trx) => jobs.deleteSchedule(trx, id, sid))) did.add(op.op);
                break;
              }
            }
          }
          expect(await kept()).toEqual(await counted());
        },
      ),
      // A fixed run of every kind first (random runs may miss one), then random ones.
      { numRuns: 15, examples: [[everyKind]] },
    );
    // Every kind of change took effect (not how the rows stand at the end: a random walk may end
    // anywhere).
    expect([...did].sort()).toEqual([...OPS, 'schedule replaced'].sort());
  });

  it("a job's schedules are kept on its row, and a job given to the same tenant moves no count", async () => {
    const [mine] = tenants as [string, string];
    await newJob(mine, 2);
    const [job] = await f.store.db
      .selectFrom('backupJobs')
      .selectAll()
      .where('tenantId', '=', mine)
      .orderBy('id', 'desc')
      .limit(1)
      .execute();
    expect(job!.scheduleCount).toBe(2);
    const before = (await quotas.usage(mine)).jobs;
    await transact(f.store.db, (trx) => jobs.update(trx, job!.id, { tenantId: mine }, ++at));
    expect((await quotas.usage(mine)).jobs).toBe(before);
  });

  it('migration 0037 counts the schedules and jobs as they stand', async () => {
    await newJob(tenants[1]!, 3);
    const before = await counted();
    const db = f.store.db as unknown as Kysely<unknown>;
    await keptMigration.down(db);
    await keptMigration.up(db);
    expect(await kept()).toEqual(before);
  });

  it("a create's quota check reads the kept counts", async () => {
    const tenantId = tenants[1]!;
    await f.store.db.deleteFrom('tenantCounts').where('tenantId', '=', tenantId).execute();
    await f.store.db
      .insertInto('tenantCounts')
      .values([
        { tenantId, quota: 'userSchedules', used: 1_000_000 },
        { tenantId, quota: 'jobs', used: 1_000_000 },
      ])
      .execute();
    await expect(quotas.reserve(tenantId, 'userSchedules', 1)).rejects.toBeInstanceOf(QuotaExceededError);
    await expect(quotas.reserve(tenantId, 'jobs', 1)).rejects.toBeInstanceOf(QuotaExceededError);
    await expect(quotas.reserve(tenants[0]!, 'jobs', 1)).resolves.toBeUndefined();
    const jobId = (await idsOf('backupJobs', tenantId))[0]!;
    await f.store.db.updateTable('backupJobs').set({ scheduleCount: 1_000 }).where('id', '=', jobId).execute();
    await expect(quotas.reserve(tenantId, 'schedulesPerJob', 1, jobId)).rejects.toBeInstanceOf(QuotaExceededError);
    await f.store.db.updateTable('backupJobs').set({ memberCount: 1_000 }).where('id', '=', jobId).execute();
    expect((await quotas.usage(tenantId)).membersPerJob).toBe(1_000);
  });
});
