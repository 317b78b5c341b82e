import { sql } from 'kysely';
import type { ExpressionBuilder, Expression, Insertable, Selectable, SqlBool, Transaction } from 'kysely';
import { HELD_STATES } from '../domain/task.js';
import { eventSeen, FANNED_OUT_PREFIX } from '../domain/event-view.js';
import { transact, type Db } from './db.js';
import type { Database, EventRow, TaskRow } from './schema.js';
import { appendEvents, writeAtCommit, taskEvent } from './event-log.js';
import { throughIndex } from './dialect.js';
import { SCANNED_ROWS } from './page.js';

/** A stored progress report of a task still held by an agent, as live streams carry it. */
export interface LiveProgress {
  id: number;
  taskId: string;
  tenantId: string;
  /** The task's instance (null for a task of no instance). */
  instanceId: string | null;
  startedAt: number | null;
  percent: number;
  bytesDone: number;
  bytesTotal: number;
  message: string | null;
  at: number;
}

/** Which events a stream follows (all of its tenant's when empty). */
export interface EventFilter {
  taskId?: string;
  /** Events of this job's runs and of the tasks its runs started. */
  jobId?: string;
  /** Types starting with this. */
  typePrefix?: string;
  /** Events of this instance, and its tasks' progress. */
  instanceId?: string;
}

type Trx = Transaction<Database>;

/** A read of the event log: the events found, and where the next read starts (see EventRepository.list). */
export interface EventRead {
  rows: Selectable<EventRow>[];
  through: number;
}

/** An event about an instance (a schedule's fire). */
export interface InstanceEvent {
  tenantId: string;
  instanceId: string | null;
  type: string;
  message: string;
  data?: unknown;
}

/**
 * The append-only event log. Events are written inside the transaction of the change they
 * describe (a task moving, an agent's report), so a change and its event commit together; every
 * append first ticks one clock row, so event ids follow commit order (see migration 0002) and a
 * reader resuming after an id never skips one that committed late.
 */
export class EventRepository {
  constructor(
    private readonly db: Db,
    /**
     * The service provider's own tenant: the sp-admin reads a maintenance change once, as its
     * copy (see `eventSeen`). Without it the sp-admin reads every tenant's copy.
     */
    private readonly providerTenantId?: string,
  ) {}

  /** An event about `task`, written when `trx` commits; `data` is stored as JSON. */
  forTask(trx: Trx, task: TaskRow, type: string, message: string, now: number, data?: object): void {
    this.append(trx, taskEvent(task, type, message, now, data));
  }

  /** An event about an instance (a schedule's fire), in the current transaction or one of its own. */
  async forInstance(e: InstanceEvent, now: number): Promise<void> {
    await this.forInstances([e], now);
  }

  /** Events about instances (a batch of schedule fires), in one insert, in the current transaction or one of its own. */
  async forInstances(events: InstanceEvent[], now: number): Promise<void> {
    if (events.length === 0) return;
    await transact(this.db, async (trx) =>
      this.appendMany(
        trx,
        events.map((e) => ({
          tenantId: e.tenantId,
          type: e.type,
          at: now,
          message: e.message,
          taskId: null,
          instanceId: e.instanceId,
          jobId: null,
          agentId: null,
          data: e.data === undefined ? null : JSON.stringify(e.data),
          sourceAgentId: null,
          sourceSeq: null,
        })),
      ),
    );
  }

  /** An event, written when `trx` commits, after every event made before it in `trx`. */
  append(trx: Trx, row: Insertable<EventRow>): void {
    appendEvents(trx, [row]);
  }

  /** Events written together when `trx` commits: one insert, ids in the order given. */
  appendMany(trx: Trx, rows: Insertable<EventRow>[]): void {
    appendEvents(trx, rows);
  }

  /**
   * One event for every tenant `which` selects (a change each of them must see), in one
   * INSERT…SELECT over the tenants when `trx` commits: bounded by the number of tenants, whatever
   * else it touches.
   */
  appendToTenants(
    trx: Trx,
    which: (eb: ExpressionBuilder<Database, 'tenants'>) => Expression<SqlBool>,
    e: { type: string; at: number; message: string; agentId: string | null; data: object },
  ): void {
    writeAtCommit(trx, async (t) => {
      await t
        .insertInto('events')
        .columns(['tenantId', 'type', 'at', 'message', 'agentId', 'data'])
        .expression(
          t
            .selectFrom('tenants')
            .select((eb) => [
              'tenants.id',
              eb.val(e.type).as('type'),
              eb.val(e.at).as('at'),
              eb.val(e.message).as('message'),
              eb.val(e.agentId).as('agentId'),
              eb.val(JSON.stringify(e.data)).as('data'),
            ])
            .where(which),
        )
        .execute();
    });
  }

  /**
   * Up to `limit` events with ids in (after, upTo], in id order, as `tenantId` sees them, or the
   * sp-admin when not given (see `eventSeen`); only those `filter` selects. `through`: where the
   * next read starts, every event of the answer's kind up to it read (the last row's id when
   * `limit` were found).
   *
   * A read that filters on what the index it goes through does not hold (a stream's filters, the
   * sp-admin's copies of other tenants' events) looks at most {@link SCANNED_ROWS} events on from
   * `after` (one walk of the index finds the last of them), so a filter that matches nothing in a
   * tenant's millions of events costs a read of that stretch, not all of them (on SQLite, on the
   * thread every tenant's requests share). Such a read may answer fewer than `limit` rows, or
   * none, with `through` past them: the reader goes on from there.
   */
  async list(
    after: number,
    limit: number,
    tenantId?: string,
    upTo?: number,
    filter: EventFilter = {},
  ): Promise<EventRead> {
    const sp = this.providerTenantId;
    // One upper bound: SQLite ranges its index by the first of two and filters by the other.
    const scoped = (end: number | undefined) => {
      const from = this.db.selectFrom('events');
      let q = (tenantId !== undefined ? throughIndex(this.db, from, 'events', 'events_tenant') : from)
        .where('id', '>', after)
        .orderBy('id');
      if (tenantId !== undefined) q = q.where('tenantId', '=', tenantId);
      if (end !== undefined) q = q.where('id', '<=', end);
      return q;
    };
    const filtered = Object.values(filter).some((v) => v !== undefined) || (tenantId === undefined && sp !== undefined);
    // The stretch's last event: SCANNED_ROWS on from `after` (none when fewer follow).
    const farEnd = filtered
      ? (
          await scoped(upTo)
            .select('id')
            .offset(SCANNED_ROWS - 1)
            .limit(1)
            .executeTakeFirst()
        )?.id
      : undefined;
    let q = scoped(farEnd ?? upTo)
      .selectAll()
      .limit(limit);
    if (tenantId === undefined && sp !== undefined)
      q = q.where((eb) => eb.or([eb('type', 'not like', `${FANNED_OUT_PREFIX}%`), eb('tenantId', '=', sp)]));
    if (filter.taskId !== undefined) q = q.where('taskId', '=', filter.taskId);
    if (filter.instanceId !== undefined) q = q.where('instanceId', '=', filter.instanceId);
    const prefix = filter.typePrefix;
    if (prefix !== undefined) q = q.where(sql<string>`substr(type, 1, ${prefix.length})`, '=', prefix);
    const jobId = filter.jobId;
    if (jobId !== undefined)
      q = q.where((eb) =>
        eb.or([
          eb('jobId', '=', jobId),
          eb(
            'taskId',
            'in',
            eb
              .selectFrom('backupJobMembers')
              .select('taskId')
              .where('jobId', '=', jobId)
              .where('taskId', 'is not', null),
          ),
        ]),
      );
    const rows = await q.execute();
    const last = rows[rows.length - 1]?.id;
    const through = rows.length === limit ? last! : farEnd !== undefined ? Number(farEnd) : (upTo ?? last ?? after);
    return { rows, through: Number(through) };
  }

  /** The tasks among `taskIds` that a run of a backup job started, with that job. */
  async jobsOfTasks(taskIds: readonly string[]): Promise<Map<string, string>> {
    if (taskIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('backupJobMembers')
      .select(['taskId', 'jobId'])
      .where('taskId', 'in', [...taskIds])
      .execute();
    return new Map(rows.map((r) => [r.taskId!, r.jobId]));
  }

  /**
   * Up to `limit` progress reports with ids above `after`, in id order, of tasks an agent still
   * holds: a report of a task that has ended is never sent after its end.
   */
  async progressAfter(after: number, limit: number): Promise<LiveProgress[]> {
    const rows = await this.db
      .selectFrom('taskProgress')
      .innerJoin('tasks', 'tasks.id', 'taskProgress.taskId')
      .select([
        'taskProgress.id',
        'taskProgress.taskId',
        'tasks.tenantId',
        'tasks.instanceId',
        'tasks.startedAt',
        'taskProgress.percent',
        'taskProgress.bytesDone',
        'taskProgress.bytesTotal',
        'taskProgress.message',
        'taskProgress.at',
      ])
      .where('taskProgress.id', '>', after)
      .where('tasks.state', 'in', HELD_STATES)
      .where('taskProgress.attempt', '=', (eb) => eb.ref('tasks.attempt'))
      .orderBy('taskProgress.id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ ...r, id: Number(r.id) }));
  }

  /** The id of the newest progress report (0 while there is none). */
  async lastProgressId(): Promise<number> {
    const row = await this.db
      .selectFrom('taskProgress')
      .select((eb) => eb.fn.max('id').as('last'))
      .executeTakeFirst();
    return Number(row?.last ?? 0);
  }

  /** Up to `limit` events after `after`, in id order, every tenant's copy of each. */
  async all(after: number, limit: number): Promise<Selectable<EventRow>[]> {
    return this.db.selectFrom('events').selectAll().where('id', '>', after).orderBy('id').limit(limit).execute();
  }

  /** Whether `tenantId` (the sp-admin when not given) sees `row`: what `list` reads. */
  sees(tenantId: string | undefined, row: Pick<EventRow, 'tenantId' | 'type'>): boolean {
    return eventSeen(row, tenantId, this.providerTenantId);
  }

  /** Every event with an id up to this is forgotten (the history sweep's place; 0: none). */
  async forgottenThrough(): Promise<number> {
    const row = await this.db.selectFrom('historyState').select('eventsThrough').where('id', '=', 1).executeTakeFirst();
    return Number(row?.eventsThrough ?? 0);
  }

  /** The id of the newest event (0 while the log is empty). */
  async lastId(): Promise<number> {
    const row = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('id').as('last'))
      .executeTakeFirst();
    return Number(row?.last ?? 0);
  }
}
