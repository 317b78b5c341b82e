import fc from 'fast-check';
import { sql, type Kysely } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import * as countsMigration from './migrations/0035-tenant-counts.js';
import { storeFixture } from '../testing/store-fixture.js';
import { QuotaExceededError } from '../domain/errors.js';

/*
 * A tenant's instances are kept as a count, moved where an instance is made or deleted, and read
 * by every create's quota check. Random runs of creates and deletes on two tenants are checked
 * after each run against a count of the instances themselves.
 */
describe.each(backends)("a tenant's instance count kept with the instances (%s)", (backend) => {
  const f = storeFixture(backend);
  const { catalog, quotas } = f.repos;
  const tenants: string[] = [];

  beforeAll(async () => {
    for (const t of [0, 1]) tenants.push((await f.repos.tenants.create(`counts-${t}`)).id);
  });

  /** The instances of each of the two tenants, counted. */
  const counted = async () => {
    const { rows } = await sql<{ tenantId: string; n: number }>`
      select tenant_id, count(*) as n from instances group by tenant_id`.execute(f.store.db);
    const by = new Map(rows.map((r) => [r.tenantId, Number(r.n)]));
    return tenants.map((t) => by.get(t) ?? 0);
  };
  /** The same, as kept (what the quota reads). */
  const kept = async () => Promise.all(tenants.map(async (t) => (await quotas.usage(t)).instances));

  let n = 0;
  let deleted = 0;
  it('follows every create and delete', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ create: fc.boolean(), tenant: fc.nat(1), pick: fc.nat() }), {
          minLength: 3,
          maxLength: 20,
        }),
        async (ops) => {
          for (const op of ops) {
            const tenantId = tenants[op.tenant]!;
            if (op.create) {
              await catalog.createInstance({ tenantId, name: `vm-${++n}`, zone: 'z', locator: {}, agentId: null });
              continue;
            }
            const mine = await f.store.db
              .selectFrom('instances')
              .select('id')
              .where('tenantId', '=', tenantId)
              .execute();
            if (mine.length === 0) continue;
            await catalog.deleteInstance(mine[op.pick % mine.length]!.id);
            deleted++;
          }
          expect(await kept()).toEqual(await counted());
        },
      ),
      { numRuns: 15 },
    );
    // The runs did both (not how many are left: the walk may end anywhere, at none too).
    expect(n, 'instances made').toBeGreaterThan(0);
    expect(deleted, 'instances deleted').toBeGreaterThan(0);
  });

  it('migration 0035 counts the instances as they stand', async () => {
    await catalog.createInstance({ tenantId: tenants[0]!, name: 'one-more', zone: 'z', locator: {}, agentId: null });
    const before = await counted();
    const db = f.store.db as unknown as Kysely<unknown>;
    await countsMigration.down(db);
    await countsMigration.up(db);
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
    const [mine, other] = [tenants[0]!, tenants[1]!];
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
