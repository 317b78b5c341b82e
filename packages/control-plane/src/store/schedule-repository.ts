import type { Sla } from './catalog-repository.js';
import { isUniqueViolation, type Db } from './db.js';
import { sql, type Transaction } from 'kysely';
import type { BackupJobScheduleRow, Database, OfferingRow, UserScheduleRow } from './schema.js';

/** The three kinds of schedule the scheduler fires, each with its next fire time on its row. */
export type ScheduleKind = 'user' | 'sla' | 'job';

/** A schedule that is due (its next fire time passed) or not computed yet (null). */
export interface DueSchedule {
  kind: ScheduleKind;
  /** The instance (user), offering (sla) or job schedule (job) id. */
  id: string;
  nextFireAt: number | null;
}

/** Which row's next fire time to move, as the scheduler read it (a compare-and-set). */
export interface NextFireMove {
  kind: ScheduleKind;
  id: string;
  /** Its next fire time as read: a concurrent move or change of the schedule makes the move a no-op. */
  read: number | null;
  /** When the schedule was set as read (updatedAt, or the SLA's slaSetAt): a change meanwhile wins. */
  setAt: number | null;
  next: number;
}

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
      // Its next fire time is computed afresh by the next tick.
      .set({ cron: row.cron, timezone: row.timezone, keepLast: row.keepLast, updatedAt: now, nextFireAt: null })
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

  /** The latest claimed fire of each of `keys` (bounded: the caller passes a batch). */
  async lastFiresOf(keys: string[]): Promise<Map<string, number>> {
    if (keys.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('scheduleFires')
      .select((eb) => ['scheduleKey', eb.fn.max('fireAt').as('lastAt')])
      .where('scheduleKey', 'in', keys)
      .groupBy('scheduleKey')
      .execute();
    return new Map(rows.map((r) => [r.scheduleKey, Number(r.lastAt)]));
  }

  /**
   * Up to `limit` schedules whose next fire time is at or before `now`, or not computed yet
   * (first: null sorts first), soonest first: one query on the next_fire_at indexes, whatever
   * the number of schedules that are not due.
   */
  async dueSchedules(now: number, limit: number): Promise<DueSchedule[]> {
    const db = this.db;
    const user = db
      .selectFrom('userSchedules')
      .select([sql<ScheduleKind>`'user'`.as('kind'), 'instanceId as id', 'nextFireAt'])
      .where((eb) => eb.or([eb('nextFireAt', 'is', null), eb('nextFireAt', '<=', now)]));
    const sla = db
      .selectFrom('offerings')
      .select([sql<ScheduleKind>`'sla'`.as('kind'), 'id', 'nextFireAt'])
      .where((eb) => eb.or([eb('nextFireAt', 'is', null), eb('nextFireAt', '<=', now)]))
      .where('sla', 'is not', null);
    const job = db
      .selectFrom('backupJobSchedules')
      .select([sql<ScheduleKind>`'job'`.as('kind'), 'id', 'nextFireAt'])
      .where((eb) => eb.or([eb('nextFireAt', 'is', null), eb('nextFireAt', '<=', now)]));
    const rows = await db
      .selectFrom(user.unionAll(sla).unionAll(job).as('due'))
      .selectAll()
      .orderBy('nextFireAt')
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      kind: r.kind,
      id: r.id,
      nextFireAt: r.nextFireAt == null ? null : Number(r.nextFireAt),
    }));
  }

  async userSchedulesByIds(instanceIds: string[]): Promise<UserScheduleRow[]> {
    if (instanceIds.length === 0) return [];
    return this.db.selectFrom('userSchedules').selectAll().where('instanceId', 'in', instanceIds).execute();
  }

  async offeringsByIds(ids: string[]): Promise<OfferingRow[]> {
    if (ids.length === 0) return [];
    return this.db.selectFrom('offerings').selectAll().where('id', 'in', ids).where('sla', 'is not', null).execute();
  }

  async jobSchedulesByIds(ids: string[]): Promise<BackupJobScheduleRow[]> {
    if (ids.length === 0) return [];
    return this.db.selectFrom('backupJobSchedules').selectAll().where('id', 'in', ids).execute();
  }

  /**
   * Moves a schedule's next fire time to `m.next`, unless it moved or the schedule changed since
   * the scheduler read it (then whoever did that decided). In the claim's transaction when there
   * is one.
   */
  async moveNextFire(m: NextFireMove): Promise<void> {
    if (m.kind === 'user')
      await this.db
        .updateTable('userSchedules')
        .set({ nextFireAt: m.next })
        .where('instanceId', '=', m.id)
        .where((eb) => (m.read === null ? eb('nextFireAt', 'is', null) : eb('nextFireAt', '=', m.read)))
        .where((eb) => (m.setAt === null ? eb('updatedAt', 'is', null) : eb('updatedAt', '=', m.setAt)))
        .execute();
    else if (m.kind === 'sla')
      await this.db
        .updateTable('offerings')
        .set({ nextFireAt: m.next })
        .where('id', '=', m.id)
        .where((eb) => (m.read === null ? eb('nextFireAt', 'is', null) : eb('nextFireAt', '=', m.read)))
        .where((eb) => (m.setAt === null ? eb('slaSetAt', 'is', null) : eb('slaSetAt', '=', m.setAt)))
        .execute();
    else
      await this.db
        .updateTable('backupJobSchedules')
        .set({ nextFireAt: m.next })
        .where('id', '=', m.id)
        .where((eb) => (m.read === null ? eb('nextFireAt', 'is', null) : eb('nextFireAt', '=', m.read)))
        .where((eb) => (m.setAt === null ? eb('updatedAt', 'is', null) : eb('updatedAt', '=', m.setAt)))
        .execute();
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
