import { sql, type Kysely } from 'kysely';

/*
 * Each tenant's restore points per offering, kept beside the records rather than counted from
 * them at every read. A backup's start counted the tenant's records as the per-offering quotas
 * weigh them (O(its restore points), inside the write transaction, refused starts too: 28 ms at
 * 100,000 on SQLite), and the usage report counted and summed all of them. Two figures each:
 * - as the quotas count (restore_points, bytes): a record not vanished and with no delete under
 *   way (none named, or the one named ended other than succeeded), its size;
 * - as billing counts (records, stored_bytes): every record, its added bytes (an incremental's)
 *   or else its size.
 * Filled here from the records as they stand.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('restore_point_usage')
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('offering_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('restore_points', 'bigint', (c) => c.notNull())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .addColumn('records', 'bigint', (c) => c.notNull())
    .addColumn('stored_bytes', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('restore_point_usage_pk', ['tenant_id', 'offering_id'])
    .execute();
  const counts = sql`b.vanished_at is null
    and (b.delete_task_id is null
      or exists (select 1 from tasks t where t.id = b.delete_task_id and t.state in ('failed', 'cancelled', 'lost')))`;
  await sql`
    insert into restore_point_usage (tenant_id, offering_id, restore_points, bytes, records, stored_bytes)
    select b.tenant_id, b.offering_id,
      sum(case when ${counts} then 1 else 0 end),
      coalesce(sum(case when ${counts} then b.size_bytes else 0 end), 0),
      count(*),
      coalesce(sum(coalesce(b.added_bytes, b.size_bytes)), 0)
    from backups b
    group by b.tenant_id, b.offering_id`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('restore_point_usage').execute();
}
