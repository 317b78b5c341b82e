import { UnauthorizedError } from '../domain/errors.js';
import { HELD_STATES } from '../domain/task.js';
import { transact, type Db } from './db.js';
import { throughIndex } from './dialect.js';
import type { Clock } from '../clock.js';
import { hashSecret, newId, newSecret } from './ids.js';
import { decodeCursor, decodeNameCursor, encodeNameCursor, pageOf, type Page, type PageRequest } from './page.js';
import type { Transaction } from 'kysely';
import type { AgentPlugin, AgentRow, Database } from './schema.js';
import type { SecretBox } from './secrets.js';

export type { AgentPlugin } from './schema.js';

/** What a heartbeat found of its agent. */
export interface HeartbeatAnswer {
  /** Deleted through the API (or never known): its session closes. */
  revoked: boolean;
  /** A rotated credential waits to be sent. */
  rotationPending: boolean;
}

/** Agents looked up and renewed per statement (an IN list stays well under every database's limits). */
const HEARTBEATS_PER_STATEMENT = 500;

/** What an agent says in its hello. */
export interface AgentHelloInfo {
  zone: string;
  slots: number;
  plugins: AgentPlugin[];
  agentVersion: string;
  hostname: string;
  draining: boolean;
  drainMessage: string;
  /** Stopping: finishes what it runs and takes nothing new (not a maintenance drain). */
  shuttingDown: boolean;
}

/** The part of a hello an agent may also change during its session (an AgentState frame). */
export type AgentStateInfo = Pick<AgentHelloInfo, 'draining' | 'drainMessage' | 'shuttingDown'>;

/** The columns an agent's state is stored in. */
function stateColumns(state: AgentStateInfo) {
  return {
    // `draining` lasts until the process exits: its next session says connected again.
    state: state.shuttingDown ? ('draining' as const) : ('connected' as const),
    draining: state.draining ? 1 : 0,
    drainMessage: state.draining ? state.drainMessage : null,
  };
}

export interface AgentView extends Omit<
  AgentRow,
  'plugins' | 'credentialHash' | 'draining' | 'pendingCredentialHash' | 'pendingCredentialEnc'
> {
  /** A rotated credential waits for the agent to authenticate with it. */
  rotationPending: boolean;
  plugins: AgentPlugin[];
  draining: boolean;
  runningTasks: number;
}

/** A zone and its live agents. */
export interface ZoneView {
  zone: string;
  agents: AgentView[];
}

export class AgentRepository {
  /**
   * @param staleAfterMs an agent marked connected that has not been heard from for this long is
   *   shown disconnected: the replica that held its socket may have died without saying so.
   */
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly staleAfterMs = 60_000,
    /** Seals a rotated credential until the agent has it; rotation needs it. */
    private readonly secrets?: SecretBox,
  ) {}

  async createEnrollment(zone: string, createdBy: string, ttlMs: number, now = this.clock.now()) {
    const token = newSecret('enroll');
    const expiresAt = now + ttlMs;
    await this.db
      .insertInto('agentEnrollments')
      .values({
        id: newId('enr', now),
        tokenHash: hashSecret(token),
        zone,
        createdBy,
        createdAt: now,
        expiresAt,
        usedAt: null,
        agentId: null,
      })
      .execute();
    return { token, zone, expiresAt };
  }

  /**
   * Spends a one-time enrollment token and creates the agent with its own credential. The token
   * is marked used by a conditional update, so two racing redemptions cannot both win.
   */
  async redeemEnrollment(token: string, name: string, hostname: string, now = this.clock.now()) {
    const tokenHash = hashSecret(token);
    return transact(this.db, async (trx) => {
      const enrollment = await trx
        .selectFrom('agentEnrollments')
        .selectAll()
        .where('tokenHash', '=', tokenHash)
        .executeTakeFirst();
      if (!enrollment) throw new UnauthorizedError('enrollment token is not valid');
      if (enrollment.usedAt !== null) throw new UnauthorizedError('enrollment token was already used');
      if (enrollment.expiresAt <= now) throw new UnauthorizedError('enrollment token has expired');
      const agentId = newId('agt', now);
      const spent = await trx
        .updateTable('agentEnrollments')
        .set({ usedAt: now, agentId })
        .where('id', '=', enrollment.id)
        .where('usedAt', 'is', null)
        .executeTakeFirst();
      if (Number(spent.numUpdatedRows) !== 1) throw new UnauthorizedError('enrollment token was already used');
      const credential = newSecret('agent');
      await trx
        .insertInto('agents')
        .values({
          id: agentId,
          name: name || agentId,
          zone: enrollment.zone,
          hostname,
          credentialHash: hashSecret(credential),
          state: 'disconnected',
          sessionId: null,
          slots: 0,
          plugins: '[]',
          agentVersion: '',
          draining: 0,
          drainMessage: null,
          lastSeenAt: null,
          createdAt: now,
          revokedAt: null,
          pendingCredentialHash: null,
          pendingCredentialEnc: null,
          rotationRequestedAt: null,
          credentialRotatedAt: null,
        })
        .execute();
      return { agentId, credential, zone: enrollment.zone, name: name || agentId };
    });
  }

  /**
   * The agent a credential belongs to, if it is not revoked: its current credential, or the
   * rotated one it has been sent (`pending`). A pending credential becomes the only one the first
   * time the agent authenticates with it ({@link promoteCredential}).
   */
  async findByCredential(credential: string): Promise<{ agent: AgentRow; pending: boolean } | undefined> {
    const hash = hashSecret(credential);
    const agent = await this.db
      .selectFrom('agents')
      .selectAll()
      .where((eb) => eb.or([eb('credentialHash', '=', hash), eb('pendingCredentialHash', '=', hash)]))
      .where('revokedAt', 'is', null)
      .executeTakeFirst();
    return agent ? { agent, pending: agent.credentialHash !== hash } : undefined;
  }

  /**
   * The agent has authenticated with its rotated credential: from now on only that one works.
   * Conditional on the pending hash, so a repeat (or a racing replica) changes nothing.
   */
  async promoteCredential(agentId: string, credential: string, now = this.clock.now()): Promise<void> {
    const hash = hashSecret(credential);
    await this.db
      .updateTable('agents')
      .set({
        credentialHash: hash,
        pendingCredentialHash: null,
        pendingCredentialEnc: null,
        rotationRequestedAt: null,
        credentialRotatedAt: now,
      })
      .where('id', '=', agentId)
      .where('pendingCredentialHash', '=', hash)
      .execute();
  }

  /**
   * The agent says it stored `credential`: its pending one is promoted ({@link promoteCredential});
   * its current one (promoted meanwhile) changes nothing. False for any other credential.
   */
  async credentialStored(agentId: string, credential: string, now = this.clock.now()): Promise<boolean> {
    const found = await this.findByCredential(credential);
    if (found?.agent.id !== agentId) return false;
    if (found.pending) await this.promoteCredential(agentId, credential, now);
    return true;
  }

  /**
   * Starts a credential rotation; false for an unknown or revoked agent. The new credential is
   * made once and kept (hashed, and sealed) until the agent uses it: a second request while one is
   * pending keeps it, since the agent may already have stored it and must be able to log in with it.
   */
  async requestRotation(agentId: string, now = this.clock.now()): Promise<boolean> {
    if (!this.secrets) throw new Error('credential rotation needs the secret key');
    const credential = newSecret('agent');
    await this.db
      .updateTable('agents')
      .set({
        pendingCredentialHash: hashSecret(credential),
        pendingCredentialEnc: this.secrets.seal(credential),
        rotationRequestedAt: now,
      })
      .where('id', '=', agentId)
      .where('revokedAt', 'is', null)
      .where('pendingCredentialHash', 'is', null)
      .execute();
    const row = await this.db
      .selectFrom('agents')
      .select('id')
      .where('id', '=', agentId)
      .where('revokedAt', 'is', null)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** The rotated credential to send to the agent, while one is pending. */
  async pendingCredential(agentId: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('agents')
      .select('pendingCredentialEnc')
      .where('id', '=', agentId)
      .where('revokedAt', 'is', null)
      .executeTakeFirst();
    if (!row?.pendingCredentialEnc || !this.secrets) return undefined;
    return this.secrets.open(row.pendingCredentialEnc) as string;
  }

  /**
   * Deletes an agent: its credentials stop working and it leaves the agent views, while the row
   * stays for the tasks and events that name it. False for an unknown or already revoked agent.
   */
  async revoke(agentId: string, now = this.clock.now()): Promise<boolean> {
    const r = await this.db
      .updateTable('agents')
      .set({
        revokedAt: now,
        state: 'disconnected',
        sessionId: null,
        pendingCredentialHash: null,
        pendingCredentialEnc: null,
        rotationRequestedAt: null,
      })
      .where('id', '=', agentId)
      .where('revokedAt', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async markConnected(
    agentId: string,
    sessionId: string,
    hello: AgentHelloInfo,
    now = this.clock.now(),
  ): Promise<void> {
    await this.db
      .updateTable('agents')
      .set({
        ...stateColumns(hello),
        sessionId,
        slots: hello.slots,
        plugins: JSON.stringify(hello.plugins),
        agentVersion: hello.agentVersion,
        hostname: hello.hostname,
        lastSeenAt: now,
      })
      .where('id', '=', agentId)
      .where('revokedAt', 'is', null)
      .execute();
  }

  /**
   * Stores an agent's drain set on its host when it differs from what is stored, and answers
   * whether it did: the compare-and-set that makes one writer (of any replica) tell the change.
   * `sessionId`: only that session may change it (an AgentState frame); undefined for a hello,
   * which the newest session sends.
   */
  async setHostDrain(
    trx: Transaction<Database>,
    agentId: string,
    sessionId: string | undefined,
    draining: boolean,
    message: string,
  ): Promise<boolean> {
    let q = trx
      .updateTable('agents')
      .set({ draining: draining ? 1 : 0, drainMessage: draining ? message : null })
      .where('id', '=', agentId)
      .where('revokedAt', 'is', null)
      .where('draining', '=', draining ? 0 : 1);
    if (sessionId !== undefined) q = q.where('sessionId', '=', sessionId);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** The agent's drain or shutdown changed during its session; only the current session may say so. */
  async markState(agentId: string, sessionId: string, state: AgentStateInfo, now = this.clock.now()): Promise<void> {
    await this.db
      .updateTable('agents')
      .set({ ...stateColumns(state), lastSeenAt: now })
      .where('id', '=', agentId)
      .where('sessionId', '=', sessionId)
      .where('revokedAt', 'is', null)
      .execute();
  }

  /** Only the session that is still current may mark the agent gone. */
  async markDisconnected(agentId: string, sessionId: string, now = this.clock.now()): Promise<void> {
    await this.db
      .updateTable('agents')
      .set({ state: 'disconnected', sessionId: null, lastSeenAt: now })
      .where('id', '=', agentId)
      .where('sessionId', '=', sessionId)
      .execute();
  }

  /**
   * Heartbeats of many agents at once, in one transaction: each renews its agent's presence and
   * the lease of every task it holds. A revoked (or unknown) agent renews nothing (its tasks run
   * out their lease); the answer tells each session to close, or that a rotated credential waits
   * to be sent.
   */
  async heartbeats(
    agentIds: readonly string[],
    leaseExpiresAt: number,
    now = this.clock.now(),
  ): Promise<Map<string, HeartbeatAnswer>> {
    const answers = new Map<string, HeartbeatAnswer>();
    if (agentIds.length === 0) return answers;
    await transact(this.db, async (trx) => {
      answers.clear(); // a retried transaction starts again
      for (let i = 0; i < agentIds.length; i += HEARTBEATS_PER_STATEMENT) {
        const ids = agentIds.slice(i, i + HEARTBEATS_PER_STATEMENT);
        const rows = await trx
          .selectFrom('agents')
          .select(['id', 'revokedAt', 'pendingCredentialHash'])
          .where('id', 'in', ids)
          .execute();
        const alive = rows.filter((r) => r.revokedAt === null);
        for (const r of alive) answers.set(r.id, { revoked: false, rotationPending: r.pendingCredentialHash !== null });
        if (alive.length === 0) continue;
        const aliveIds = alive.map((r) => r.id);
        await trx.updateTable('agents').set({ lastSeenAt: now }).where('id', 'in', aliveIds).execute();
        // Through the (agent, state) index: its agents' held tasks are the only rows it reads, and
        // so the only ones it locks. MariaDB's planner reads a batch of most of a fleet through
        // the (state, …) index instead, locking every agent's held tasks until the commit.
        await throughIndex(
          trx,
          trx
            .updateTable('tasks')
            .set({ leaseExpiresAt })
            .where('agentId', 'in', aliveIds)
            .where('state', 'in', HELD_STATES),
          'tasks',
          'tasks_agent',
        ).execute();
      }
    });
    for (const id of agentIds) if (!answers.has(id)) answers.set(id, { revoked: true, rotationPending: false });
    return answers;
  }

  async get(id: string): Promise<AgentView | undefined> {
    const [view] = await this.views(
      await this.db.selectFrom('agents').selectAll().where('id', '=', id).where('revokedAt', 'is', null).execute(),
    );
    return view;
  }

  async list(page: PageRequest): Promise<Page<AgentView>> {
    const after = decodeCursor(page.cursor);
    let q = this.db
      .selectFrom('agents')
      .selectAll()
      .where('revokedAt', 'is', null)
      .orderBy('id')
      .limit(page.limit + 1);
    if (after) q = q.where('id', '>', after);
    const rows = pageOf(await q.execute(), page.limit);
    return { items: await this.views(rows.items), nextCursor: rows.nextCursor };
  }

  private async views(rows: AgentRow[]): Promise<AgentView[]> {
    if (rows.length === 0) return [];
    const counts = await this.db
      .selectFrom('tasks')
      .select(['agentId', (eb) => eb.fn.countAll<number>().as('n')])
      .where('state', 'in', HELD_STATES)
      .where(
        'agentId',
        'in',
        rows.map((r) => r.id),
      )
      .groupBy('agentId')
      .execute();
    const byAgent = new Map(counts.map((c) => [c.agentId, Number(c.n)]));
    const now = this.clock.now();
    return rows.map(
      ({ credentialHash: _c, pendingCredentialHash, pendingCredentialEnc: _p, plugins, draining, ...rest }) => ({
        ...rest,
        rotationPending: pendingCredentialHash !== null,
        state:
          rest.state !== 'disconnected' && (rest.lastSeenAt ?? 0) < now - this.staleAfterMs
            ? 'disconnected'
            : rest.state,
        plugins: JSON.parse(plugins) as AgentPlugin[],
        draining: draining === 1,
        runningTasks: byAgent.get(rest.id) ?? 0,
      }),
    );
  }

  /**
   * The zones that have agents (not revoked), provider connections or instances, by name, each
   * with its live agents; `only` restricts the list to those zones (a tenant's offered zones).
   */
  async zones(page: PageRequest, only?: string[]): Promise<Page<ZoneView>> {
    if (only?.length === 0) return { items: [], nextCursor: null };
    const after = decodeNameCursor(page.cursor);
    const named = this.db
      .selectFrom('agents')
      .select('zone')
      .where('revokedAt', 'is', null)
      .union(this.db.selectFrom('providers').select('zone'))
      .union(this.db.selectFrom('instances').select('zone'));
    let q = this.db
      .selectFrom(named.as('z'))
      .select('z.zone')
      .orderBy('z.zone')
      .limit(page.limit + 1);
    if (after !== undefined) q = q.where('z.zone', '>', after);
    if (only) q = q.where('z.zone', 'in', only);
    const rows = (await q.execute()).map((r) => r.zone);
    const zones = rows.slice(0, page.limit);
    const agents =
      zones.length === 0
        ? []
        : await this.views(
            await this.db
              .selectFrom('agents')
              .selectAll()
              .where('zone', 'in', zones)
              .where('revokedAt', 'is', null)
              .orderBy('id')
              .execute(),
          );
    const last = zones[zones.length - 1];
    return {
      items: zones.map((zone) => ({ zone, agents: agents.filter((a) => a.zone === zone) })),
      nextCursor: rows.length > page.limit && last ? encodeNameCursor(last) : null,
    };
  }

  /** How many agents a zone has (enrolled, not revoked), and the names of the plugins they reported. */
  async presence(zone: string): Promise<{ agents: number; plugins: string[] }> {
    const rows = await this.db
      .selectFrom('agents')
      .select('plugins')
      .where('zone', '=', zone)
      .where('revokedAt', 'is', null)
      .execute();
    const plugins = new Set(rows.flatMap((r) => (JSON.parse(r.plugins) as AgentPlugin[]).map((p) => p.name)));
    return { agents: rows.length, plugins: [...plugins] };
  }

  /** Plugins available per zone, from the agents that reported them. */
  async pluginsByZone(): Promise<
    { zone: string; name: string; version: string; apiVersion: number; capabilities: string[]; agents: number }[]
  > {
    const rows = await this.db
      .selectFrom('agents')
      .select(['zone', 'plugins'])
      .where('revokedAt', 'is', null)
      .execute();
    const merged = new Map<
      string,
      { zone: string; name: string; version: string; apiVersion: number; capabilities: string[]; agents: number }
    >();
    for (const row of rows) {
      for (const p of JSON.parse(row.plugins) as AgentPlugin[]) {
        const key = `${row.zone}\u0000${p.name}\u0000${p.version}`;
        const entry = merged.get(key);
        if (entry) entry.agents++;
        else
          merged.set(key, {
            zone: row.zone,
            name: p.name,
            version: p.version,
            apiVersion: p.apiVersion,
            capabilities: p.capabilities,
            agents: 1,
          });
      }
    }
    return [...merged.values()].sort((a, b) => a.zone.localeCompare(b.zone) || a.name.localeCompare(b.name));
  }

  /**
   * Whether `plugin` declares `capability` on every live agent of `zone` that runs it (and at
   * least one does): a task may land on any of them, so one older agent without it decides.
   */
  async pluginDeclares(
    trx: Db | Transaction<Database>,
    zone: string,
    plugin: string,
    capability: string,
  ): Promise<boolean> {
    const rows = await trx
      .selectFrom('agents')
      .select('plugins')
      .where('zone', '=', zone)
      .where('revokedAt', 'is', null)
      .execute();
    const found = rows.flatMap((r) => (JSON.parse(r.plugins) as AgentPlugin[]).filter((p) => p.name === plugin));
    return found.length > 0 && found.every((p) => p.capabilities.includes(capability));
  }

  /**
   * The live agents of `zone` running `plugin`: how many there are, and how many of them declare
   * `capability`. Live: connected and not shutting down (a maintenance drain still runs all but
   * backups), heard from within the stale limit, not revoked.
   */
  async live(
    zone: string,
    plugin: string,
    capability: string,
    now = this.clock.now(),
  ): Promise<{ withPlugin: number; capable: number }> {
    const rows = await this.db
      .selectFrom('agents')
      .select('plugins')
      .where('zone', '=', zone)
      .where('revokedAt', 'is', null)
      .where('state', '=', 'connected')
      .where('lastSeenAt', '>=', now - this.staleAfterMs)
      .execute();
    const found = rows.flatMap((r) => (JSON.parse(r.plugins) as AgentPlugin[]).filter((p) => p.name === plugin));
    return { withPlugin: found.length, capable: found.filter((p) => p.capabilities.includes(capability)).length };
  }

  /** {@link pluginDeclares} in the current request's transaction, or outside any. */
  async declares(zone: string, plugin: string, capability: string): Promise<boolean> {
    return this.pluginDeclares(this.db, zone, plugin, capability);
  }
}
