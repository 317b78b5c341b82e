import type { Kysely } from 'kysely';
import { dropIndex } from './drop-index.js';

/*
 * The count quotas the service provider set for a tenant, one row per quota set; a quota with no
 * row has its default (held in the code, so a new default reaches every tenant that never had a
 * limit of its own). user_schedules gains an index by tenant: the quota counts a tenant's
 * schedules, with a locking read on MySQL that must lock only that tenant's rows.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('tenant_quotas')
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('quota', 'varchar(64)', (c) => c.notNull())
    .addColumn('quota_limit', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('tenant_quotas_pk', ['tenant_id', 'quota'])
    .execute();
  await db.schema.createIndex('user_schedules_tenant').on('user_schedules').columns(['tenant_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropIndex(db, 'user_schedules_tenant', 'user_schedules');
  await db.schema.dropTable('tenant_quotas').execute();
}
