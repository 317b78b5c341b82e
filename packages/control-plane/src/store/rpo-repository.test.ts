import type { Kysely } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { storeFixture } from '../testing/store-fixture.js';
import { transact } from './db.js';
import * as usageCountsMigration from './migrations/0042-usage-counts.js';
import { keptCount } from './tenant-counts.js';
import { UsageRepository } from './usage-repository.js';

describe.each(backends)('RPO state store (%s)', (backend) => {
  const f = storeFixture(backend);
  const { rpo, catalog } = f.repos;
  let tenantId: string;
  let offeringId: string;

  beforeAll(async () => {
    tenantId = f.providerTenant;
    const provider = await f.provider();
    offeringId = (
      await f.offering({
        name: 'rpo',
        providerId: provider.id,
        allowAdhoc: false,
        sla: { cron: '0 3 * * *', keepLast: 3, rpoMinutes: 60 },
      })
    ).id;
  });

  const breach = (instanceId: string, breachedAt: number) =>
    rpo.raise({ instanceId, tenantId, rpoMinutes: 60, lastBackupAt: null, breachedAt });
  /** The tenant's breaches: recorded (the rows), kept as a count, and as the usage report gives them. */
  const breaches = async () => ({
    recorded: Number(
      (
        await f.store.db
          .selectFrom('rpoState')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    ),
    metric: await rpo.breached(),
    kept: await keptCount(f.store.db, tenantId, 'rpoBreachedInstances', false),
    reported: (await new UsageRepository(f.store.db).perTenant({ limit: 1 }, tenantId)).items[0]?.rpoBreachedInstances,
  });
  const counted = (n: number) => ({ recorded: n, metric: n, kept: n, reported: n });

  it('raises a breach once and clears it once, however many writers try at the same time', async () => {
    const raised = await Promise.all(Array.from({ length: 8 }, (_, i) => breach('ins_a', 1000 + i)));
    expect(raised.filter(Boolean)).toHaveLength(1);
    expect(await breaches()).toEqual(counted(1));
    const at = 1000 + raised.indexOf(true);
    // A writer that read another breach time clears nothing.
    expect(await rpo.clear('ins_a', at + 100)).toBeUndefined();
    expect(await breaches()).toEqual(counted(1));
    const cleared = await Promise.all(Array.from({ length: 8 }, () => rpo.clear('ins_a', at)));
    expect(cleared.filter((c) => c !== undefined)).toEqual([expect.objectContaining({ breachedAt: at })]);
    expect(await breaches()).toEqual(counted(0));
    expect(await breach('ins_a', 5000)).toBe(true);
    expect(await breaches()).toEqual(counted(1));
  });

  it('reads pages of watched instances with their newest restore point and breach, and forgets the unwatched', async () => {
    const ids: string[] = [];
    for (const name of ['w1', 'w2', 'w3']) {
      const row = await f.instance({ name }, 10);
      await catalog.setInstanceOffering(row.id, offeringId, 20);
      ids.push(row.id);
    }
    ids.sort();
    // Written as a sync adopts a point its provider dated `createdAt`, found at `foundAt` (the
    // record's recorded time: the provider's time, never later than when it was found).
    const addBackup = (i: number, instanceId: string, createdAt: number, foundAt = createdAt) =>
      transact(f.store.db, (trx) =>
        f.repos.backups.adopt(
          trx,
          { id: instanceId, tenantId, name: `w${i}`, offeringId },
          { externalId: `x${i}`, createdAt, sizeBytes: 1, mode: 'FULL', parentId: null, expiresAt: null },
          foundAt,
        ),
      );
    expect(await rpo.oldestLastBackup()).toBeNull();
    for (const [i, createdAt] of [100, 300, 200].entries()) await addBackup(i, ids[0]!, createdAt);
    await breach(ids[1]!, 777);
    const first = await rpo.watched([offeringId], null, 2);
    expect(first).toEqual([
      expect.objectContaining({ instanceId: ids[0], lastBackupAt: 300, breachedAt: null, offeringSetAt: 20 }),
      expect.objectContaining({ instanceId: ids[1], lastBackupAt: null, breachedAt: 777, createdAt: 10 }),
    ]);
    expect(await rpo.watched([offeringId], ids[1]!, 2)).toEqual([expect.objectContaining({ instanceId: ids[2] })]);
    expect(await rpo.watchedOne(ids[0]!, [offeringId])).toEqual(first[0]);
    expect(await rpo.watched([], null, 10)).toEqual([]);

    // 'ins_a' (no such instance) and ids[1] once its offering is no longer watched go, quietly.
    expect(await breaches()).toEqual(counted(2));
    expect(await rpo.forgetUnwatched(new Set([offeringId]))).toBe(1);
    expect(await breaches()).toEqual(counted(1));
    // Migration 0042 counts the breaches as recorded.
    const db = f.store.db as unknown as Kysely<unknown>;
    await usageCountsMigration.down(db);
    expect((await breaches()).kept).toBe(0);
    await usageCountsMigration.up(db);
    expect(await breaches()).toEqual(counted(1));
    expect(await rpo.forgetUnwatched(new Set())).toBe(1);
    expect(await breaches()).toEqual(counted(0));
    // The newest point of each instance, and of those the oldest: ids[0] at 300, ids[2] at 250.
    expect(await rpo.oldestLastBackup()).toBe(300);
    await addBackup(3, ids[2]!, 250);
    await addBackup(4, ids[2]!, 50);
    expect(await rpo.oldestLastBackup()).toBe(250);

    // A point its provider dated 2099, recorded at 400: it counts from 400, not from 2099. A
    // backup recorded ahead of its createdAt (the clock was stepped back) counts from createdAt.
    await addBackup(5, ids[0]!, Date.parse('2099-01-01'), 400);
    expect((await rpo.watchedOne(ids[0]!, [offeringId]))?.lastBackupAt).toBe(400);
    await addBackup(6, ids[2]!, 350, 9_000_000);
    expect((await rpo.watchedOne(ids[2]!, [offeringId]))?.lastBackupAt).toBe(350);
    expect(await rpo.oldestLastBackup()).toBe(350);
  });
});
