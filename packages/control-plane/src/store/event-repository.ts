import type { ExpressionBuilder, Expression, Insertable, Selectable, SqlBool, Transaction } from 'kysely';
import { transact, type Db } from './db.js';
import type { Database, EventRow, TaskRow } from './schema.js';

type Trx = Transaction<Database>;

/** An event about an instance (a schedule's fire). */
export interface InstanceEvent {
  tenantId: string;
  instanceId: string | null;
  type: string;
  message: string;
  data?: unknown;
}

function taskEvent(task: TaskRow, type: string, message: string, now: number, data?: object): Insertable<EventRow> {
  return {
    tenantId: task.tenantId,
    type,
    at: now,
    message,
    taskId: task.id,
    instanceId: task.instanceId,
    jobId: null,
    agentId: task.agentId,
    data: data === undefined ? null : JSON.stringify(data),
    sourceAgentId: null,
    sourceSeq: null,
  };
}

/**
 * The append-only event log. Events are written inside the transaction of the change they
 * describe (a task moving, an agent's report), so a change and its event commit together; every
 * append first ticks one clock row, so event ids follow commit order (see migration 0002) and a
 * reader resuming after an id never skips one that committed late.
 */
export class EventRepository {
  constructor(private readonly db: Db) {}

  /** An event about `task`, written in `trx`; `data` is stored as JSON. */
  async forTask(trx: Trx, task: TaskRow, type: string, message: string, now: number, data?: object): Promise<void> {
    await this.append(trx, taskEvent(task, type, message, now, data));
  }

  /** One event about each of `tasks` (made together), in one insert in `trx`. */
  async forTasks(
    trx: Trx,
    tasks: TaskRow[],
    type: string,
    message: (task: TaskRow) => string,
    now: number,
  ): Promise<void> {
    await this.appendMany(
      trx,
      tasks.map((t) => taskEvent(t, type, message(t), now)),
    );
  }

  /** An event about an instance (a schedule's fire), in the current transaction or one of its own. */
  async forInstance(e: InstanceEvent, now: number): Promise<void> {
    await this.forInstances([e], now);
  }

  /** Events about instances (a batch of schedule fires), in one insert, in the current transaction or one of its own. */
  async forInstances(events: InstanceEvent[], now: number): Promise<void> {
    if (events.length === 0) return;
    await transact(this.db, (trx) =>
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

  /** An event an agent reported; its (agent, spool seq) makes a re-sent report a no-op. */
  async fromAgent(trx: Trx, row: Insertable<EventRow> & { sourceAgentId: string; sourceSeq: number }): Promise<void> {
    await this.tickClock(trx);
    await trx.insertInto('events').values(row).orIgnore().execute();
  }

  async append(trx: Trx, row: Insertable<EventRow>): Promise<void> {
    await this.appendMany(trx, [row]);
  }

  /** Events written together: one clock tick (they commit as one), one insert, ids in the order given. */
  async appendMany(trx: Trx, rows: Insertable<EventRow>[]): Promise<void> {
    if (rows.length === 0) return;
    await this.tickClock(trx);
    await trx.insertInto('events').values(rows).execute();
  }

  /**
   * One event for every tenant `which` selects (a change each of them must see), in one
   * INSERT…SELECT over the tenants: bounded by the number of tenants, whatever else it touches.
   */
  async appendToTenants(
    trx: Trx,
    which: (eb: ExpressionBuilder<Database, 'tenants'>) => Expression<SqlBool>,
    e: { type: string; at: number; message: string; agentId: string | null; data: object },
  ): Promise<void> {
    await this.tickClock(trx);
    await trx
      .insertInto('events')
      .columns(['tenantId', 'type', 'at', 'message', 'agentId', 'data'])
      .expression(
        trx
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
  }

  /** Up to `limit` events with ids in (after, upTo], in id order; only `tenantId`'s when given. */
  async list(after: number, limit: number, tenantId?: string, upTo?: number): Promise<Selectable<EventRow>[]> {
    let q = this.db.selectFrom('events').selectAll().where('id', '>', after).orderBy('id').limit(limit);
    if (tenantId !== undefined) q = q.where('tenantId', '=', tenantId);
    if (upTo !== undefined) q = q.where('id', '<=', upTo);
    return q.execute();
  }

  /** The id of the newest event (0 while the log is empty). */
  async lastId(): Promise<number> {
    const row = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('id').as('last'))
      .executeTakeFirst();
    return Number(row?.last ?? 0);
  }

  /** Taken before every event insert: event ids then follow commit order. */
  private async tickClock(trx: Trx): Promise<void> {
    await trx
      .updateTable('eventClock')
      .set((eb) => ({ ticks: eb('ticks', '+', 1) }))
      .where('id', '=', 1)
      .execute();
  }
}
