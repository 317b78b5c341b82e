import type { Kysely } from 'kysely';

/*
 * How many times the current attempt's assignment was sent without the agent accepting it. The
 * dispatcher fails an attempt that reaches its limit instead of sending it forever.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('tasks')
    .addColumn('deliveries', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('tasks').dropColumn('deliveries').execute();
}
