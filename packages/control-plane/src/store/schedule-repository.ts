import type { Sla } from './catalog-repository.js';
import { isUniqueViolation, type Db } from './db.js';
import type { Transaction } from 'kysely';
import type { Database, OfferingRow, UserScheduleRow } from './schema.js';

export interface UserScheduleInput {
  instanceId: string;
  tenantId: string;
  cron: string;
  timezone: string;
  keepLast: number;
}

/** User schedules and the claimed fires of every schedule (user and SLA). */
export class ScheduleRepository {
  constructor(private readonly db: Db) {}

  /** Creates or replaces the instance's schedule; fire times count from `now` again. */
  async put(input: UserScheduleInput, now: number): Promise<UserScheduleRow> {
    const existing = await this.get(input.instanceId);
    const row: UserScheduleRow = { ...input, createdAt: existing?.createdAt ?? now, updatedAt: now };
    if (!existing) {
      try {
        await this.db.insertInto('userSchedules').values(row).execute();
        return row;
      } catch (err) {
        // A concurrent PUT created it first: this one replaces it like any later PUT.
        if (!isUniqueViolation(err)) throw err;
      }
    }
    await this.db
      .updateTable('userSchedules')
      .set({ cron: row.cron, timezone: row.timezone, keepLast: row.keepLast, updatedAt: now })
      .where('instanceId', '=', row.instanceId)
      .execute();
    return (await this.get(input.instanceId)) ?? row;
  }

  async get(instanceId: string): Promise<UserScheduleRow | undefined> {
    return this.db.selectFrom('userSchedules').selectAll().where('instanceId', '=', instanceId).executeTakeFirst();
  }

  /** True when there was one to delete. */
  async delete(instanceId: string): Promise<boolean> {
    const r = await this.db.deleteFrom('userSchedules').where('instanceId', '=', instanceId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listUserSchedules(): Promise<UserScheduleRow[]> {
    return this.db.selectFrom('userSchedules').selectAll().orderBy('instanceId').execute();
  }

  async listSlaOfferings(): Promise<OfferingRow[]> {
    return this.db.selectFrom('offerings').selectAll().where('sla', 'is not', null).orderBy('id').execute();
  }

  async lastFireOf(scheduleKey: string): Promise<number | undefined> {
    const row = await this.db
      .selectFrom('scheduleFires')
      .select((eb) => eb.fn.max('fireAt').as('lastAt'))
      .where('scheduleKey', '=', scheduleKey)
      .executeTakeFirst();
    return row?.lastAt == null ? undefined : Number(row.lastAt);
  }

  /** The latest claimed fire of every schedule key. */
  async lastFires(): Promise<Map<string, number>> {
    const rows = await this.db
      .selectFrom('scheduleFires')
      .select((eb) => ['scheduleKey', eb.fn.max('fireAt').as('lastAt')])
      .groupBy('scheduleKey')
      .execute();
    return new Map(rows.map((r) => [r.scheduleKey, Number(r.lastAt)]));
  }

  /**
   * Claims one fire: an insert that only one caller can make, on any replica, before any task
   * exists. False when it was claimed already, or a later fire of the schedule was (a replica
   * that read stale state must not run an older fire); the caller then rolls back and does
   * nothing. Only the latest fire of each schedule is kept.
   */
  async claimFire(scheduleKey: string, fireAt: number, missed: number, now: number): Promise<boolean> {
    const r = await this.db
      .insertInto('scheduleFires')
      .values({ scheduleKey, fireAt, missed, createdAt: now })
      .orIgnore()
      .executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 0) return false;
    const later = await this.db
      .selectFrom('scheduleFires')
      .select('fireAt')
      .where('scheduleKey', '=', scheduleKey)
      .where('fireAt', '>', fireAt)
      .executeTakeFirst();
    if (later) return false;
    await this.db
      .deleteFrom('scheduleFires')
      .where('scheduleKey', '=', scheduleKey)
      .where('fireAt', '<', fireAt)
      .execute();
    return true;
  }

  /** keep-last of an instance: its user schedule's, else its offering's SLA's, else null. */
  async keepLastFor(instanceId: string, db: Db | Transaction<Database> = this.db): Promise<number | null> {
    // One query: it runs after every successful backup.
    const row = await db
      .selectFrom('instances')
      .leftJoin('userSchedules', 'userSchedules.instanceId', 'instances.id')
      .leftJoin('offerings', 'offerings.id', 'instances.offeringId')
      .select(['userSchedules.keepLast', 'offerings.sla'])
      .where('instances.id', '=', instanceId)
      .executeTakeFirst();
    if (!row) return null;
    if (row.keepLast !== null) return row.keepLast;
    if (!row.sla) return null;
    const keepLast = (JSON.parse(row.sla) as Partial<Sla>).keepLast;
    return typeof keepLast === 'number' && Number.isInteger(keepLast) && keepLast >= 1 ? keepLast : null;
  }
}
