import type { Duty, DutyLease } from '../domain/duty-lease.js';
import type { Db } from './db.js';

/**
 * The leases of the periodic duties (`duty_leases`): one row per duty naming the replica that
 * runs it for all and until when. Taken and renewed by one conditional write, released at a clean
 * stop; a replica that dies leaves its lease to run out.
 */
export class DutyLeaseRepository {
  constructor(private readonly db: Db) {}

  /**
   * Takes or renews `duty` for `holder` until `expiresAt`: one update that only matches when the
   * holder is already `holder` or the lease has run out at `now` (the rule of
   * domain/duty-lease.ts `leaseDecision`), or the first insert of the duty's row. True when
   * `holder` holds it now.
   */
  async hold(duty: Duty, holder: string, now: number, expiresAt: number): Promise<boolean> {
    const updated = await this.db
      .updateTable('dutyLeases')
      // held_since first: MySQL evaluates the assignments in order, so it must read the old holder.
      .set((eb) => ({
        heldSince: eb.case().when('holder', '=', holder).then(eb.ref('heldSince')).else(now).end(),
        holder,
        expiresAt,
      }))
      .where('duty', '=', duty)
      .where((eb) => eb.or([eb('holder', '=', holder), eb('expiresAt', '<=', now)]))
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) > 0) return true;
    const row = await this.read(duty);
    // MySQL counts only changed rows: a renewal to the same expiry (a clock that stood still) is
    // found here, held by this holder.
    if (row) return row.holder === holder && row.expiresAt >= expiresAt;
    const inserted = await this.db
      .insertInto('dutyLeases')
      .values({ duty, holder, expiresAt, heldSince: now })
      .orIgnore()
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  /** Gives `duty` up if `holder` holds it, so another replica takes it at its next tick. */
  async release(duty: Duty, holder: string, now: number): Promise<void> {
    await this.db
      .updateTable('dutyLeases')
      .set({ expiresAt: now })
      .where('duty', '=', duty)
      .where('holder', '=', holder)
      .execute();
  }

  /** Every duty's lease as stored: one read, for a replica that holds none of them to look. */
  async readAll(): Promise<Map<Duty, DutyLease>> {
    const rows = await this.db.selectFrom('dutyLeases').select(['duty', 'holder', 'expiresAt']).execute();
    return new Map(rows.map((r) => [r.duty as Duty, { holder: r.holder, expiresAt: Number(r.expiresAt) }]));
  }

  async read(duty: Duty): Promise<(DutyLease & { heldSince: number }) | undefined> {
    const row = await this.db
      .selectFrom('dutyLeases')
      .select(['holder', 'expiresAt', 'heldSince'])
      .where('duty', '=', duty)
      .executeTakeFirst();
    return row && { holder: row.holder, expiresAt: Number(row.expiresAt), heldSince: Number(row.heldSince) };
  }
}
