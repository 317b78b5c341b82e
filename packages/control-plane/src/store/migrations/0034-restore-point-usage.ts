import { sql, type Kysely } from 'kysely';

/*
 * Each tenant's restore points and their bytes per offering, as the per-offering quotas count
 * them, kept beside the records: a backup's start read them by counting the tenant's records
 * (O(its restore points), inside the write transaction, refused starts too: 35 ms at 100,000 on
 * SQLite). A record counts while it has not vanished and no delete is under way on it (no delete
 * named, or the one named ended other than succeeded). Filled here from the records as they stand.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('restore_point_usage')
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('offering_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('restore_points', 'bigint', (c) => c.notNull())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('restore_point_usage_pk', ['tenant_id', 'offering_id'])
    .execute();
  await sql`
    insert into restore_point_usage (tenant_id, offering_id, restore_points, bytes)
    select b.tenant_id, b.offering_id, count(*), coalesce(sum(b.size_bytes), 0)
    from backups b
    where b.vanished_at is null
      and (b.delete_task_id is null
        or exists (select 1 from tasks t where t.id = b.delete_task_id and t.state in ('failed', 'cancelled', 'lost')))
    group by b.tenant_id, b.offering_id`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('restore_point_usage').execute();
}
