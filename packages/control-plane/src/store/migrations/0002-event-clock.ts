import type { Kysely } from 'kysely';

/*
 * One row that every transaction writing an event updates first. The row lock it takes lasts
 * until commit, so event ids are handed out in commit order and a reader paging with
 * `?after=<id>` can never see id n+1 before id n has committed (on MySQL, auto-increment ids are
 * otherwise allocated at insert time and may commit out of order).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('event_clock')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('ticks', 'bigint', (c) => c.notNull())
    .execute();
  await db
    .insertInto('event_clock' as never)
    .values({ id: 1, ticks: 0 } as never)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('event_clock').ifExists().execute();
}
