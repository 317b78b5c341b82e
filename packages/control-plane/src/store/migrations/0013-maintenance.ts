import type { Kysely } from 'kysely';

/*
 * Maintenance windows: one row per scope (`global`, `zone:<zone>`, `agent:<id>`), kept after the
 * window ends so the answer can say who ended it and when.
 *
 * ready_at is set once per window, by a compare-and-set from null (in the transaction that ended
 * the scope's last running backup, in the PUT that found nothing running, or by a replica's sweep
 * that found the scope idle), so `maintenance.ready` is recorded exactly once per window across
 * replicas and restarts; enabling a scope again clears it. set_by is the API token that made the
 * change, as JSON ({tokenId, role}).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('maintenance_scopes')
    .addColumn('scope_key', 'varchar(100)', (c) => c.primaryKey())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('zone', 'varchar(64)')
    .addColumn('agent_id', 'varchar(64)')
    .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('set_by', 'text')
    .addColumn('set_at', 'bigint', (c) => c.notNull())
    .addColumn('ready_at', 'bigint')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('maintenance_scopes').execute();
}
