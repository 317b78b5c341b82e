import type { Transaction } from 'kysely';
import {
  admission,
  admitQueued,
  agentTakesBackups,
  drainFor,
  HELD_KINDS,
  MAINTENANCE_CODE,
  scopeFields,
  scopeKeysAt,
  waitingPlaces,
  type ActiveMaintenance,
  type Admission,
  type BackupPlace,
  type MaintenanceScope,
  type QueuedWork,
  type WaitingPlaces,
} from '../domain/maintenance.js';
import { HELD_STATES, type TaskKind, type TaskState } from '../domain/task.js';
import type { Clock } from '../clock.js';
import { transact, type Db } from '../store/db.js';
import type { AgentRepository } from '../store/agent-repository.js';
import type { EventRepository } from '../store/event-repository.js';
import {
  scopeOf,
  tenantsTouched,
  type MaintenanceActor,
  type MaintenanceRepository,
} from '../store/maintenance-repository.js';
import type { Database, MaintenanceScopeRow, TaskRow } from '../store/schema.js';
import type { TaskEndHook } from '../store/task-endings.js';
import type { TaskRepository } from '../store/task-repository.js';

type Trx = Transaction<Database>;

/** At most this many scopes waiting for readiness are looked at per sweep. */
const SWEEP_LIMIT = 100;

/**
 * Maintenance as read at one moment, with the rules of domain/maintenance.ts over it: many pieces
 * of work (a batch of scheduled backups, a job run's members, the queue's head) are judged by one
 * look.
 */
export class MaintenanceNow {
  constructor(
    /** What is in maintenance: the scopes, and the agents of every zone where one of them is. */
    readonly active: ActiveMaintenance,
  ) {}

  /** May this task start where it is placed (its zone, the agent it is pinned to)? */
  admit(task: QueuedWork): Admission {
    return this.admitAt(task.kind, { zone: task.zone, agentId: task.pinnedAgentId, plugin: task.plugin });
  }

  /** May work of `kind` start at `place` (only backups are stopped; see domain admission)? */
  admitAt(kind: TaskKind, place: BackupPlace): Admission {
    return admission(kind, this.active, place);
  }

  /** May work maintenance holds back be placed on this agent? */
  takesBackups(agent: { id: string; zone: string }): boolean {
    return agentTakesBackups(this.active.scopes, agent);
  }

  /** Where queued work that waits out maintenance stays for now (the queue passes it over). */
  waitingPlaces(): WaitingPlaces {
    return waitingPlaces(this.active.scopes);
  }
}

/** What the maintenance gate reads and fails queued backups with, and its clock. */
export interface MaintenanceGateDeps {
  db: Db;
  scopes: MaintenanceRepository;
  tasks: TaskRepository;
  /** What time it is (the one clock server.ts makes). */
  clock: Clock;
}

/**
 * The one place maintenance is asked: what is in maintenance is read here and judged by the rules
 * of domain/maintenance.ts, for a backup asked for through the API or fired by a schedule, a job
 * run's member, a report, the dispatcher's placement and the drains agents are told.
 */
export class MaintenanceGate {
  constructor(private readonly deps: MaintenanceGateDeps) {}

  /** Maintenance now, read on `db` (a transaction, or the request's handle by default). */
  async now(db: Db | Trx = this.deps.db): Promise<MaintenanceNow> {
    return new MaintenanceNow(await this.deps.scopes.active(db));
  }

  /** May this task start now? One look at maintenance (see {@link now} to judge many). */
  async admit(task: QueuedWork, db: Db | Trx = this.deps.db): Promise<Admission> {
    return (await this.now(db)).admit(task);
  }

  /**
   * The queue's head as `now` admits it: a backup maintenance covers is never placed; it fails
   * with the scope's message (it was queued before the scope was turned on, on another replica,
   * while a request was still committing, or before every agent of its zone able to run it went
   * into maintenance), each in a transaction of its own. Work that waits out maintenance is
   * passed over. Answers what may be placed and the backups failed here (one that moved on
   * meanwhile is not).
   */
  async admitQueued(
    head: readonly TaskRow[],
    now: MaintenanceNow,
  ): Promise<{ admitted: TaskRow[]; refused: { task: TaskRow; message: string }[] }> {
    const { admitted, refused } = admitQueued(
      head.map((t) => ({ ...t, kind: t.kind as TaskKind })),
      now.active,
    );
    const failed: { task: TaskRow; message: string }[] = [];
    for (const { task, message } of refused) {
      const at = this.deps.clock.now();
      const error = { code: MAINTENANCE_CODE, message };
      if (await transact(this.deps.db, (trx) => this.deps.tasks.failQueued(trx, task, error, at)))
        failed.push({ task, message });
    }
    return { admitted, refused: failed };
  }

  /**
   * The drain each agent is to be told (the scopes turned on through the API that cover it), and
   * a key that changes whenever any agent's drain may have (the active scopes, as text).
   */
  async drains(): Promise<{
    key: string;
    drainOf: (agent: { id: string; zone: string }) => { enabled: boolean; message: string };
  }> {
    const api = await this.deps.scopes.apiActive();
    return { key: JSON.stringify(api), drainOf: (agent) => drainFor(api, agent) };
  }
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

/** What maintenance windows change, and their clock. */
export interface MaintenanceDeps {
  db: Db;
  scopes: MaintenanceRepository;
  /** Where an agent's drain set on its host is stored. */
  agents: AgentRepository;
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
 * Maintenance windows (global, zone, agent) turned on and off, and their readiness. Turning a
 * scope on stops the backups that have not started there (queued tasks fail, a job run's
 * remaining instances go to ERROR) in the same transaction; `maintenance.ready` is recorded once
 * per window, by the writer whose compare-and-set on ready_at took.
 */
export class Maintenance {
  constructor(private readonly deps: MaintenanceDeps) {}

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
    const { scopes, tasks } = this.deps;
    return transact(this.deps.db, async (trx) => {
      const before = await scopes.get(scope, trx);
      const wasOn = before?.enabled === 1;
      if (before && wasOn === input.enabled && (!input.enabled || before.message === input.message)) {
        return { row: before, changed: false };
      }
      if (!before && !input.enabled) return { row: undefined, changed: false };
      const readyAt = input.enabled && wasOn ? (before?.readyAt ?? null) : null;
      const row = await scopes.write(trx, scope, { ...input, actor, at: now, readyAt }, before !== undefined);
      await this.announce(trx, row, input.enabled ? 'maintenance.enabled' : 'maintenance.disabled', now);
      if (input.enabled && !wasOn) {
        const error = { code: MAINTENANCE_CODE, message: input.message };
        await this.deps.began(trx, scope, error, now);
        for (const task of await scopes.queuedBackups(trx, scope)) await tasks.failQueued(trx, task, error, now);
      }
      // Readiness at once only when nothing runs there, as a plain read sees it. The conditional
      // update that records it reads the running tasks with shared locks held to the commit: under
      // load (report batches updating those rows) that made this request a deadlock victim
      // (503 store_busy). When something runs, its end records readiness, or the sweep does.
      if (input.enabled) {
        const running = await scopes.running(scope, trx);
        if (running.backups + running.other === 0) await this.markReady(trx, row.scopeKey, now);
      }
      return { row: (await scopes.get(scope, trx))!, changed: true };
    });
  }

  /**
   * A backup an agent held ended: each scope covering it that waits for readiness is checked
   * (its zone, the agent that held it, and global).
   */
  readonly taskEnded: TaskEndHook = async (trx, task, _end, now) => {
    if (!HELD_KINDS.includes(task.kind as TaskKind) || !HELD_STATES.includes(task.state as TaskState)) return;
    const keys = scopeKeysAt({ zone: task.zone, agentId: task.agentId });
    for (const key of await this.deps.scopes.waitingForReady(trx, { keys })) await this.markReady(trx, key, now);
  };

  /**
   * Looks at every scope still waiting for readiness, each in a transaction of its own (two
   * backups of one scope ending at the same moment on two replicas may each have seen the other
   * still running). Returns how many became ready.
   */
  async sweepReady(now = this.deps.clock.now()): Promise<number> {
    const waiting = await this.deps.scopes.waitingForReady(this.deps.db, { limit: SWEEP_LIMIT });
    let ready = 0;
    for (const key of waiting) if (await transact(this.deps.db, (trx) => this.markReady(trx, key, now))) ready++;
    return ready;
  }

  /**
   * An agent's drain set on its host (`cairn-agent drain` / `undrain`), as its hello or an
   * AgentState frame says: when it differs from what is stored, it is stored and told once, as
   * `maintenance.host_drained` or `maintenance.host_undrained`, to the tenants an agent window
   * is told to.
   */
  async hostDrain(agentId: string, sessionId: string | undefined, draining: boolean, message: string): Promise<void> {
    const now = this.deps.clock.now();
    await transact(this.deps.db, async (trx) => {
      if (!(await this.deps.agents.setHostDrain(trx, agentId, sessionId, draining, message))) return;
      const scope: MaintenanceScope = { kind: 'agent', agentId };
      this.deps.events.appendToTenants(trx, tenantsTouched(scope, this.deps.providerTenantId), {
        type: draining ? 'maintenance.host_drained' : 'maintenance.host_undrained',
        at: now,
        message: draining
          ? `agent ${agentId} drained on its host${message ? `: ${message}` : ''}`
          : `agent ${agentId} undrained on its host`,
        agentId,
        data: { ...scopeFields(scope), source: 'agent', message: draining ? message : null },
      });
    });
  }

  /** Records readiness once; only the writer that made it records `maintenance.ready`. */
  private async markReady(trx: Trx, key: string, now: number): Promise<boolean> {
    const row = await this.deps.scopes.claimReady(trx, key, now);
    if (!row) return false;
    await this.announce(trx, row, 'maintenance.ready', now);
    return true;
  }

  /**
   * One event per tenant the scope touches: the service provider's own, and every tenant with an
   * instance in it (global: every tenant; an agent: the instances pinned to it; a zone: also every
   * tenant with an offering there).
   */
  private async announce(trx: Trx, row: MaintenanceScopeRow, type: string, now: number): Promise<void> {
    const scope = scopeOf(row);
    const where = describe(scope);
    const what =
      type === 'maintenance.ready'
        ? `${where} is ready: no backup runs there`
        : `${where} ${type === 'maintenance.enabled' ? 'in maintenance' : 'out of maintenance'}`;
    this.deps.events.appendToTenants(trx, tenantsTouched(scope, this.deps.providerTenantId), {
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
}

function describe(scope: MaintenanceScope): string {
  if (scope.kind === 'zone') return `zone ${scope.zone}`;
  if (scope.kind === 'agent') return `agent ${scope.agentId}`;
  return 'the service';
}
