import type { ExpressionBuilder, Expression, Insertable, Selectable, SqlBool, Transaction } from 'kysely';
import { eventSeen, FANNED_OUT_PREFIX } from '../domain/event-view.js';
import { transact, type Db } from './db.js';
import type { Database, EventRow, TaskRow } from './schema.js';

type Trx = Transaction<Database>;

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

  /** An event about `task`, written in `trx`; `data` is stored as JSON. */
  async forTask(trx: Trx, task: TaskRow, type: string, message: string, now: number, data?: object): Promise<void> {
    await this.append(trx, {
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
    });
  }

  /** An event about an instance (a schedule's fire), in the current transaction or one of its own. */
  async forInstance(
    e: { tenantId: string; instanceId: string | null; type: string; message: string; data?: unknown },
    now: number,
  ): Promise<void> {
    await transact(this.db, (trx) =>
      this.append(trx, {
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
      }),
    );
  }

  /** An event an agent reported; its (agent, spool seq) makes a re-sent report a no-op. */
  async fromAgent(trx: Trx, row: Insertable<EventRow> & { sourceAgentId: string; sourceSeq: number }): Promise<void> {
    await this.tickClock(trx);
    await trx.insertInto('events').values(row).orIgnore().execute();
  }

  async append(trx: Trx, row: Insertable<EventRow>): Promise<void> {
    await this.tickClock(trx);
    await trx.insertInto('events').values(row).execute();
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

  /**
   * Up to `limit` events with ids in (after, upTo], in id order, as `tenantId` sees them, or the
   * sp-admin when not given (see `eventSeen`).
   */
  async list(after: number, limit: number, tenantId?: string, upTo?: number): Promise<Selectable<EventRow>[]> {
    let q = this.db.selectFrom('events').selectAll().where('id', '>', after).orderBy('id').limit(limit);
    const sp = this.providerTenantId;
    if (tenantId !== undefined) q = q.where('tenantId', '=', tenantId);
    else if (sp !== undefined)
      q = q.where((eb) => eb.or([eb('type', 'not like', `${FANNED_OUT_PREFIX}%`), eb('tenantId', '=', sp)]));
    if (upTo !== undefined) q = q.where('id', '<=', upTo);
    return q.execute();
  }

  /** Up to `limit` events after `after`, in id order, every tenant's copy of each. */
  async all(after: number, limit: number): Promise<Selectable<EventRow>[]> {
    return this.db.selectFrom('events').selectAll().where('id', '>', after).orderBy('id').limit(limit).execute();
  }

  /** Whether `tenantId` (the sp-admin when not given) sees `row`: what `list` reads. */
  sees(tenantId: string | undefined, row: Pick<EventRow, 'tenantId' | 'type'>): boolean {
    return eventSeen(row, tenantId, this.providerTenantId);
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
