import { sql, type ExpressionBuilder, type SqlBool, type Transaction } from 'kysely';
import {
  DEFAULT_MAINTENANCE_MESSAGE,
  HELD_KINDS,
  MAINTENANCE_CODE,
  scopeKey,
  scopeFields,
  scopeKeysAt,
  type ActiveMaintenance,
  type Maintenance,
  type MaintenanceScope,
} from '../domain/maintenance.js';
import { HELD_STATES, type TaskKind, type TaskState } from '../domain/task.js';
import type { AgentPlugin } from './agent-repository.js';
import { transact, type Db } from './db.js';
import type { Clock } from '../clock.js';
import type { EventRepository } from './event-repository.js';
import { inScope } from './maintenance-scopes.js';
import type { Database, MaintenanceScopeRow, TaskRow } from './schema.js';
import type { TaskEndHook } from './task-endings.js';
import type { TaskRepository } from './task-repository.js';

type Trx = Transaction<Database>;
type Reader = Db | Trx;

/** Who changed a scope: the API token. */
export interface MaintenanceActor {
  tokenId: string;
  role: string;
}

/**
 * Told, in the transaction that turned a scope on, that maintenance began there (before its queued
 * backups fail): the job engine refuses the job members it covers that have not started.
 */
export type MaintenanceBegan = (
  trx: Trx,
  scope: MaintenanceScope,
  error: { code: string; message: string },
  now: number,
) => Promise<void>;

/** At most this many scopes waiting for readiness are looked at per sweep. */
const SWEEP_LIMIT = 100;

export function scopeOf(row: Pick<MaintenanceScopeRow, 'kind' | 'zone' | 'agentId'>): MaintenanceScope {
  if (row.kind === 'zone') return { kind: 'zone', zone: row.zone ?? '' };
  if (row.kind === 'agent') return { kind: 'agent', agentId: row.agentId ?? '' };
  return { kind: 'global' };
}

/** The scopes turned on through the API. */
export async function apiMaintenance(db: Reader): Promise<Maintenance[]> {
  const rows = await db
    .selectFrom('maintenanceScopes')
    .select(['kind', 'zone', 'agentId', 'message'])
    .where('enabled', '=', 1)
    .execute();
  return rows.map((r) => ({ scope: scopeOf(r), message: r.message }));
}

/**
 * Maintenance now: every scope turned on through the API, and each agent drained by an operator on
 * its host (`cairn-agent drain`, as its last hello said, whether it is connected now or not), which
 * counts as that agent's maintenance with the agent's message; with the agents of every zone where
 * one is in maintenance (its own API window on, or drained on its host), each with its window's and
 * its drain's message (for admission to tell whether all of them are). One query for the agents.
 */
export async function activeMaintenance(db: Reader): Promise<ActiveMaintenance> {
  const api = await apiMaintenance(db);
  const rows = await db
    .selectFrom('agents')
    .leftJoin('maintenanceScopes as window', (join) =>
      join.onRef('window.agentId', '=', 'agents.id').on('window.kind', '=', 'agent').on('window.enabled', '=', 1),
    )
    .select(['agents.id', 'agents.zone', 'agents.plugins', 'agents.draining', 'agents.drainMessage', 'window.message'])
    .where('agents.revokedAt', 'is', null)
    .where('agents.zone', 'in', (eb) =>
      eb
        .selectFrom('agents as held')
        .select('held.zone')
        .where('held.revokedAt', 'is', null)
        .where((w) =>
          w.or([
            w('held.draining', '=', 1),
            w(
              'held.id',
              'in',
              w
                .selectFrom('maintenanceScopes as on')
                .select('on.agentId')
                .where('on.kind', '=', 'agent')
                .where('on.enabled', '=', 1),
            ),
          ]),
        ),
    )
    .orderBy('agents.id')
    .execute();
  const agents = rows.map((a) => ({
    id: a.id,
    zone: a.zone,
    plugins: JSON.parse(a.plugins) as AgentPlugin[],
    apiWindow: a.message,
    hostDrain: a.draining === 1 ? a.drainMessage || DEFAULT_MAINTENANCE_MESSAGE : null,
  }));
  const local = agents.flatMap((a) =>
    a.hostDrain === null ? [] : [{ scope: { kind: 'agent' as const, agentId: a.id }, message: a.hostDrain }],
  );
  return { scopes: [...api, ...local], agents };
}

/** What the maintenance repository writes through, and its clock. */
export interface MaintenanceDeps {
  db: Db;
  events: EventRepository;
  tasks: TaskRepository;
  /** Told when a scope turns on (lifecycle/job-runs.ts refuses the job members it covers). */
  began: MaintenanceBegan;
  /** The service provider's own tenant: it sees every maintenance event. */
  providerTenantId: string;
  /** What time it is (the one clock server.ts makes). */
  clock: Clock;
}

/**
 * Maintenance scopes (global, zone, agent): turning them on and off, what runs in them, and
 * readiness. Turning a scope on stops the backups that have not started there (queued tasks
 * fail, a job run's remaining instances go to ERROR) in the same transaction; `maintenance.ready`
 * is recorded once per window by a compare-and-set on ready_at.
 */
export class MaintenanceRepository {
  constructor(private readonly deps: MaintenanceDeps) {}

  active(): Promise<ActiveMaintenance> {
    return activeMaintenance(this.deps.db);
  }

  apiActive(): Promise<Maintenance[]> {
    return apiMaintenance(this.deps.db);
  }

  async get(scope: MaintenanceScope, db: Reader = this.deps.db): Promise<MaintenanceScopeRow | undefined> {
    return db.selectFrom('maintenanceScopes').selectAll().where('scopeKey', '=', scopeKey(scope)).executeTakeFirst();
  }

  /** The agent scopes of these agents, by agent id. */
  async agentScopes(agentIds: string[]): Promise<Map<string, MaintenanceScopeRow>> {
    if (agentIds.length === 0) return new Map();
    const rows = await this.deps.db
      .selectFrom('maintenanceScopes')
      .selectAll()
      .where(
        'scopeKey',
        'in',
        agentIds.map((agentId) => scopeKey({ kind: 'agent', agentId })),
      )
      .execute();
    return new Map(rows.map((r) => [r.agentId ?? '', r]));
  }

  /**
   * Fails a queued backup that maintenance covers (the dispatcher found it, queued before the
   * scope was turned on elsewhere). False when it moved on meanwhile.
   */
  async refuseQueued(task: TaskRow, message: string, now = this.deps.clock.now()): Promise<boolean> {
    return transact(this.deps.db, (trx) =>
      this.deps.tasks.failQueued(trx, task, { code: MAINTENANCE_CODE, message }, now),
    );
  }

  /**
   * Tasks maintenance holds back that an agent holds (dispatched or running) in the scope: its
   * backups, and the rest (deletes, prunes, schedule changes).
   */
  async running(scope: MaintenanceScope, db: Reader = this.deps.db): Promise<{ backups: number; other: number }> {
    const rows = await db
      .selectFrom('tasks')
      .select((eb) => ['kind', eb.fn.countAll<number>().as('n')])
      .where('kind', 'in', HELD_KINDS)
      .where('state', 'in', HELD_STATES)
      .where(inScope(scope, 'tasks.zone', 'tasks.agentId'))
      .groupBy('kind')
      .execute();
    const backups = Number(rows.find((r) => r.kind === 'backup')?.n ?? 0);
    return { backups, other: rows.reduce((n, r) => n + Number(r.n), 0) - backups };
  }

  /**
   * Turns a scope on or off, in the current (request) transaction. A change records
   * `maintenance.enabled` or `maintenance.disabled`; the same state again changes nothing. Turning
   * it on fails the queued backups it covers and moves the remaining instances of every job run
   * there to ERROR (code `maintenance`, the message), and, when nothing runs there, records
   * readiness at once.
   */
  async set(
    scope: MaintenanceScope,
    input: { enabled: boolean; message: string },
    actor: MaintenanceActor,
    now: number,
  ): Promise<{ row: MaintenanceScopeRow | undefined; changed: boolean }> {
    return transact(this.deps.db, async (trx) => {
      const before = await this.get(scope, trx);
      const wasOn = before?.enabled === 1;
      if (before && wasOn === input.enabled && (!input.enabled || before.message === input.message)) {
        return { row: before, changed: false };
      }
      if (!before && !input.enabled) return { row: undefined, changed: false };
      const row = this.row(scope, input, actor, now, input.enabled && wasOn ? (before?.readyAt ?? null) : null);
      if (before) {
        await trx.updateTable('maintenanceScopes').set(row).where('scopeKey', '=', row.scopeKey).execute();
      } else {
        await trx.insertInto('maintenanceScopes').values(row).execute();
      }
      await this.announce(trx, row, input.enabled ? 'maintenance.enabled' : 'maintenance.disabled', now);
      if (input.enabled && !wasOn) {
        const error = { code: MAINTENANCE_CODE, message: input.message };
        await this.deps.began(trx, scope, error, now);
        const queued = await trx
          .selectFrom('tasks')
          .selectAll()
          .where('kind', '=', 'backup')
          .where('state', '=', 'queued')
          .where(inScope(scope, 'tasks.zone', 'tasks.pinnedAgentId'))
          .orderBy('id')
          .execute();
        for (const task of queued) await this.deps.tasks.failQueued(trx, task, error, now);
      }
      if (input.enabled) await this.markReady(trx, row.scopeKey, now);
      return { row: (await this.get(scope, trx))!, changed: true };
    });
  }

  /**
   * A backup an agent held ended: each scope covering it that waits for readiness is checked
   * (its zone, the agent that held it, and global).
   */
  readonly taskEnded: TaskEndHook = async (trx, task, _end, now) => {
    if (!HELD_KINDS.includes(task.kind as TaskKind) || !HELD_STATES.includes(task.state as TaskState)) return;
    const waiting = await trx
      .selectFrom('maintenanceScopes')
      .select('scopeKey')
      .where('scopeKey', 'in', scopeKeysAt({ zone: task.zone, agentId: task.agentId }))
      .where('enabled', '=', 1)
      .where('readyAt', 'is', null)
      .execute();
    for (const w of waiting) await this.markReady(trx, w.scopeKey, now);
  };

  /**
   * Looks at every scope still waiting for readiness, each in a transaction of its own (two
   * backups of one scope ending at the same moment on two replicas may each have seen the other
   * still running). Returns how many became ready.
   */
  async sweepReady(now = this.deps.clock.now()): Promise<number> {
    const waiting = await this.deps.db
      .selectFrom('maintenanceScopes')
      .select('scopeKey')
      .where('enabled', '=', 1)
      .where('readyAt', 'is', null)
      .orderBy('scopeKey')
      .limit(SWEEP_LIMIT)
      .execute();
    let ready = 0;
    for (const w of waiting) if (await transact(this.deps.db, (trx) => this.markReady(trx, w.scopeKey, now))) ready++;
    return ready;
  }

  /**
   * Records readiness once: ready_at goes from null to `now` only while the scope is on and no
   * backup runs in it, in one conditional update; only the writer that made it records
   * `maintenance.ready`.
   */
  private async markReady(trx: Trx, key: string, now: number): Promise<boolean> {
    const row = await trx
      .selectFrom('maintenanceScopes')
      .selectAll()
      .where('scopeKey', '=', key)
      .where('enabled', '=', 1)
      .where('readyAt', 'is', null)
      .executeTakeFirst();
    if (!row) return false;
    const scope = scopeOf(row);
    const r = await trx
      .updateTable('maintenanceScopes')
      .set({ readyAt: now })
      .where('scopeKey', '=', key)
      .where('enabled', '=', 1)
      .where('readyAt', 'is', null)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('tasks')
              .select('tasks.id')
              .where('tasks.kind', 'in', HELD_KINDS)
              .where('tasks.state', 'in', HELD_STATES)
              .where(inScope(scope, 'tasks.zone', 'tasks.agentId')),
          ),
        ),
      )
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return false;
    await this.announce(trx, { ...row, readyAt: now }, 'maintenance.ready', now);
    return true;
  }

  /**
   * One event per tenant the scope touches: the service provider's own, and every tenant with an
   * instance in it (global: every tenant; an agent: the instances pinned to it).
   */
  private async announce(trx: Trx, row: MaintenanceScopeRow, type: string, now: number): Promise<void> {
    const scope = scopeOf(row);
    const where = describe(scope);
    const what =
      type === 'maintenance.ready'
        ? `${where} is ready: no backup runs there`
        : `${where} ${type === 'maintenance.enabled' ? 'in maintenance' : 'out of maintenance'}`;
    const sp = this.deps.providerTenantId;
    const touched = (eb: ExpressionBuilder<Database, 'tenants'>) =>
      scope.kind === 'global'
        ? sql<SqlBool>`1 = 1`
        : eb.or([
            eb('tenants.id', '=', sp),
            eb(
              'tenants.id',
              'in',
              eb
                .selectFrom('instances')
                .select('instances.tenantId')
                .where(inScope(scope, 'instances.zone', 'instances.agentId')),
            ),
          ]);
    await this.deps.events.appendToTenants(trx, touched, {
      type,
      at: now,
      message: type === 'maintenance.enabled' ? `${what}: ${row.message}` : what,
      agentId: scope.kind === 'agent' ? scope.agentId : null,
      data: {
        ...scopeFields(scope),
        message: row.message,
        setBy: row.setBy ? (JSON.parse(row.setBy) as unknown) : null,
        setAt: new Date(row.setAt).toISOString(),
        ...(row.readyAt !== null ? { readyAt: new Date(row.readyAt).toISOString() } : {}),
      },
    });
  }

  private row(
    scope: MaintenanceScope,
    input: { enabled: boolean; message: string },
    actor: MaintenanceActor | null,
    now: number,
    readyAt: number | null,
  ): MaintenanceScopeRow {
    return {
      scopeKey: scopeKey(scope),
      kind: scope.kind,
      zone: scope.kind === 'zone' ? scope.zone : null,
      agentId: scope.kind === 'agent' ? scope.agentId : null,
      enabled: input.enabled ? 1 : 0,
      message: input.message,
      setBy: actor ? JSON.stringify({ tokenId: actor.tokenId, role: actor.role }) : null,
      setAt: now,
      readyAt,
    };
  }
}

function describe(scope: MaintenanceScope): string {
  if (scope.kind === 'zone') return `zone ${scope.zone}`;
  if (scope.kind === 'agent') return `agent ${scope.agentId}`;
  return 'the service';
}
