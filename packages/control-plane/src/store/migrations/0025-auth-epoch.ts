import type { Kysely } from 'kysely';

/*
 * One row counting the API token removals (a revocation, a configured sp-admin token replaced).
 * Replicas cache who a bearer token is and read this row at most once a bound (CAIRN_AUTH_CACHE_MS):
 * when it moved, they forget what they cached, so a token revoked on one replica is refused by
 * every replica within that bound.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('auth_epoch')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('epoch', 'bigint', (c) => c.notNull())
    .execute();
  await db
    .insertInto('auth_epoch' as never)
    .values({ id: 1, epoch: 0 } as never)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('auth_epoch').ifExists().execute();
}
