import { sql, type ExpressionBuilder, type RawBuilder, type Transaction } from 'kysely';
import type { Database, TaskRow } from './schema.js';
import { SP_PRIORITY_FLOOR } from '../domain/job-run.js';
import { FailureCodes, type FailureCode } from '@cairn/proto/vocabulary';
import { HELD_KINDS, scopeKeysAt, type WaitingPlaces } from '../domain/maintenance.js';
import { HELD_STATES, statesLeadingTo, type TaskKind } from '../domain/task.js';
import { transact, type Db } from './db.js';
import { current as currentRead, isMysql, stateByIds, throughIndex } from './dialect.js';
import { byKey } from '../domain/key-order.js';
import { ShapedTemplate, template } from './compiled.js';
import type { Clock } from '../clock.js';
import { appendTaskEvent } from './event-log.js';
import type { TaskEndings } from './task-endings.js';

const ANY_QUEUED = template((db) => db.selectFrom('tasks').select('id').where('state', '=', 'queued').limit(1));

const DISPATCHED_BEFORE = template((db, p: { before: number }) =>
  db.selectFrom('tasks').selectAll().where('state', '=', 'dispatched').where('dispatchedAt', '<', p.before),
);

const HELD_COUNTS = template((db) =>
  db
    .selectFrom('tasks')
    .select(['agentId', 'tenantId', (eb) => eb.fn.countAll<number>().as('n')])
    .where('state', 'in', HELD_STATES)
    .groupBy(['agentId', 'tenantId']),
);

const PENDING_CANCELS = template((db) =>
  db.selectFrom('tasks').selectAll().where('cancelRequested', '=', 1).where('state', 'in', HELD_STATES),
);

/** Which places a queue head passes over (see WaitingPlaces), as list lengths: undefined, none. */
type QueueHeadShape = { kinds: number; global: boolean; zones: number; agentIds: number } | undefined;

/** Named parameters `prefix:0` … `prefix:n-1` as a list to bind. */
function list<T>(p: Record<string, unknown>, prefix: string, n: number): T[] {
  return Array.from({ length: n }, (_, i) => p[`${prefix}:${i}`] as T);
}

/**
 * Whether a queued task may be offered: not passed over where maintenance holds its kind (`w`,
 * the places as list lengths, their values in `p`), and its instance has no task held by an agent.
 */
function offerable(eb: ExpressionBuilder<Database, 'tasks'>, p: Record<string, unknown>, w: QueueHeadShape) {
  // The instances agents hold a task of, as one list the statement reads once (by state: the
  // held tasks, not the queue), not a lookup for each task examined: a tenant's 50,000 queued
  // tasks of one instance whose backup runs cost a SQLite read of the head 31.7 ms, now 10.6. A
  // task of no instance is never busy (`null in (…)` would be unknown, and its `not` too).
  const busy = eb.and([
    eb('tasks.instanceId', 'is not', null),
    eb(
      'tasks.instanceId',
      'in',
      eb
        .selectFrom('tasks as busy')
        .select('busy.instanceId')
        .where('busy.state', 'in', HELD_STATES)
        .where('busy.instanceId', 'is not', null),
    ),
  ]);
  if (w === undefined) return eb.not(busy);
  const waiting = eb.and([
    eb('tasks.kind', 'in', list<TaskKind>(p, 'kind', w.kinds)),
    w.global
      ? eb.lit(true)
      : eb.or([
          ...(w.zones > 0 ? [eb('tasks.zone', 'in', list<string>(p, 'zone', w.zones))] : []),
          // Written so that a task pinned to no agent is not "unknown" here: `null in (…)` is
          // null, the `not` of the whole would be too, and every unpinned task of a kind that
          // waits would be passed over, in every zone, while any one agent is in maintenance.
          ...(w.agentIds > 0
            ? [
                eb.and([
                  eb('tasks.pinnedAgentId', 'is not', null),
                  eb('tasks.pinnedAgentId', 'in', list<string>(p, 'agent', w.agentIds)),
                ]),
              ]
            : []),
        ]),
  ]);
  return eb.and([eb.not(waiting), eb.not(busy)]);
}

/**
 * Instances a claim's locking reads name at a time: with the two held states, 200 ranges, the
 * most MariaDB's planner looks up one by one (`eq_range_index_dive_limit`).
 */
const INSTANCES_PER_READ = 100;

/** Which tasks a ranked read ranks: every queued task, or the provider's band alone. */
type Band = 'both' | 'provider';

/**
 * The queue's ranked window (see queueHead), compiled once per shape of the places passed over
 * and band ranked.
 */
const QUEUE_HEAD = new ShapedTemplate<
  { waiting: QueueHeadShape; band: Band },
  Record<string, unknown>,
  TaskRow & { tenantRank: number }
>(
  ({ waiting: w, band }) => `${band}|${w ? `${w.kinds}|${w.global}|${w.zones}|${w.agentIds}` : 'all'}`,
  (db, p, { waiting, band }) => {
    const level = levelOf('tasks.priority');
    // Ranked on the few columns the order needs; only the winners' whole rows are read after.
    const ranked = db
      .selectFrom('tasks')
      .select(['tasks.id', 'tasks.priority'])
      .select(
        sql<number>`row_number() over (partition by ${sql.ref('tasks.tenantId')}, ${level} order by ${sql.ref('tasks.priority')} desc, ${sql.ref('tasks.id')})`.as(
          'tenantRank',
        ),
      )
      .where('tasks.state', '=', 'queued')
      .$if(band === 'provider', (q) => q.where('tasks.priority', '>=', sql.lit(SP_PRIORITY_FLOOR)))
      .where((eb) => offerable(eb, p, waiting));
    return db
      .selectFrom(ranked.as('q'))
      .innerJoin('tasks', 'tasks.id', 'q.id')
      .selectAll('tasks')
      .select('q.tenantRank')
      .where('q.tenantRank', '<=', p.perTenant as number)
      .orderBy(sql`${levelOf('q.priority')}`, 'desc')
      .orderBy(
        sql`case when ${sql.ref('q.priority')} >= ${sql.lit(SP_PRIORITY_FLOOR)} then 0 else ${sql.ref('q.tenantRank')} end`,
      )
      .orderBy('q.id')
      .limit(p.limit as number);
  },
);

/**
 * SQLite: the tenants with a task queued in the tenants' band, as a table (`active`, column `tid`)
 * found by one seek per tenant in `tasks_tenant_queued` (migration 0032), never walking their
 * tasks. The literal state lets SQLite use the partial index; it is named, because SQLite's own
 * choice, the (state, priority) index, walked the whole queue once per tenant.
 */
function tenantsQueued() {
  const next = (after?: RawBuilder<unknown>) =>
    sql`(select min(tenant_id) from tasks indexed by tasks_tenant_queued where state = 'queued' and priority < ${sql.lit(SP_PRIORITY_FLOOR)}${after ? sql` and tenant_id > ${after}` : sql``})`;
  return sql<{
    tid: string;
  }>`(with recursive t(tid) as (select ${next()} union all select ${next(sql.ref('t.tid'))} from t where t.tid is not null) select tid from t where tid is not null)`.as(
    'active',
  );
}

/** SQLite: how many tenants have a task queued in the tenants' band. */
const TENANTS_QUEUED = template((db) =>
  db.selectFrom(tenantsQueued()).select((eb) => eb.fn.countAll<number>().as('n')),
);

/**
 * SQLite: every tenant's first `k` offerable tasks in the tenants' band, each with its rank in
 * its tenant's order (priority highest first, then by id), in the queue's order (every tenant's
 * first task by id, then every tenant's second, ...). One statement: per tenant, a read down
 * `tasks_tenant_queued` that visits those `k` tasks and the ones passed over before them, no
 * other; then the ranking of what was read, never the whole queue.
 */
const TENANTS_FIRST = new ShapedTemplate<QueueHeadShape, Record<string, unknown>, TaskRow & { tenantRank: number }>(
  (w) => (w ? `${w.kinds}|${w.global}|${w.zones}|${w.agentIds}` : 'all'),
  (db, p, w) => {
    const firsts = db
      .selectFrom(tenantsQueued())
      .innerJoin('tasks as chosen', (join) =>
        join.on((eb) =>
          eb(
            'chosen.id',
            'in',
            eb
              .selectFrom('tasks')
              .select('tasks.id')
              .whereRef('tasks.tenantId', '=', 'active.tid')
              .where('tasks.state', '=', sql.lit('queued'))
              .where('tasks.priority', '<', sql.lit(SP_PRIORITY_FLOOR))
              .where((e) => offerable(e, p, w))
              .orderBy('tasks.priority', 'desc')
              .orderBy('tasks.id')
              .limit(p.k as number),
          ),
        ),
      )
      .selectAll('chosen')
      .select(
        sql<number>`row_number() over (partition by ${sql.ref('chosen.tenantId')} order by ${sql.ref('chosen.priority')} desc, ${sql.ref('chosen.id')})`.as(
          'tenantRank',
        ),
      );
    return db.selectFrom(firsts.as('f')).selectAll('f').orderBy('f.tenantRank').orderBy('f.id');
  },
);

/**
 * The dispatch queue and its leases: which queued task goes next, claiming it for an agent under
 * a new attempt, re-sends, cancels to deliver, failing what cannot be delivered, and expiring
 * leases of agents that went silent. Every move is conditional on the state and attempt read
 * before, so several replicas can dispatch from one database.
 */
export class QueueRepository {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly endings: TaskEndings,
  ) {}

  /** Whether any task waits in the queue (one indexed probe: an idle fleet's rounds stop here). */
  async anyQueued(): Promise<boolean> {
    return (await ANY_QUEUED.first(this.db, {})) !== undefined;
  }

  /** Tasks held (dispatched or running) per agent, per tenant, and in all. */
  async heldCounts(): Promise<{ total: number; byAgent: Map<string, number>; byTenant: Map<string, number> }> {
    const rows = await HELD_COUNTS.all(this.db, {});
    const byAgent = new Map<string, number>();
    const byTenant = new Map<string, number>();
    let total = 0;
    for (const r of rows) {
      const n = Number(r.n);
      total += n;
      if (r.agentId) byAgent.set(r.agentId, (byAgent.get(r.agentId) ?? 0) + n);
      byTenant.set(r.tenantId, (byTenant.get(r.tenantId) ?? 0) + n);
    }
    return { total, byAgent, byTenant };
  }

  /**
   * The head of the queue, skipping tasks whose instance already has a task held by an agent (an
   * instance never runs two operations at once). The window is fair to the two bands of priority
   * (see `fairOrder`): in the provider's band (50-99) each tenant contributes at most `perTenant`
   * tasks per priority, highest priority first; in the tenants' band (0-49) each tenant
   * contributes its `perTenant` first tasks (its highest priority first, then enqueue order)
   * whatever priority they carry, and the window takes every tenant's first task before anyone's
   * second. So one tenant's flood, at one priority or spread over many, cannot push the others'
   * work out of the window the dispatcher looks at. Work that waits out maintenance where it is
   * held (`waiting`) is passed over for the same reason. Answers in the queue's order: the
   * provider's band by priority desc then enqueue order, then the tenants' band by rank.
   */
  async queueHead(limit: number, perTenant: number = limit, waiting?: WaitingPlaces): Promise<TaskRow[]> {
    const passed = waiting !== undefined && (waiting.global || waiting.zones.length + waiting.agentIds.length > 0);
    const shape: QueueHeadShape = passed
      ? {
          kinds: waiting.kinds.length,
          global: waiting.global,
          zones: waiting.zones.length,
          agentIds: waiting.agentIds.length,
        }
      : undefined;
    const params: Record<string, unknown> = { limit, perTenant };
    if (passed) {
      waiting.kinds.forEach((v, i) => (params[`kind:${i}`] = v));
      waiting.zones.forEach((v, i) => (params[`zone:${i}`] = v));
      waiting.agentIds.forEach((v, i) => (params[`agent:${i}`] = v));
    }
    const strip = (rows: (TaskRow & { tenantRank: number })[]) => rows.map(({ tenantRank: _rank, ...task }) => task);
    // MySQL/MariaDB rank the whole queue in one statement, on the server.
    if (isMysql(this.db)) return strip((await QUEUE_HEAD.run(this.db, { waiting: shape, band: 'both' }, params)).rows);
    // SQLite runs on this thread: the provider's band ranked (the service provider's own jobs),
    // then the tenants' band from each tenant's first tasks, never the whole queue.
    const provider = strip((await QUEUE_HEAD.run(this.db, { waiting: shape, band: 'provider' }, params)).rows);
    const need = limit - provider.length;
    if (need <= 0) return provider;
    return [...provider, ...strip(await this.tenantsFirst(need, perTenant, shape, params))];
  }

  /**
   * SQLite: the tenants' band's first `need` tasks in the queue's order (every tenant's first
   * task by id, then every tenant's second, ...; at most `perTenant` of one tenant), read from
   * each tenant's first k tasks ({@link TENANTS_FIRST}), k = `need` ÷ the tenants at first. The
   * ranks up to k are then known for every tenant, and once they hold `need` tasks the answer is
   * among them: a task of rank k + 1 comes after every task of rank k or less. When they hold
   * fewer and some tenant had k to give, k doubles, up to min(perTenant, need), past which no
   * rank is taken.
   */
  private async tenantsFirst(
    need: number,
    perTenant: number,
    shape: QueueHeadShape,
    params: Record<string, unknown>,
  ): Promise<(TaskRow & { tenantRank: number })[]> {
    const tenants = Number((await TENANTS_QUEUED.first(this.db, {}))?.n ?? 0);
    if (tenants === 0) return [];
    const cap = Math.min(perTenant, need);
    let k = Math.min(cap, Math.ceil(need / tenants));
    for (;;) {
      const rows = (await TENANTS_FIRST.run(this.db, shape, { ...params, k })).rows;
      const full = rows.some((r) => r.tenantRank === k);
      if (rows.length >= need || !full || k >= cap) return rows.slice(0, need);
      k = Math.min(cap, k * 2);
    }
  }

  /**
   * Hands a queued task to an agent under a new attempt number (see `claimMany`). Returns the
   * new attempt, or null when another replica, a cancel or a maintenance scope came first.
   */
  async claim(task: TaskRow, agentId: string, leaseExpiresAt: number, now = this.clock.now()): Promise<number | null> {
    return (await this.claimMany([{ task, agentId }], leaseExpiresAt, now)).get(task.id) ?? null;
  }

  /**
   * Hands queued tasks to agents under new attempt numbers, in one transaction. Each is
   * conditional on the state and attempt read before, so two replicas can never both dispatch
   * one, and, for a backup, on no scope covering it (global, its zone, that agent) being in
   * maintenance, so a scope turned on by another replica after this one read the queue stops it.
   * On MySQL/MariaDB the rows are first locked with SKIP LOCKED: a row another replica is
   * claiming is passed over at once rather than waited for (SQLite has one writer at a time).
   * No task is claimed while its instance has another held, nor beside an earlier claim for the
   * same instance (see `oneAtATime`). Each claim counts its assignment's first send, with the
   * time it goes: the caller sends every assignment it claimed as soon as the claim committed (a
   * send after that one is counted by {@link recordDeliveries}). Returns the new attempt of each
   * task claimed, by id.
   */
  async claimMany(
    claims: { task: TaskRow; agentId: string }[],
    leaseExpiresAt: number,
    now = this.clock.now(),
  ): Promise<Map<string, number>> {
    const won = new Map<string, number>();
    if (claims.length === 0) return won;
    return transact(this.db, async (trx) => {
      won.clear(); // a retried transaction starts again
      // The rows as they are now; on MySQL/MariaDB locked, those another replica is claiming passed over.
      const read = trx
        .selectFrom('tasks')
        .select(['id', 'attempt'])
        .where(
          'id',
          'in',
          claims.map((c) => c.task.id),
        )
        .where(stateByIds(trx), 'in', statesLeadingTo('dispatched'))
        .orderBy('id');
      const rows = await (isMysql(trx) ? read.forUpdate().skipLocked() : read).execute();
      const attempts = new Map(rows.map((r) => [r.id, r.attempt]));
      // Each task once, and only at the attempt the caller read: a claim of an older one loses.
      const atAttempt = claims.filter((c) => attempts.get(c.task.id) === c.task.attempt && attempts.delete(c.task.id));
      const free = await oneAtATime(trx, atAttempt);
      // One statement per agent and maintenance scope. Its rows were read above in this
      // transaction, and no other writer can move them before it commits (locked on MySQL/MariaDB,
      // one writer on SQLite), so the statement moves all of them, or none when a scope holds them.
      for (const { agentId, covering, tasks } of byPlace(free)) {
        const r = await trx
          .updateTable('tasks')
          .set((eb) => ({
            state: 'dispatched',
            agentId,
            attempt: eb('attempt', '+', 1),
            dispatchedAt: now,
            leaseExpiresAt,
            cancelRequested: 0,
            deliveries: 1,
          }))
          .where(
            'id',
            'in',
            tasks.map((t) => t.id),
          )
          .where((eb) =>
            eb(
              eb.refTuple('id', 'attempt'),
              'in',
              tasks.map((t) => eb.tuple(t.id, t.attempt)),
            ),
          )
          .where(stateByIds(trx), 'in', statesLeadingTo('dispatched'))
          .$if(covering.length > 0, (q) =>
            q.where((eb) =>
              eb.not(
                eb.exists(
                  eb
                    .selectFrom('maintenanceScopes')
                    .select('maintenanceScopes.scopeKey')
                    .where('maintenanceScopes.enabled', '=', 1)
                    .where('maintenanceScopes.scopeKey', 'in', covering),
                ),
              ),
            ),
          )
          .executeTakeFirst();
        const moved = Number(r.numUpdatedRows);
        if (moved === 0) continue;
        // Rolls the whole claim back: sending what it could not tell apart would be worse.
        if (moved !== tasks.length) throw new Error(`claim moved ${moved} of ${tasks.length} tasks read just before`);
        for (const task of tasks) won.set(task.id, task.attempt + 1);
      }
      return won;
    });
  }

  /** Tasks an agent holds according to the store (for reconcile after a reconnect). */
  async heldBy(agentId: string): Promise<TaskRow[]> {
    return this.db
      .selectFrom('tasks')
      .selectAll()
      .where('agentId', '=', agentId)
      .where('state', 'in', HELD_STATES)
      .execute();
  }

  /**
   * Tasks still `dispatched` (not yet accepted) since before `before`, to any agent: the caller
   * keeps those of the agents it holds sessions for. Asked by state, not by a list of agent ids
   * (a list of every local agent, 10,000 at scale, was most of an idle fleet's queries).
   */
  async dispatchedBefore(before: number): Promise<TaskRow[]> {
    return DISPATCHED_BEFORE.all(this.db, { before });
  }

  /**
   * Counts one more send of each not yet accepted assignment (and restarts the wait for its
   * acceptance), in one statement; each fenced by its attempt and agent. Answers the ids
   * counted: one whose attempt moved on meanwhile is not, and must not be sent.
   */
  async recordDeliveries(tasks: TaskRow[], now = this.clock.now()): Promise<Set<string>> {
    if (tasks.length === 0) return new Set();
    return transact(this.db, async (trx) => {
      const ids = tasks.map((t) => t.id);
      // Each at its own attempt and agent, still waiting for its acceptance.
      const sent = (eb: ExpressionBuilder<Database, 'tasks'>) =>
        eb.and([
          eb('id', 'in', ids),
          eb(
            eb.refTuple('id', 'attempt', 'agentId'),
            'in',
            tasks.map((t) => eb.tuple(t.id, t.attempt, t.agentId ?? '')),
          ),
          eb('state', '=', 'dispatched'),
        ]);
      const r = await trx
        .updateTable('tasks')
        .set((eb) => ({ deliveries: eb('deliveries', '+', 1), dispatchedAt: now }))
        .where(sent)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === tasks.length) return new Set(ids);
      // Some moved on meanwhile. Those counted still match: a task's attempt never comes back, and
      // the rows counted are this transaction's until it commits.
      const rows = await trx.selectFrom('tasks').select('id').where(sent).execute();
      return new Set(rows.map((row) => row.id));
    });
  }

  /**
   * Fails an attempt the control plane cannot deliver to its agent (assignment too large, sent
   * too often without being accepted, provider gone). Fenced like an agent's report: only the
   * attempt held by that agent moves; false when it had moved on already.
   */
  async failAssignment(task: TaskRow, code: FailureCode, message: string, now = this.clock.now()): Promise<boolean> {
    return transact(this.db, async (trx) => {
      const r = await trx
        .updateTable('tasks')
        .set({ state: 'failed', endedAt: now, errorCode: code, errorMessage: message, leaseExpiresAt: null })
        .where('id', '=', task.id)
        .where('attempt', '=', task.attempt)
        .where('agentId', '=', task.agentId ?? '')
        .where(
          'state',
          'in',
          statesLeadingTo('failed').filter((s) => HELD_STATES.includes(s)),
        )
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      appendTaskEvent(trx, task, 'task.failed', `${task.kind} task failed: ${code}: ${message}`, now);
      await this.endings.ended(trx, task, { state: 'failed', error: { code, message }, output: null }, now);
      return true;
    });
  }

  /**
   * Held tasks with a pending cancel request, of any agent (the caller keeps its own sessions'):
   * one probe of the `tasks_cancels` index, however many agents are connected.
   */
  async pendingCancels(): Promise<TaskRow[]> {
    return PENDING_CANCELS.all(this.db, {});
  }

  /**
   * Held tasks whose lease ran out by `leaseNow` (the real time leases count) become `lost` (their
   * agent stopped heartbeating); `now` stamps their end.
   */
  async expireLeases(leaseNow: number, now = this.clock.now()): Promise<TaskRow[]> {
    const expired = await this.db
      .selectFrom('tasks')
      .selectAll()
      .where('state', 'in', HELD_STATES)
      .where('leaseExpiresAt', '<', leaseNow)
      .execute();
    const lost: TaskRow[] = [];
    for (const task of expired) {
      const marked = await transact(this.db, async (trx) => {
        const error = {
          code: FailureCodes.AGENT_LOST,
          message: `agent ${task.agentId ?? '?'} stopped reporting; the task's lease expired`,
        };
        const r = await trx
          .updateTable('tasks')
          .set({
            state: 'lost',
            endedAt: now,
            errorCode: error.code,
            errorMessage: error.message,
          })
          .where('id', '=', task.id)
          .where('attempt', '=', task.attempt)
          .where('state', 'in', statesLeadingTo('lost'))
          .where('leaseExpiresAt', '<', leaseNow)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1) return false;
        appendTaskEvent(trx, task, 'task.lost', `${task.kind} task lost: its agent stopped reporting`, now);
        await this.endings.ended(trx, task, { state: 'lost', error, output: null }, now);
        return true;
      });
      if (marked) lost.push(task);
    }
    return lost;
  }
}

/**
 * The claims whose instance runs nothing else, in the order given: none of an instance that has a
 * task held by an agent, and of two for one idle instance only the first. An instance runs one
 * operation at a time, in the order they were queued, even when two replicas claim its tasks at
 * once: on MySQL/MariaDB the instances' rows are locked first (in id order), so a second replica
 * waits here for the first one's claim to commit and then sees it in the locking read of the held
 * tasks (a plain read would answer from the transaction's older snapshot). SQLite has one writer.
 */
async function oneAtATime<C extends { task: TaskRow }>(trx: Transaction<Database>, claims: C[]): Promise<C[]> {
  const instanceIds = [...new Set(claims.flatMap((c) => (c.task.instanceId === null ? [] : [c.task.instanceId])))].sort(
    byKey,
  );
  if (instanceIds.length === 0) return claims;
  const busy = new Set<string | null>();
  // A few instances a statement, in id order: each statement's lists stay within what MariaDB's
  // planner reads as ranges (it estimates longer ones from statistics, and may then read the
  // whole index, locking every row in it). Its locking reads lock the rows they read, and these
  // instances' held tasks are the only ones they need, not every tenant's.
  for (let i = 0; i < instanceIds.length; i += INSTANCES_PER_READ) {
    const ids = instanceIds.slice(i, i + INSTANCES_PER_READ);
    if (isMysql(trx))
      await trx.selectFrom('instances').select('id').where('id', 'in', ids).orderBy('id').forUpdate().execute();
    const held = throughIndex(
      trx,
      trx.selectFrom('tasks').select('instanceId').where('instanceId', 'in', ids).where('state', 'in', HELD_STATES),
      'tasks',
      'tasks_instance',
    );
    for (const r of await currentRead(trx, held).execute()) busy.add(r.instanceId);
  }
  return claims.filter((c) => {
    const instanceId = c.task.instanceId;
    if (instanceId === null) return true;
    if (busy.has(instanceId)) return false;
    busy.add(instanceId);
    return true;
  });
}

/** The order level of a priority column: itself in the provider's band, -1 for the whole tenants' band. */
function levelOf(column: string) {
  return sql<number>`case when ${sql.ref(column)} >= ${sql.lit(SP_PRIORITY_FLOOR)} then ${sql.ref(column)} else -1 end`;
}

/**
 * Claims grouped by what their statement shares: the agent, and the maintenance scopes that would
 * hold them there (none for a kind maintenance does not hold).
 */
function byPlace(
  claims: { task: TaskRow; agentId: string }[],
): { agentId: string; covering: string[]; tasks: TaskRow[] }[] {
  const groups = new Map<string, { agentId: string; covering: string[]; tasks: TaskRow[] }>();
  for (const { task, agentId } of claims) {
    const covering = HELD_KINDS.includes(task.kind as TaskKind) ? scopeKeysAt({ zone: task.zone, agentId }) : [];
    const key = JSON.stringify([agentId, covering]);
    const group = groups.get(key);
    if (group) group.tasks.push(task);
    else groups.set(key, { agentId, covering, tasks: [task] });
  }
  return [...groups.values()];
}
