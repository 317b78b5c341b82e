import { MysqlAdapter, type Kysely } from 'kysely';

/** Drops `index` of `table`: MySQL/MariaDB name the table of an index to drop; SQLite refuses the clause. */
export async function dropIndex(db: Kysely<unknown>, index: string, table: string): Promise<void> {
  const drop = db.schema.dropIndex(index);
  await (db.getExecutor().adapter instanceof MysqlAdapter ? drop.on(table) : drop).execute();
}
