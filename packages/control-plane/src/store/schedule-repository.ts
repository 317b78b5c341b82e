import { isUniqueViolation, transact, type Db } from './db.js';
import { current } from './dialect.js';
import { moveCount } from './tenant-counts.js';
import { byKey, byKeyOf } from '../domain/key-order.js';
import { NO_NEXT_FIRE } from '../domain/schedule.js';
import { badCursor, type Page, type PageRequest } from './page.js';
import { sql, type RawBuilder, type Transaction } from 'kysely';
import { template } from './compiled.js';
import type { BackupJobScheduleRow, Database, OfferingRow, Sla, UserScheduleRow } from './schema.js';

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

/** A fire to claim: the schedule's key, its fire time and the fire times folded into it. */
export interface FireClaim {
  scheduleKey: string;
  fireAt: number;
  missed: number;
}

/** Where each kind keeps its next fire time, and its change marker (snake case: raw SQL). */
const MOVED = {
  user: { table: 'user_schedules', id: 'instance_id', setAt: 'updated_at' },
  sla: { table: 'offerings', id: 'id', setAt: 'sla_set_at' },
  job: { table: 'backup_job_schedules', id: 'id', setAt: 'updated_at' },
} as const;

/** Claims grouped by fire time (a batch's fires share a few): keys per fire time. */
function byFireTime(claims: readonly FireClaim[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const c of claims) {
    const keys = out.get(c.fireAt);
    if (keys) keys.push(c.scheduleKey);
    else out.set(c.fireAt, [c.scheduleKey]);
  }
  return out;
}

/**
 * The due schedules of every kind, soonest first (see {@link ScheduleRepository.dueSchedules}):
 * built once, it runs on every scheduler tick.
 */
const DUE_SCHEDULES = template((db, p: { now: number; limit: number }) => {
  const user = db
    .selectFrom('userSchedules')
    .select([sql<ScheduleKind>`'user'`.as('kind'), 'instanceId as id', 'nextFireAt', 'tenantId'])
    .where((eb) => eb.or([eb('nextFireAt', 'is', null), eb('nextFireAt', '<=', p.now)]));
  const sla = db
    .selectFrom('offerings')
    .select([sql<ScheduleKind>`'sla'`.as('kind'), 'id', 'nextFireAt', 'tenantId'])
    .where((eb) => eb.or([eb('nextFireAt', 'is', null), eb('nextFireAt', '<=', p.now)]))
    .where('sla', 'is not', null);
  const job = db
    .selectFrom('backupJobSchedules')
    .innerJoin('backupJobs', 'backupJobs.id', 'backupJobSchedules.jobId')
    .select([
      sql<ScheduleKind>`'job'`.as('kind'),
      'backupJobSchedules.id',
      'backupJobSchedules.nextFireAt',
      'backupJobs.tenantId',
    ])
    .where((eb) =>
      eb.or([eb('backupJobSchedules.nextFireAt', 'is', null), eb('backupJobSchedules.nextFireAt', '<=', p.now)]),
    );
  // Fires due at one time are taken a tenant's turn at a time: every tenant's first before
  // anyone's second, so a tenant with thousands of schedules at one second cannot hold another
  // tenant's fire back by its batches.
  const ranked = db
    .selectFrom(user.unionAll(sla).unionAll(job).as('due'))
    .selectAll('due')
    .select(
      sql<number>`row_number() over (partition by ${sql.ref('due.tenantId')}, ${sql.ref('due.nextFireAt')} order by ${sql.ref('due.id')})`.as(
        'turn',
      ),
    );
  return db
    .selectFrom(ranked.as('r'))
    .select(['r.kind', 'r.id', 'r.nextFireAt'])
    .orderBy('r.nextFireAt')
    .orderBy('r.turn')
    .orderBy('r.id')
    .limit(p.limit);
});

/**
 * What a scheduler tick asks when it asks its store (see `probeNeeded`), in one statement: whether
 * any schedule of any kind is due at `now` (three index probes, each stopping at its first row, so
 * a tick with nothing due skips the ranked read above, whose window over the union costs the
 * database a sort even when it returns nothing), the earliest next fire time of each kind (the
 * first row of each `next_fire_at` index; offerings are few), and the event clock, the change
 * mark the RPO watch compares.
 */
const TICK_PROBE = template((db, p: { now: number }) =>
  db
    .selectFrom('eventClock')
    .select((eb) => [
      'eventClock.ticks',
      eb
        .or([
          eb.exists(
            db
              .selectFrom('userSchedules')
              .select(sql<number>`1`.as('due'))
              .where((w) => w.or([w('nextFireAt', 'is', null), w('nextFireAt', '<=', p.now)])),
          ),
          eb.exists(
            db
              .selectFrom('offerings')
              .select(sql<number>`1`.as('due'))
              .where((w) => w.or([w('nextFireAt', 'is', null), w('nextFireAt', '<=', p.now)]))
              .where('sla', 'is not', null),
          ),
          eb.exists(
            db
              .selectFrom('backupJobSchedules')
              .select(sql<number>`1`.as('due'))
              .where((w) => w.or([w('nextFireAt', 'is', null), w('nextFireAt', '<=', p.now)])),
          ),
        ])
        .as('anyDue'),
      db
        .selectFrom('userSchedules')
        .select((s) => s.fn.min('nextFireAt').as('n'))
        .as('userNext'),
      db
        .selectFrom('offerings')
        .select((s) => s.fn.min('nextFireAt').as('n'))
        .where('sla', 'is not', null)
        .as('slaNext'),
      db
        .selectFrom('backupJobSchedules')
        .select((s) => s.fn.min('nextFireAt').as('n'))
        .as('jobNext'),
    ])
    .where('eventClock.id', '=', 1),
);

/**
 * The tables whose rows a {@link TICK_PROBE} reads: a commit to any of them can change its answer
 * (the event clock moves with every change the RPO watch reads).
 */
export const PROBED_TABLES = ['user_schedules', 'offerings', 'backup_job_schedules', 'event_clock'] as const;

/** What a scheduler tick learns when it asks (see {@link ScheduleRepository.probe}). */
export interface TickProbe {
  /** Whether any schedule is due at the time asked, or has no next fire time computed yet. */
  anyDue: boolean;
  /** The earliest next fire time of any schedule (clock ms); Infinity when there is none. */
  earliest: number;
  /** The event clock: it moves with every change the RPO watch reads (see `RpoWatch`). */
  changes: number;
}

/** The offerings with an SLA (read by the RPO watch when it makes a pass). */
const SLA_OFFERINGS = template((db) =>
  db.selectFrom('offerings').selectAll().where('sla', 'is not', null).orderBy('id'),
);

/** A schedule's next fire, as `GET /v1/schedules` lists them (see {@link ScheduleRepository.upcoming}). */
export interface UpcomingRow {
  kind: ScheduleKind;
  /** The instance (user), offering (sla) or job schedule (job) id. */
  id: string;
  nextFireAt: number;
  /** The instance's, offering's or job's name. */
  name: string;
  /** user and job: the expression; sla: null (it is in `sla`). */
  cron: string | null;
  timezone: string | null;
  /** sla: the offering's SLA as JSON. */
  sla: string | null;
  /** job: the job the schedule runs. */
  jobId: string | null;
}

/** `<next fire>-<kind>-<id>`: where a page of upcoming fires ended. */
/** An instance's keep-last sources, read after every successful backup: compiled once. */
const KEEP_LAST = template((db, p: { instanceId: string }) =>
  db
    .selectFrom('instances')
    .leftJoin('userSchedules', 'userSchedules.instanceId', 'instances.id')
    .leftJoin('offerings', 'offerings.id', 'instances.offeringId')
    .select(['userSchedules.keepLast', 'offerings.sla'])
    .where('instances.id', '=', p.instanceId),
);

const UPCOMING_CURSOR = /^(\d{1,16})-(user|sla|job)-([a-z]{3}_[0-9a-z]{26})$/;

export interface UserScheduleInput {
  instanceId: string;
  tenantId: string;
  cron: string;
  timezone: string;
  keepLast: number;
}

/**
 * A kind's schedules that fire, after the cursor of a page of upcoming runs (ordered by next
 * fire, then kind, then id), as a filter on its (next fire, id) columns: the lower bound opens the
 * index's range; the rest drops the few at the cursor's own time that it passed.
 */
function afterCursorOf(
  after: { at: number; kind: ScheduleKind; id: string } | undefined,
  kind: ScheduleKind,
  fireColumn: string,
  idColumn: string,
): RawBuilder<boolean> {
  const fire = sql.ref(fireColumn);
  const live = sql`${fire} is not null and ${fire} < ${NO_NEXT_FIRE}`;
  if (!after) return sql<boolean>`${live}`;
  if (kind > after.kind) return sql<boolean>`${live} and ${fire} >= ${after.at}`;
  if (kind < after.kind) return sql<boolean>`${live} and ${fire} > ${after.at}`;
  return sql<boolean>`${live} and ${fire} >= ${after.at} and (${fire} > ${after.at} or ${sql.ref(idColumn)} > ${after.id})`;
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
        await transact(this.db, async (trx) => {
          await trx.insertInto('userSchedules').values(row).execute();
          await moveCount(trx, row.tenantId, 'userSchedules', 1);
        });
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
    return transact(this.db, async (trx) => {
      // Its tenant as committed now (whose count it leaves).
      const gone = await current(
        trx,
        trx.selectFrom('userSchedules').select('tenantId').where('instanceId', '=', instanceId),
      ).executeTakeFirst();
      if (!gone) return false;
      const r = await trx.deleteFrom('userSchedules').where('instanceId', '=', instanceId).executeTakeFirst();
      if (Number(r.numDeletedRows) !== 1) return false;
      await moveCount(trx, gone.tenantId, 'userSchedules', -1);
      return true;
    });
  }

  async listUserSchedules(): Promise<UserScheduleRow[]> {
    return this.db.selectFrom('userSchedules').selectAll().orderBy('instanceId').execute();
  }

  /**
   * Whether anything is due at `now`, the earliest next fire time and the change mark, in one
   * statement (see {@link TickProbe}).
   */
  async probe(now: number): Promise<TickProbe> {
    const row = await TICK_PROBE.first(this.db, { now });
    const next = [row?.userNext, row?.slaNext, row?.jobNext].filter((n) => n != null).map(Number);
    return {
      anyDue: Number(row?.anyDue ?? 0) !== 0,
      earliest: next.length > 0 ? Math.min(...next) : Infinity,
      changes: Number(row?.ticks ?? 0),
    };
  }

  async listSlaOfferings(): Promise<OfferingRow[]> {
    return SLA_OFFERINGS.all(this.db, {});
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
    if (!(await this.probe(now)).anyDue) return [];
    const rows = await DUE_SCHEDULES.all(this.db, { now, limit });
    return rows.map((r) => ({
      kind: r.kind,
      id: r.id,
      nextFireAt: r.nextFireAt == null ? null : Number(r.nextFireAt),
    }));
  }

  /**
   * Every schedule that will fire, soonest first: instances' own schedules, offerings' SLAs
   * fired by Cairn, and backup jobs' schedules, with their next fire times as the scheduler
   * computed them (a schedule changed a moment ago shows once the next tick computed it).
   * `tenantId`: only that tenant's schedules, and the SLAs of the offerings its instances have.
   */
  async upcoming(page: PageRequest, tenantId: string | undefined): Promise<Page<UpcomingRow>> {
    let after: { at: number; kind: ScheduleKind; id: string } | undefined;
    if (page.cursor !== undefined) {
      const m = UPCOMING_CURSOR.exec(page.cursor);
      if (!m) throw badCursor();
      after = { at: Number(m[1]), kind: m[2] as ScheduleKind, id: m[3]! };
    }
    const db = this.db;
    const want = page.limit + 1;
    // Each kind read by itself from an index by (tenant, next fire, id), or (next fire, id) for
    // every tenant's: a page's worth at most, whatever the tenant has. Names are read after, for
    // the rows kept.
    const users = await db
      .selectFrom('userSchedules')
      .select(['instanceId as id', 'nextFireAt', 'cron', 'timezone'])
      .$if(tenantId !== undefined, (q) => q.where('tenantId', '=', tenantId!))
      .where(afterCursorOf(after, 'user', 'userSchedules.nextFireAt', 'userSchedules.instanceId'))
      .orderBy('nextFireAt')
      .orderBy('instanceId')
      .limit(want)
      .execute();
    const jobSchedules = await db
      .selectFrom('backupJobSchedules')
      .select(['id', 'jobId', 'nextFireAt', 'cron', 'timezone'])
      .$if(tenantId !== undefined, (q) => q.where('tenantId', '=', tenantId!))
      .where(afterCursorOf(after, 'job', 'backupJobSchedules.nextFireAt', 'backupJobSchedules.id'))
      .orderBy('nextFireAt')
      .orderBy('id')
      .limit(want)
      .execute();
    // The offerings whose SLA Cairn fires are few; a tenant sees those its instances have.
    const slas = await db
      .selectFrom('offerings')
      .select(['id', 'name', 'nextFireAt', 'sla'])
      .where('offerings.sla', 'is not', null)
      .where(afterCursorOf(after, 'sla', 'offerings.nextFireAt', 'offerings.id'))
      .$if(tenantId !== undefined, (q) =>
        q.where((eb) =>
          eb.exists(
            eb
              .selectFrom('instances')
              .select('instances.id')
              .whereRef('instances.offeringId', '=', 'offerings.id')
              .where('instances.tenantId', '=', tenantId!),
          ),
        ),
      )
      .orderBy('nextFireAt')
      .orderBy('id')
      .limit(want)
      .execute();
    const merged: Omit<UpcomingRow, 'name'>[] = [
      ...users.map((r) => ({ ...r, kind: 'user' as const, sla: null, jobId: null })),
      ...slas.map((r) => ({
        id: r.id,
        nextFireAt: r.nextFireAt,
        kind: 'sla' as const,
        cron: null,
        timezone: null,
        sla: r.sla,
        jobId: null,
      })),
      ...jobSchedules.map((r) => ({
        id: r.id,
        nextFireAt: r.nextFireAt,
        kind: 'job' as const,
        cron: r.cron,
        timezone: r.timezone,
        sla: null,
        jobId: r.jobId,
      })),
    ]
      .map((r) => ({ ...r, nextFireAt: Number(r.nextFireAt) }))
      .sort((a, b) => a.nextFireAt - b.nextFireAt || byKey(a.kind, b.kind) || byKey(a.id, b.id))
      .slice(0, want);
    const names = new Map<string, string>();
    const userIds = merged.filter((r) => r.kind === 'user').map((r) => r.id);
    const jobIds = [...new Set(merged.flatMap((r) => (r.kind === 'job' ? [r.jobId!] : [])))];
    if (userIds.length > 0)
      for (const r of await db.selectFrom('instances').select(['id', 'name']).where('id', 'in', userIds).execute())
        names.set(r.id, r.name);
    if (jobIds.length > 0)
      for (const r of await db.selectFrom('backupJobs').select(['id', 'name']).where('id', 'in', jobIds).execute())
        names.set(r.id, r.name);
    for (const r of slas) names.set(r.id, r.name);
    const rows: UpcomingRow[] = [];
    for (const r of merged) {
      const name = names.get(r.kind === 'job' ? r.jobId! : r.id);
      // A schedule whose instance or job went between the reads: gone from the list, as it is.
      if (name !== undefined) rows.push({ ...r, name });
    }
    const items = rows.slice(0, page.limit);
    const last = items.at(-1);
    return {
      items,
      nextCursor: merged.length > page.limit && last ? `${last.nextFireAt}-${last.kind}-${last.id}` : null,
    };
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
    await this.moveNextFires([m]);
  }

  /**
   * Moves the next fire times of a batch of schedules, each as {@link moveNextFire} does: one
   * UPDATE per kind, its rows in key order (two replicas lock them in the same order).
   */
  async moveNextFires(moves: readonly NextFireMove[]): Promise<void> {
    for (const kind of ['user', 'sla', 'job'] as const) {
      const these = moves.filter((m) => m.kind === kind).sort(byKeyOf((m) => m.id));
      if (these.length === 0) continue;
      const { table, id, setAt } = MOVED[kind];
      const [col, next, set] = [sql.ref(id), sql.ref('next_fire_at'), sql.ref(setAt)];
      const is = (ref: typeof col, v: number | null) => (v === null ? sql`${ref} is null` : sql`${ref} = ${v}`);
      const whens = sql.join(
        these.map((m) => sql`when ${m.id} then ${m.next}`),
        sql` `,
      );
      const unchanged = sql.join(
        these.map((m) => sql`(${col} = ${m.id} and ${is(next, m.read)} and ${is(set, m.setAt)})`),
        sql` or `,
      );
      await sql`update ${sql.table(table)} set ${next} = case ${col} ${whens} end
        where ${col} in (${sql.join(these.map((m) => m.id))}) and (${unchanged})`.execute(this.db);
    }
  }

  /**
   * Claims one fire: an insert that only one caller can make, on any replica, before any task
   * exists. False when it was claimed already, or a later fire of the schedule was (a replica
   * that read stale state must not run an older fire); the caller then rolls back and does
   * nothing. Only the latest fire of each schedule is kept.
   */
  async claimFire(scheduleKey: string, fireAt: number, missed: number, now: number): Promise<boolean> {
    return (await this.claimFires([{ scheduleKey, fireAt, missed }], now))!.has(scheduleKey);
  }

  /**
   * Claims a batch of fires (one per schedule) as {@link claimFire} does, in one insert in key
   * order (replicas claiming overlapping batches take the rows in the same order). Answers the
   * keys whose fires are this caller's; undefined when some of a batch of more than one were
   * claimed already, as then the insert cannot tell which: the caller rolls back and claims
   * those fires one at a time.
   */
  async claimFires(claims: readonly FireClaim[], now: number): Promise<Set<string> | undefined> {
    if (claims.length === 0) return new Set();
    const sorted = [...claims].sort(byKeyOf((c) => c.scheduleKey));
    const r = await this.db
      .insertInto('scheduleFires')
      .values(sorted.map((c) => ({ scheduleKey: c.scheduleKey, fireAt: c.fireAt, missed: c.missed, createdAt: now })))
      .orIgnore()
      .executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0n) < sorted.length) return sorted.length > 1 ? undefined : new Set();
    const keys = sorted.map((c) => c.scheduleKey);
    const claimedAt = new Map(sorted.map((c) => [c.scheduleKey, c.fireAt]));
    const later = await this.db
      .selectFrom('scheduleFires')
      .select(['scheduleKey', 'fireAt'])
      .where('scheduleKey', 'in', keys)
      .execute();
    const lost = new Set(
      later.filter((f) => Number(f.fireAt) > claimedAt.get(f.scheduleKey)!).map((f) => f.scheduleKey),
    );
    // A later fire was claimed: this one is not run, and its row goes.
    for (const [fireAt, ks] of byFireTime(sorted.filter((c) => lost.has(c.scheduleKey))))
      await this.db.deleteFrom('scheduleFires').where('fireAt', '=', fireAt).where('scheduleKey', 'in', ks).execute();
    const won = sorted.filter((c) => !lost.has(c.scheduleKey));
    for (const [fireAt, ks] of byFireTime(won))
      await this.db.deleteFrom('scheduleFires').where('fireAt', '<', fireAt).where('scheduleKey', 'in', ks).execute();
    return new Set(won.map((c) => c.scheduleKey));
  }

  /** keep-last of an instance: its user schedule's, else its offering's SLA's, else null. */
  async keepLastFor(instanceId: string, db: Db | Transaction<Database> = this.db): Promise<number | null> {
    // One query: it runs after every successful backup.
    const row = await KEEP_LAST.first(db, { instanceId });
    if (!row) return null;
    if (row.keepLast !== null) return row.keepLast;
    if (!row.sla) return null;
    const keepLast = (JSON.parse(row.sla) as Partial<Sla>).keepLast;
    return typeof keepLast === 'number' && Number.isInteger(keepLast) && keepLast >= 1 ? keepLast : null;
  }
}
