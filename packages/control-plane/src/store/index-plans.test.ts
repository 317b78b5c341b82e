import { CompiledQuery } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { storeFixture } from '../testing/store-fixture.js';

/*
 * Reads that an index of their own serves, by SQLite's plans (MariaDB's planner chooses by
 * statistics; it took these indexes, or walked well without them, when measured).
 *
 * An offering's instances are read through the (offering, id) index (migration 0038): an SLA's
 * fire and change, and an offering's delete, never read every instance of the service. The RPO
 * watch's pages walk instances in id order with the offerings a filter: through that index SQLite
 * would read and sort every remaining instance of the offerings for each page.
 *
 * The upcoming runs read each kind of schedule from an index by (tenant, next fire, id), or (next
 * fire, id) for every tenant's, a page's worth: sorting the union of a tenant's schedules took
 * 305 ms a page on SQLite at the ceilings (10,000 user schedules, 10,000 jobs of 100 schedules).
 *
 * The quotas' usage reads the most schedules and members any one of the tenant's jobs has from
 * the end of an index by (tenant, count) (migration 0037): a job's row holds its list of members,
 * which SQLite reads through to reach a column after it (10,000 jobs of 500 members: 62 ms a
 * read, 0.7 ms by the indexes).
 */
describe('reads served by an index of their own (sqlite)', () => {
  let watching = false;
  const statements: string[] = [];
  const f = storeFixture('sqlite', { observe: (text) => void (watching && statements.push(text)) });
  let offeringId = '';

  beforeAll(async () => {
    const providerId = (await f.provider()).id;
    offeringId = (await f.offering({ providerId, sla: { cron: '0 3 * * *', keepLast: 3, rpoMinutes: 60 } })).id;
    for (let i = 0; i < 3; i++) {
      const instance = await f.instance({ name: `vm-${i}` });
      await f.repos.catalog.setInstanceOffering(instance.id, offeringId);
    }
  });

  /** The plan of each statement `read` runs. */
  const plans = async (read: () => Promise<unknown>) => {
    statements.length = 0;
    watching = true;
    await read();
    watching = false;
    const out = [];
    for (const text of statements) {
      const nulls = Array.from(text.matchAll(/\?/g), () => null);
      const plan = await f.store.db.executeQuery<{ detail: string }>(
        CompiledQuery.raw(`explain query plan ${text}`, nulls),
      );
      out.push(plan.rows.map((r) => r.detail).join('; '));
    }
    return out;
  };

  it('finds the instances of an offering through its index', async () => {
    const [plan] = await plans(() => f.repos.catalog.instancesOfOffering(offeringId));
    expect(plan).toMatch(/instances_offering \(offering_id=\?\)/);
    expect(plan).not.toMatch(/TEMP B-TREE/);
  });

  it("walks the RPO watch's pages by the primary key, the offerings a filter", async () => {
    const [plan] = await plans(() => f.repos.rpo.watched([offeringId, 'off_other'], null, 500));
    expect(plan).toMatch(/SCAN instances USING INDEX sqlite_autoindex_instances_1/);
    expect(plan).not.toMatch(/instances_offering|TEMP B-TREE FOR ORDER BY/);
  });

  it("reads the most schedules and members of one of a tenant's jobs from the ends of their indexes", async () => {
    const found = await plans(() => f.repos.quotas.usage(f.providerTenant));
    const most = found.filter((plan) => /backup_jobs/.test(plan));
    expect(most.join('\n')).toMatch(/backup_jobs_tenant_schedules/);
    expect(most.join('\n')).toMatch(/backup_jobs_tenant_members/);
    for (const plan of most)
      expect(plan).toMatch(/^SEARCH backup_jobs USING COVERING INDEX backup_jobs_tenant_(schedules|members)/);
  });

  it.each([
    [
      'a tenant',
      (): string | undefined => f.providerTenant,
      /user_schedules_tenant_next/,
      /backup_job_schedules_tenant_next/,
    ],
    ['every tenant', (): string | undefined => undefined, /user_schedules_next_id/, /backup_job_schedules_next_id/],
  ] as const)("reads the upcoming runs of %s from each kind's index in order", async (_, tenant, user, job) => {
    const cursor = `${Date.now()}-sla-off_${'0'.repeat(26)}`;
    for (const page of [{ limit: 50 }, { limit: 50, cursor }]) {
      const found = await plans(() => f.repos.schedules.upcoming(page, tenant()));
      const of = (table: string) => found.filter((plan) => plan.startsWith(`SEARCH ${table} `));
      expect(of('user_schedules').join('\n')).toMatch(user);
      expect(of('backup_job_schedules').join('\n')).toMatch(job);
      for (const plan of [...of('user_schedules'), ...of('backup_job_schedules')])
        expect(plan).not.toMatch(/TEMP B-TREE/);
    }
  });
});
