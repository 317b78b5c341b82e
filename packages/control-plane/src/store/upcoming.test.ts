import fc from 'fast-check';
import { sql, type Kysely } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { byKey } from '../domain/key-order.js';
import { NO_NEXT_FIRE } from '../domain/schedule.js';
import { transact } from './db.js';
import * as byTenantMigration from './migrations/0039-schedules-by-tenant.js';
import { newId } from './ids.js';
import type { UpcomingRow } from './schedule-repository.js';
import { jobRow, jobScheduleRow } from '../testing/job-rows.js';
import { storeFixture } from '../testing/store-fixture.js';

/*
 * The upcoming runs (`GET /v1/schedules`) read each kind of schedule from its own index, a page's
 * worth at most, and merge them. Checked against the definition, computed here from every row:
 * every schedule that fires, of the tenant (its user schedules, its jobs' schedules, the SLAs of
 * the offerings its instances have) or of every tenant, ordered by next fire, kind and id, paged
 * without a row lost or repeated. Next fire times are drawn from a few values, so that ties within
 * a kind and across kinds fall on page boundaries; some do not fire (none computed yet, or none).
 */
describe.each(backends)('upcoming runs, page by page (%s)', (backend) => {
  const f = storeFixture(backend);
  const { catalog, schedules, jobs } = f.repos;
  const tenants: string[] = [];
  let at = Date.now();

  beforeAll(async () => {
    for (const t of [0, 1]) tenants.push((await f.repos.tenants.create(`upcoming-${t}`)).id);
    const providerId = (await f.provider()).id;
    const sla = { cron: '0 3 * * *', keepLast: 3 };
    const offerings = [];
    for (let i = 0; i < 3; i++) offerings.push((await f.offering({ providerId, name: `sla-${i}`, sla })).id);
    for (const [t, count] of [
      [0, 6],
      [1, 3],
    ] as const) {
      const tenantId = tenants[t]!;
      for (let i = 0; i < count; i++) {
        const { id } = await catalog.createInstance({
          tenantId,
          name: `vm-${t}-${i}`,
          zone: 'z',
          locator: {},
          agentId: null,
        });
        // Tenant 0's instances on the first offering, tenant 1's on the second; the third has none.
        if (i === 0)
          await f.store.db.updateTable('instances').set({ offeringId: offerings[t]! }).where('id', '=', id).execute();
        await schedules.put({ instanceId: id, tenantId, cron: '0 3 * * *', timezone: 'UTC', keepLast: 3 }, ++at);
      }
      for (let j = 0; j < 2 + t; j++) {
        const job = jobRow({ id: newId('job', ++at), tenantId, createdAt: at, name: `job-${t}-${j}` });
        const rows = [0, 1, 2].map(() => jobScheduleRow(newId('sch', ++at), job, at));
        await transact(f.store.db, (trx) => jobs.insert(trx, job, rows));
      }
    }
  });

  /** Every schedule that fires, as the list defines it, for `tenantId` (undefined: every tenant). */
  const expected = async (tenantId: string | undefined): Promise<UpcomingRow[]> => {
    const db = f.store.db;
    const fires = (n: number | null | undefined): n is number => n != null && Number(n) < NO_NEXT_FIRE;
    const out: UpcomingRow[] = [];
    for (const r of await db
      .selectFrom('userSchedules')
      .innerJoin('instances', 'instances.id', 'userSchedules.instanceId')
      .select([
        'userSchedules.instanceId',
        'userSchedules.tenantId',
        'nextFireAt',
        'cron',
        'timezone',
        'instances.name',
      ])
      .execute())
      if (fires(r.nextFireAt) && (tenantId === undefined || r.tenantId === tenantId))
        out.push({
          kind: 'user',
          id: r.instanceId,
          nextFireAt: Number(r.nextFireAt),
          name: r.name,
          cron: r.cron,
          timezone: r.timezone,
          sla: null,
          jobId: null,
        });
    for (const r of await db
      .selectFrom('backupJobSchedules')
      .innerJoin('backupJobs', 'backupJobs.id', 'backupJobSchedules.jobId')
      .select([
        'backupJobSchedules.id',
        'backupJobs.tenantId',
        'backupJobSchedules.nextFireAt',
        'backupJobSchedules.cron',
        'backupJobSchedules.timezone',
        'backupJobs.name',
        'backupJobs.id as jobId',
      ])
      .execute())
      if (fires(r.nextFireAt) && (tenantId === undefined || r.tenantId === tenantId))
        out.push({
          kind: 'job',
          id: r.id,
          nextFireAt: Number(r.nextFireAt),
          name: r.name,
          cron: r.cron,
          timezone: r.timezone,
          sla: null,
          jobId: r.jobId,
        });
    const theirs = new Set(
      (await db.selectFrom('instances').select(['offeringId', 'tenantId']).execute())
        .filter((i) => tenantId === undefined || i.tenantId === tenantId)
        .map((i) => i.offeringId),
    );
    for (const r of await db
      .selectFrom('offerings')
      .select(['id', 'name', 'nextFireAt', 'sla'])
      .where('sla', 'is not', null)
      .execute())
      if (fires(r.nextFireAt) && (tenantId === undefined || theirs.has(r.id)))
        out.push({
          kind: 'sla',
          id: r.id,
          nextFireAt: Number(r.nextFireAt),
          name: r.name,
          cron: null,
          timezone: null,
          sla: r.sla,
          jobId: null,
        });
    return out.sort((a, b) => a.nextFireAt - b.nextFireAt || byKey(a.kind, b.kind) || byKey(a.id, b.id));
  };

  /** Every page of the list, `limit` at a time. */
  const listed = async (tenantId: string | undefined, limit: number) => {
    const out: UpcomingRow[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const page = await schedules.upcoming({ limit, ...(cursor ? { cursor } : {}) }, tenantId);
      out.push(...page.items);
      if (!page.nextCursor) return out;
      cursor = page.nextCursor;
    }
    throw new Error('more than 100 pages');
  };

  const T = Date.parse('2027-01-01T03:00:00Z');
  /** A next fire time: one of a few (ties), none computed yet, or none at all. */
  const nextFire = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: 3 }).map((k) => T + k * 60_000) },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.constant(NO_NEXT_FIRE) },
  );
  let moved = 0;

  it('lists every schedule that fires once, in order, for a tenant and for every tenant', async () => {
    const counts = {
      user: (await f.store.db.selectFrom('userSchedules').select('instanceId').execute()).length,
      job: (await f.store.db.selectFrom('backupJobSchedules').select('id').execute()).length,
      sla: 3,
    };
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          user: fc.array(nextFire, { minLength: counts.user, maxLength: counts.user }),
          job: fc.array(nextFire, { minLength: counts.job, maxLength: counts.job }),
          sla: fc.array(nextFire, { minLength: counts.sla, maxLength: counts.sla }),
          limit: fc.integer({ min: 1, max: 7 }),
          move: fc.option(fc.nat(), { nil: undefined }),
        }),
        async ({ user, job, sla, limit, move }) => {
          const db = f.store.db;
          /** Gives the rows of `table`, in key order, the drawn times. */
          const set = async (table: string, key: string, times: (number | null)[]) => {
            const { rows } = await sql<{ k: string }>`
              select ${sql.ref(key)} as k from ${sql.table(table)} order by ${sql.ref(key)}`.execute(db);
            for (const [i, r] of rows.entries())
              await sql`
                update ${sql.table(table)} set next_fire_at = ${times[i] ?? null}
                where ${sql.ref(key)} = ${r.k}`.execute(db);
          };
          await set('user_schedules', 'instance_id', user);
          await set('backup_job_schedules', 'id', job);
          await set('offerings', 'id', sla);
          if (move !== undefined) {
            // A job given to the other tenant: its schedules are listed as the other's from then on.
            const all = await db.selectFrom('backupJobs').select(['id', 'tenantId']).orderBy('id').execute();
            const j = all[move % all.length]!;
            const to = tenants.find((t) => t !== j.tenantId)!;
            await transact(db, (trx) => jobs.update(trx, j.id, { tenantId: to }, ++at));
            moved++;
          }
          for (const tenantId of [...tenants, undefined]) {
            const want = await expected(tenantId);
            expect(await listed(tenantId, limit), `tenant ${tenantId ?? '(every)'}, ${limit} a page`).toEqual(want);
          }
        },
      ),
      { numRuns: 12, examples: [[{ user: [], job: [], sla: [], limit: 2, move: 0 }]] },
    );
    expect(moved, 'jobs moved between tenants').toBeGreaterThan(0);
  });

  it("migration 0039 gives each job's schedule its job's tenant", async () => {
    const db = f.store.db as unknown as Kysely<unknown>;
    await byTenantMigration.down(db);
    await byTenantMigration.up(db);
    const rows = await f.store.db
      .selectFrom('backupJobSchedules')
      .innerJoin('backupJobs', 'backupJobs.id', 'backupJobSchedules.jobId')
      .select(['backupJobSchedules.tenantId as mine', 'backupJobs.tenantId as jobs'])
      .execute();
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.mine).toBe(r.jobs);
  });
});
