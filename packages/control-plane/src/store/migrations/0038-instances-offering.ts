import type { Kysely } from 'kysely';
import { dropIndex } from './drop-index.js';

/*
 * An offering's instances. An SLA's fire (every instance of the offering whose backups Cairn
 * fires), an SLA's change and an offering's delete (refused while an instance is assigned) read
 * them; without this index each read every instance of the service: at 100,000 instances the
 * delete's check took 10 ms on SQLite and 28-30 ms on MariaDB, now 0.03 and 0.3 ms.
 */
const INDEX = 'instances_offering';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex(INDEX).on('instances').columns(['offering_id', 'id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropIndex(db, INDEX, 'instances');
}
