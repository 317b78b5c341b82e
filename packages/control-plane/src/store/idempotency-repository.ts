import { randomBytes } from 'node:crypto';
import { ConflictError } from '../domain/errors.js';
import type { Db } from './db.js';
import type { Clock } from '../clock.js';
import type { SecretBox } from './secrets.js';

export type Claim =
  | { state: 'new'; claimToken: string }
  | { state: 'replay'; status: number; body: string; location: string | null }
  | { state: 'in-progress'; retryAfterMs: number }
  | { state: 'mismatch' };

export interface IdempotencyTimes {
  /** How long an answered key is replayed. */
  replayMs: number;
  /** How long an unanswered claim holds the key before a retry may take it over. */
  leaseMs: number;
}

/**
 * `Idempotency-Key` records, one per (API token, key). A request first claims its key with a
 * placeholder row that holds a lease of seconds; its answer is written by `complete`, inside the
 * request's own transaction, so a request either committed its work and its answer together or
 * left only a placeholder that expires. A retry therefore sees the committed answer, or runs
 * once more after the lease because nothing of the first attempt was kept.
 */
export class IdempotencyRepository {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly box: SecretBox,
    private readonly times: IdempotencyTimes,
  ) {}

  /** Whether `key` holds a committed answer of `principalId` (a retry of it will be replayed). */
  async answered(principalId: string, key: string, now = this.clock.now()): Promise<boolean> {
    const row = await this.db
      .selectFrom('idempotencyKeys')
      .select('status')
      .where('principalId', '=', principalId)
      .where('idemKey', '=', key)
      .where('createdAt', '>=', now - this.times.replayMs)
      .executeTakeFirst();
    return row !== undefined && row.status !== 0;
  }

  async claim(principalId: string, key: string, requestHash: string, now = this.clock.now()): Promise<Claim> {
    for (;;) {
      await this.db
        .deleteFrom('idempotencyKeys')
        .where('principalId', '=', principalId)
        .where('idemKey', '=', key)
        .where('createdAt', '<', now - this.times.replayMs)
        .execute();
      const claimToken = randomBytes(16).toString('hex');
      const inserted = await this.db
        .insertInto('idempotencyKeys')
        .values({
          principalId,
          idemKey: key,
          requestHash,
          status: 0,
          body: '',
          location: null,
          claimToken,
          leaseExpiresAt: now + this.times.leaseMs,
          createdAt: now,
        })
        .orIgnore()
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) return { state: 'new', claimToken };
      const row = await this.db
        .selectFrom('idempotencyKeys')
        .selectAll()
        .where('principalId', '=', principalId)
        .where('idemKey', '=', key)
        .executeTakeFirst();
      if (!row) continue; // expired and deleted meanwhile
      if (row.requestHash !== requestHash) return { state: 'mismatch' };
      if (row.status !== 0) {
        return { state: 'replay', status: row.status, body: this.box.open(row.body) as string, location: row.location };
      }
      if (row.leaseExpiresAt > now) return { state: 'in-progress', retryAfterMs: row.leaseExpiresAt - now };
      // The request that claimed it is gone (a crash) and committed nothing: take the key over.
      const taken = await this.db
        .updateTable('idempotencyKeys')
        .set({ claimToken, leaseExpiresAt: now + this.times.leaseMs, createdAt: now })
        .where('principalId', '=', principalId)
        .where('idemKey', '=', key)
        .where('claimToken', '=', row.claimToken)
        .where('status', '=', 0)
        .executeTakeFirst();
      if (Number(taken.numUpdatedRows) === 1) return { state: 'new', claimToken };
    }
  }

  /**
   * Stores the answer; called inside the request's transaction, so it commits with the work.
   * Throws when the claim was lost (the request outlived its lease and a retry took the key).
   */
  async complete(
    principalId: string,
    key: string,
    claimToken: string,
    status: number,
    body: string,
    location: string | null,
  ): Promise<void> {
    const r = await this.db
      .updateTable('idempotencyKeys')
      .set({ status, body: this.box.seal(body), location })
      .where('principalId', '=', principalId)
      .where('idemKey', '=', key)
      .where('claimToken', '=', claimToken)
      .where('status', '=', 0)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) {
      throw new ConflictError(
        'this request outlived its Idempotency-Key lease and a retry took the key over; nothing was changed',
        'idempotency_in_progress',
      );
    }
  }

  /** A request that failed leaves no record: the client may try again with the same key. */
  async release(principalId: string, key: string, claimToken: string): Promise<void> {
    await this.db
      .deleteFrom('idempotencyKeys')
      .where('principalId', '=', principalId)
      .where('idemKey', '=', key)
      .where('claimToken', '=', claimToken)
      .where('status', '=', 0)
      .execute();
  }
}
