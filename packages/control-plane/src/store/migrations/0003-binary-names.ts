import { MysqlAdapter, sql, type Kysely } from 'kysely';

/*
 * Names are unique byte for byte (after the API's NFC normalisation) on every backend. SQLite
 * compares text as bytes already; MySQL columns take the database's default collation, which is
 * usually case- and accent-insensitive (utf8mb4_general_ci: "cafe", "Cafe" and "café" would be one
 * tenant). So every column that identifies something by a client-chosen string is made utf8mb4_bin.
 */
const COLUMNS: { table: string; column: string; type: string }[] = [
  { table: 'tenants', column: 'name', type: 'varchar(200)' },
  { table: 'providers', column: 'zone', type: 'varchar(100)' },
  { table: 'providers', column: 'name', type: 'varchar(200)' },
  { table: 'idempotency_keys', column: 'idem_key', type: 'varchar(255)' },
];

const isMysql = (db: Kysely<unknown>) => db.getExecutor().adapter instanceof MysqlAdapter;

export async function up(db: Kysely<unknown>): Promise<void> {
  if (!isMysql(db)) return;
  for (const { table, column, type } of COLUMNS) {
    await sql`alter table ${sql.table(table)} modify ${sql.ref(column)} ${sql.raw(type)} character set utf8mb4 collate utf8mb4_bin not null`.execute(
      db,
    );
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (!isMysql(db)) return;
  for (const { table, column, type } of COLUMNS) {
    await sql`alter table ${sql.table(table)} modify ${sql.ref(column)} ${sql.raw(type)} not null`.execute(db);
  }
}
