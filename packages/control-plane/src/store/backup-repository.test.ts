import { sql, type Kysely } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import * as recordedAtMigration from './migrations/0017-recorded-at.js';
import * as recordedIndexMigration from './migrations/0030-backups-recorded.js';
import { storeFixture } from '../testing/store-fixture.js';

describe.each(backends)('the recorded time of restore points, in the store (%s)', (backend) => {
  const f = storeFixture(backend);
  const { backups } = f.repos;
  let tenantId: string;
  let offeringId: string;

  beforeAll(async () => {
    tenantId = f.providerTenant;
    const providerId = (await f.provider({ credentials: {} })).id;
    offeringId = (await f.offering({ providerId })).id;
  });

  it('migration 0017 records existing points at their createdAt, never later than its own now', async () => {
    const db = f.store.db as unknown as Kysely<unknown>;
    // Back to before 0017: the later index on the column goes first.
    await recordedIndexMigration.down(db);
    await recordedAtMigration.down(db);
    const instance = await f.instance({ name: 'old' });
    const migratedAt = Date.parse('2030-01-01');
    for (const [id, createdAt] of [
      ['bkp_m1', 1000],
      ['bkp_m2', Date.parse('2099-01-01')],
    ] as const) {
      await sql`insert into backups (id, tenant_id, instance_id, offering_id, task_id, name, mode, created_at, size_bytes, external_id)
        values (${id}, ${tenantId}, ${instance.id}, ${offeringId}, null, ${id}, 'FULL', ${createdAt}, 1, ${id})`.execute(
        f.store.db,
      );
    }
    await recordedAtMigration.up(db, migratedAt);
    await recordedIndexMigration.up(db);
    const rows = await f.store.db.transaction().execute((trx) => backups.ofInstance(trx, instance.id));
    const at = new Map(rows.map((r) => [r.id, Number(r.recordedAt)]));
    expect(at.get('bkp_m1')).toBe(1000);
    expect(at.get('bkp_m2')).toBe(migratedAt);
  });
});
