import type { Db } from './db.js';

export type Claim =
  | { state: 'new' }
  | { state: 'replay'; status: number; body: string; location: string | null }
  | { state: 'in-progress' }
  | { state: 'mismatch' };

/** How long a key is remembered. */
const KEY_TTL_MS = 24 * 3600 * 1000;

/**
 * `Idempotency-Key` records. A key is claimed by inserting a placeholder row (status 0) before
 * the request runs, so two concurrent requests with one key cannot both do the work.
 */
export class IdempotencyRepository {
  constructor(private readonly db: Db) {}

  async claim(tenantId: string, key: string, requestHash: string, now = Date.now()): Promise<Claim> {
    await this.db
      .deleteFrom('idempotencyKeys')
      .where('tenantId', '=', tenantId)
      .where('idemKey', '=', key)
      .where('createdAt', '<', now - KEY_TTL_MS)
      .execute();
    const inserted = await this.db
      .insertInto('idempotencyKeys')
      .values({ tenantId, idemKey: key, requestHash, status: 0, body: '', location: null, createdAt: now })
      .orIgnore()
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) return { state: 'new' };
    const row = await this.db
      .selectFrom('idempotencyKeys')
      .selectAll()
      .where('tenantId', '=', tenantId)
      .where('idemKey', '=', key)
      .executeTakeFirst();
    if (!row) return this.claim(tenantId, key, requestHash, now);
    if (row.requestHash !== requestHash) return { state: 'mismatch' };
    if (row.status === 0) return { state: 'in-progress' };
    return { state: 'replay', status: row.status, body: row.body, location: row.location };
  }

  async complete(tenantId: string, key: string, status: number, body: string, location: string | null): Promise<void> {
    await this.db
      .updateTable('idempotencyKeys')
      .set({ status, body, location })
      .where('tenantId', '=', tenantId)
      .where('idemKey', '=', key)
      .execute();
  }

  /** A request that failed leaves no record: the client may try again with the same key. */
  async release(tenantId: string, key: string): Promise<void> {
    await this.db
      .deleteFrom('idempotencyKeys')
      .where('tenantId', '=', tenantId)
      .where('idemKey', '=', key)
      .where('status', '=', 0)
      .execute();
  }
}
