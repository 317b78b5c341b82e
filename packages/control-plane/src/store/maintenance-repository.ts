import { sql, type Expression, type ExpressionBuilder, type SqlBool, type Transaction } from 'kysely';
import {
  DEFAULT_MAINTENANCE_MESSAGE,
  HELD_KINDS,
  scopeKey,
  type ActiveMaintenance,
  type Maintenance,
  type MaintenanceScope,
} from '../domain/maintenance.js';
import { HELD_STATES } from '../domain/task.js';
import { ShapedTemplate, template } from './compiled.js';
import type { Db } from './db.js';
import { inScope } from './maintenance-scopes.js';
import type { AgentPlugin, Database, MaintenanceScopeRow, TaskRow } from './schema.js';

type Trx = Transaction<Database>;
type Reader = Db | Trx;

/** Who changed a scope: the API token. */
export interface MaintenanceActor {
  tokenId: string;
  role: string;
}

export function scopeOf(row: Pick<MaintenanceScopeRow, 'kind' | 'zone' | 'agentId'>): MaintenanceScope {
  if (row.kind === 'zone') return { kind: 'zone', zone: row.zone ?? '' };
  if (row.kind === 'agent') return { kind: 'agent', agentId: row.agentId ?? '' };
  return { kind: 'global' };
}

/** Scopes on that wait for readiness: among so many keys, or the first `limit` (see waitingForReady). */
const WAITING_FOR_READY = new ShapedTemplate<number | 'first', Record<string, unknown>, { scopeKey: string }>(
  String,
  (db, p, shape) => {
    const q = db
      .selectFrom('maintenanceScopes')
      .select('scopeKey')
      .where('enabled', '=', 1)
      .where('readyAt', 'is', null);
    if (shape === 'first') return q.orderBy('scopeKey').limit(p.limit as number);
    return q.where(
      'scopeKey',
      'in',
      Array.from({ length: shape }, (_, i) => p[`key:${i}`] as string),
    );
  },
);

/** The scopes turned on through the API: the query (it runs on every create and dispatch round). */
const API_SCOPES = template((db) =>
  db.selectFrom('maintenanceScopes').select(['kind', 'zone', 'agentId', 'message']).where('enabled', '=', 1),
);

/** The scopes turned on through the API. */
async function apiMaintenance(db: Reader): Promise<Maintenance[]> {
  const rows = await API_SCOPES.all(db, {});
  return rows.map((r) => ({ scope: scopeOf(r), message: r.message }));
}

/**
 * The agents of every zone where one is in maintenance (its own API window on, or drained on its
 * host), with their window's message: the query.
 */
const ZONE_AGENTS = template((db) =>
  db
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
    .orderBy('agents.id'),
);

/**
 * Maintenance now: every scope turned on through the API, and each agent drained by an operator on
 * its host (`cairn-agent drain`, as its last hello said, whether it is connected now or not), which
 * counts as that agent's maintenance with the agent's message; with the agents of every zone where
 * one is in maintenance (its own API window on, or drained on its host), each with its window's and
 * its drain's message (for admission to tell whether all of them are). One query for the agents.
 */
async function activeMaintenance(db: Reader): Promise<ActiveMaintenance> {
  const api = await apiMaintenance(db);
  const rows = await ZONE_AGENTS.all(db, {});
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

/**
 * Maintenance scopes (global, zone, agent) in the store: their rows, what runs in them, what
 * maintenance is on now ({@link activeMaintenance}), and readiness recorded by a compare-and-set
 * on ready_at. What turning a scope on or off does is lifecycle/maintenance.ts's.
 */
export class MaintenanceRepository {
  constructor(private readonly db: Db) {}

  /** Maintenance now (see {@link activeMaintenance}), read on `db` (a transaction, or the request's handle). */
  active(db: Reader = this.db): Promise<ActiveMaintenance> {
    return activeMaintenance(db);
  }

  /** The scopes turned on through the API (see {@link apiMaintenance}). */
  apiActive(db: Reader = this.db): Promise<Maintenance[]> {
    return apiMaintenance(db);
  }

  async get(scope: MaintenanceScope, db: Reader = this.db): Promise<MaintenanceScopeRow | undefined> {
    return db.selectFrom('maintenanceScopes').selectAll().where('scopeKey', '=', scopeKey(scope)).executeTakeFirst();
  }

  /** The agent scopes of these agents, by agent id. */
  async agentScopes(agentIds: string[]): Promise<Map<string, MaintenanceScopeRow>> {
    if (agentIds.length === 0) return new Map();
    const rows = await this.db
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
   * Tasks maintenance holds back that an agent holds (dispatched or running) in the scope: its
   * backups, and the rest (deletes, prunes, schedule changes).
   */
  async running(scope: MaintenanceScope, db: Reader = this.db): Promise<{ backups: number; other: number }> {
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
   * Writes the scope's row in `trx` (`existed`: whether it has one, from {@link get}) and answers
   * it: on or off with its message, who set it and when, and its readiness.
   */
  async write(
    trx: Trx,
    scope: MaintenanceScope,
    change: { enabled: boolean; message: string; actor: MaintenanceActor | null; at: number; readyAt: number | null },
    existed: boolean,
  ): Promise<MaintenanceScopeRow> {
    const row: MaintenanceScopeRow = {
      scopeKey: scopeKey(scope),
      kind: scope.kind,
      zone: scope.kind === 'zone' ? scope.zone : null,
      agentId: scope.kind === 'agent' ? scope.agentId : null,
      enabled: change.enabled ? 1 : 0,
      message: change.message,
      setBy: change.actor ? JSON.stringify({ tokenId: change.actor.tokenId, role: change.actor.role }) : null,
      setAt: change.at,
      readyAt: change.readyAt,
    };
    if (existed) {
      await trx.updateTable('maintenanceScopes').set(row).where('scopeKey', '=', row.scopeKey).execute();
    } else {
      await trx.insertInto('maintenanceScopes').values(row).execute();
    }
    return row;
  }

  /** The backups queued in `scope` (by zone, or the agent they are pinned to), in id order. */
  async queuedBackups(trx: Trx, scope: MaintenanceScope): Promise<TaskRow[]> {
    return trx
      .selectFrom('tasks')
      .selectAll()
      .where('kind', '=', 'backup')
      .where('state', '=', 'queued')
      .where(inScope(scope, 'tasks.zone', 'tasks.pinnedAgentId'))
      .orderBy('id')
      .execute();
  }

  /**
   * The keys of the scopes on that still wait for readiness: among `keys` when given, else the
   * first `limit` by key.
   */
  async waitingForReady(db: Reader, which: { keys: readonly string[] } | { limit: number }): Promise<string[]> {
    const params: Record<string, unknown> = 'keys' in which ? {} : { limit: which.limit };
    if ('keys' in which) which.keys.forEach((key, i) => (params[`key:${i}`] = key));
    const shape = 'keys' in which ? which.keys.length : 'first';
    return (await WAITING_FOR_READY.run(db, shape, params)).rows.map((r) => r.scopeKey);
  }

  /**
   * Records readiness once: ready_at goes from null to `now` only while the scope is on and no
   * task it holds back runs in it, in one conditional update. Answers the row as written when
   * this writer made it, else undefined (not waiting, something still runs, or another got it).
   */
  async claimReady(trx: Trx, key: string, now: number): Promise<MaintenanceScopeRow | undefined> {
    const row = await trx
      .selectFrom('maintenanceScopes')
      .selectAll()
      .where('scopeKey', '=', key)
      .where('enabled', '=', 1)
      .where('readyAt', 'is', null)
      .executeTakeFirst();
    if (!row) return undefined;
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
    return Number(r.numUpdatedRows) === 1 ? { ...row, readyAt: now } : undefined;
  }
}

/**
 * The tenants a change of `scope` is told to: the service provider's own, and every tenant with
 * an instance in it (global: every tenant; an agent: the instances pinned to it); for a zone,
 * also every tenant with an offering there (its own or granted), which sees the zone and may
 * put an instance in it at any moment.
 */
export function tenantsTouched(scope: MaintenanceScope, providerTenantId: string) {
  return (eb: ExpressionBuilder<Database, 'tenants'>): Expression<SqlBool> => {
    if (scope.kind === 'global') return sql<SqlBool>`1 = 1`;
    const touched = [
      eb('tenants.id', '=', providerTenantId),
      eb(
        'tenants.id',
        'in',
        eb
          .selectFrom('instances')
          .select('instances.tenantId')
          .where(inScope(scope, 'instances.zone', 'instances.agentId')),
      ),
    ];
    if (scope.kind === 'zone')
      touched.push(
        eb(
          'tenants.id',
          'in',
          eb.selectFrom('offerings').select('offerings.tenantId').where('offerings.zone', '=', scope.zone),
        ),
        eb(
          'tenants.id',
          'in',
          eb
            .selectFrom('offeringGrants')
            .innerJoin('offerings', 'offerings.id', 'offeringGrants.offeringId')
            .select('offeringGrants.tenantId')
            .where('offerings.zone', '=', scope.zone),
        ),
      );
    return eb.or(touched);
  };
}
