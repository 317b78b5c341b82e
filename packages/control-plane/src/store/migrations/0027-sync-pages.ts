import type { Kysely } from 'kysely';

/*
 * Paged sync listings. sync_pages: one row per page of a sync task's listing that an agent sent
 * (an event of type sync.page), keyed by task, attempt and page number, so a page sent again
 * after a reconnect is stored once. `points` counts the page's restore points; `bad` says why
 * the page cannot be read (null: it can). The listing is compared with the records only when
 * the result names as many pages as are stored; the rows go when the task ends, however it ends.
 * `body` is the page's restore points as JSON, at most 60,000 bytes (a TEXT on MySQL).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('sync_pages')
    .addColumn('task_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('page', 'integer', (c) => c.notNull())
    .addColumn('points', 'integer', (c) => c.notNull())
    .addColumn('bad', 'varchar(500)')
    .addColumn('body', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('sync_pages_pk', ['task_id', 'attempt', 'page'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('sync_pages').execute();
}
