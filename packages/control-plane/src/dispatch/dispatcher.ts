import { encodeFrame } from '@cairn/proto';
import { FailureCodes, type FailureCode } from '@cairn/proto/vocabulary';
import { planRound } from '../domain/dispatch-rules.js';
import { AgentBudgets, type AgentBudget, type SessionVerdict } from '../domain/rate-limit.js';
import type { AgentCandidate } from '../domain/placement.js';
import { KeptHead } from '../domain/queue-head.js';
import type { Logger } from '../logger.js';
import type { AgentHelloInfo, AgentRepository, AgentStateInfo, HeartbeatAnswer } from '../store/agent-repository.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import type { Maintenance, MaintenanceGate, MaintenanceNow } from '../lifecycle/maintenance.js';
import type { TaskRow } from '../store/schema.js';
import type { QueueRepository } from '../store/queue-repository.js';
import type { QuotaRepository } from '../store/quota-repository.js';
import type { Metrics } from '../observability/metrics.js';
import { outsideRequest } from '../store/request-scope.js';
import { elapsedMs, type Clock } from '../clock.js';
import { CLOSE_REVOKED, type AgentSession, type SessionHost } from './agent-session.js';
import { Heartbeats } from './heartbeats.js';
import {
  heartbeatIntervalMs,
  heartbeatWindowMs,
  idleHeartbeatIntervalMs,
  type HeartbeatPace,
} from '../domain/heartbeat-pace.js';

/**
 * How long a full read of the queue's head serves the rounds that follow: the longest a task
 * queued behind a backlog waits to be ranked, unless the read itself took long (a long queue:
 * then nine times the read, see `KeptHead`).
 */
export const HEAD_KEPT_MS = 100;

/** A task to send to the session of the agent that holds it (none: not connected here). */
interface Assignment {
  session: AgentSession | undefined;
  task: TaskRow;
}

export interface DispatcherOptions {
  heartbeatMs: number;
  /** Heartbeats a second taken from the fleet: a larger fleet is told a longer interval. */
  heartbeatsPerSecond: number;
  taskLeaseMs: number;
  pollMs: number;
  maxConcurrentTasks: number;
  maxFrameBytes: number;
  /** Every agent's frame budget (token bucket), kept across its sessions. */
  frameRate: { perSecond: number; burst: number };
  /** Every agent's byte budget (token bucket), kept across its sessions. */
  byteRate: { perSecond: number; burst: number };
  /** How often one agent may open a new session here: `burst` at once, then one per `intervalMs`. */
  sessionPacing: { intervalMs: number; burst: number };
  /** An attempt whose assignment was sent this many times without being accepted fails. */
  maxDeliveries: number;
  /** How often maintenance set on any replica is looked for (drains to send, readiness). */
  maintenancePollMs: number;
}

/** What the dispatcher works with. */
export interface DispatcherDeps {
  queue: QueueRepository;
  agents: AgentRepository;
  catalog: CatalogRepository;
  /** Maintenance windows: readiness is swept here. */
  maintenance: Maintenance;
  /** Where maintenance is asked: drains, placement, queued backups it covers. */
  maintenanceGate: MaintenanceGate;
  quotas: QuotaRepository;
  /** What time it is: claims and deliveries are stamped with it (rates count real elapsed time). */
  clock: Clock;
  /**
   * The real time the control plane and its agents keep, which leases count: an agent renews its
   * hold every heartbeat in real time, so a test's clock jumping ahead must not expire it.
   */
  wireClock: Clock;
  opts: DispatcherOptions;
  log: Logger;
  metrics?: Metrics;
}

/**
 * Moves queued tasks to the agents connected to this process. All dispatch state lives in the
 * store: a task is claimed with a conditional update (attempt + state), so several replicas can
 * run a dispatcher each; the in-memory session map only says which sockets are local.
 */
export class Dispatcher implements SessionHost {
  private readonly sessions = new Map<string, AgentSession>();
  private readonly agentInfo = new Map<string, AgentHelloInfo>();
  private running = false;
  private again = false;
  private sweepDue = false;
  /**
   * The last full round found every slot of the local agents taken, and nothing since could have
   * freed one: a {@link wake} then only delivers cancels (see {@link round}).
   */
  private full = false;
  /** A {@link poke} since the last round began: a slot may have freed (a task ended, an agent came or changed, the timer). */
  private slotMayFree = true;
  private timer: NodeJS.Timeout | undefined;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private maintenanceRunning = false;
  /** When this process began (real elapsed time): leases get one lease period to be renewed. */
  private readonly startedAt = elapsedMs();
  private stopped = false;
  /** The active maintenance scopes (as `drains()` keys them) every session was told by the last walk. */
  private drainsWalked: string | undefined;
  /** When each tenant last got a slot here (a rising count): fair turns across rounds. */
  private readonly lastServed = new Map<string, number>();
  private served = 0;
  /** The queue's head, kept for the rounds that follow a full read (see `KeptHead`). */
  private readonly keptHead = new KeptHead<TaskRow>(HEAD_KEPT_MS);
  private readonly pace: HeartbeatPace;
  readonly maxFrameBytes: number;
  readonly frameRate: { perSecond: number; burst: number };
  readonly byteRate: { perSecond: number; burst: number };
  /**
   * Every agent's budget, held by this process so that it outlives the agent's sessions. A
   * replica does not share it with others: an agent that alternates between replicas gets each
   * replica's budget (the bound is the budget times the replicas; see docs/operations.md).
   */
  private readonly budgets: AgentBudgets;
  /** Heartbeats of this process's sessions, stored a window at a time. */
  private readonly heartbeats: Heartbeats;

  private readonly queue: QueueRepository;
  private readonly agents: AgentRepository;
  private readonly catalog: CatalogRepository;
  private readonly maintenance: Maintenance;
  private readonly maintenanceGate: MaintenanceGate;
  private readonly quotas: QuotaRepository;
  private readonly clock: Clock;
  private readonly wireClock: Clock;
  private readonly opts: DispatcherOptions;
  private readonly log: Logger;
  private readonly metrics: Metrics | undefined;

  constructor(deps: DispatcherDeps) {
    ({
      queue: this.queue,
      agents: this.agents,
      catalog: this.catalog,
      maintenance: this.maintenance,
      maintenanceGate: this.maintenanceGate,
      quotas: this.quotas,
      clock: this.clock,
      wireClock: this.wireClock,
      opts: this.opts,
      log: this.log,
      metrics: this.metrics,
    } = deps);
    const opts = deps.opts;
    this.pace = { baseMs: opts.heartbeatMs, perSecond: opts.heartbeatsPerSecond, leaseMs: opts.taskLeaseMs };
    this.maxFrameBytes = opts.maxFrameBytes;
    this.frameRate = opts.frameRate;
    this.byteRate = opts.byteRate;
    this.budgets = new AgentBudgets({ frames: opts.frameRate, bytes: opts.byteRate, sessions: opts.sessionPacing });
    this.heartbeats = new Heartbeats({
      agents: this.agents,
      wireClock: this.wireClock,
      leaseMs: opts.taskLeaseMs,
      windowMs: () => heartbeatWindowMs(this.sessions.size, this.pace),
      found: async (session, answer) => void (await this.heartbeatFound(session, answer)),
      log: this.log,
    });
  }

  start(): void {
    this.timer = setInterval(() => {
      // Lease expiry is a matter of seconds: the timer's rounds check it, local wake-ups don't.
      this.sweepDue = true;
      this.poke();
      this.budgets.sweep(elapsedMs());
    }, this.opts.pollMs);
    this.timer.unref();
    this.maintenanceTimer = setInterval(() => this.maintenanceCheck(), this.opts.maintenancePollMs);
    this.maintenanceTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.heartbeats.stop();
    if (this.timer) clearInterval(this.timer);
    if (this.maintenanceTimer) clearInterval(this.maintenanceTimer);
  }

  /**
   * Maintenance changed through the API here: agents are told at once, and queued work is looked
   * at again (leaving maintenance resumes it; a change on another replica is found by the timer
   * and the timed dispatch rounds).
   */
  maintenanceChanged(): void {
    this.maintenanceCheck();
    this.poke();
  }

  /**
   * Every agent connected here is told its drain if it differs from what it was last told, and
   * scopes waiting for readiness are checked (by the timer, for changes made on any replica).
   */
  private maintenanceCheck(): void {
    if (this.stopped || this.maintenanceRunning) return;
    this.maintenanceRunning = true;
    outsideRequest(() => {
      void (async () => {
        try {
          await this.sendDrains();
          const ready = await this.maintenance.sweepReady();
          this.log.debug({ ready }, 'maintenance checked');
        } catch (err) {
          this.log.warn({ err }, 'maintenance check failed');
        } finally {
          this.maintenanceRunning = false;
        }
      })();
    });
  }

  /**
   * Sends each local session its drain when it differs from the last one sent on it. The walk of
   * every session is skipped while the active scopes are those of the last walk (10,000 sessions
   * walked every second for nothing, otherwise); a session told other scopes at its welcome makes
   * the next walk happen.
   */
  private async sendDrains(only?: AgentSession): Promise<void> {
    if (this.sessions.size === 0) return;
    const { key, drainOf } = await this.maintenanceGate.drains();
    if (only) {
      if (key !== this.drainsWalked) this.drainsWalked = undefined;
    } else {
      if (key === this.drainsWalked) return;
      this.drainsWalked = key;
    }
    for (const session of only ? [only] : this.sessions.values()) {
      const info = this.agentInfo.get(session.agentId);
      if (!info || !session.isOpen) continue;
      const drain = drainOf({ id: session.agentId, zone: info.zone });
      const last = session.drainSent;
      if (last && last.enabled === drain.enabled && last.message === drain.message) continue;
      session.drainSent = drain;
      session.send({ drain });
      this.log.info({ agentId: session.agentId, ...drain }, 'maintenance drain sent to the agent');
    }
  }

  /**
   * Asks for a dispatch round soon, after something that may free or add a slot (a task ended, an
   * agent connected or changed, the timer); rounds never overlap.
   */
  poke(): void {
    this.slotMayFree = true;
    this.request();
  }

  /**
   * Asks for a round after work was queued or a cancel requested (the API, a job run). While every
   * local slot is taken it only delivers cancels: the queued work could not be placed, and the
   * task end or agent that frees a slot pokes (the timer too, every poll interval).
   */
  wake(): void {
    this.request();
  }

  private request(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    // The loop outlives whatever woke it: it must never run inside a request's transaction.
    outsideRequest(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        await this.round();
      } while (this.again && !this.stopped);
    } catch (err) {
      this.log.error({ err }, 'dispatch round failed');
    } finally {
      this.running = false;
    }
  }

  private async round(): Promise<void> {
    // Read before the first await: a poke from here on asks for another round.
    const stillFull = this.full && !this.slotMayFree;
    this.slotMayFree = false;
    if (this.sweepDue) {
      this.sweepDue = false;
      await this.sweepLeases();
      await this.resendUnacknowledged();
    }
    await this.sendCancels();
    if (stillFull) return;
    this.full = false;
    // Nothing to place, or nowhere to place it: the round would walk every session for nothing.
    if (this.sessions.size === 0 || !(await this.queue.anyQueued())) return;
    const held = await this.queue.heldCounts();
    const budget = this.opts.maxConcurrentTasks - held.total;
    if (budget <= 0) return;
    const maintenance = await this.maintenanceGate.now();
    const candidates: AgentCandidate[] = [];
    for (const [agentId, session] of this.sessions) {
      const info = this.agentInfo.get(agentId);
      if (!info || !session.isOpen) continue;
      candidates.push({
        id: agentId,
        zone: info.zone,
        slots: info.slots,
        held: held.byAgent.get(agentId) ?? 0,
        plugins: info.plugins,
        // Drained on its host, or covered by a scope in maintenance: it is offered no backup.
        draining: info.draining || !maintenance.takesBackups({ id: agentId, zone: info.zone }),
        shuttingDown: info.shuttingDown,
      });
    }
    const free = candidates.reduce((n, a) => n + Math.max(0, a.slots - a.held), 0);
    // Every local slot taken: until something pokes, the API's wakes skip this far.
    this.full = free === 0;
    if (free === 0) return;
    const window = Math.min(500, Math.max(50, free * 4));
    const places = maintenance.waitingPlaces();
    const placesKey = JSON.stringify(places);
    let read = this.keptHead.take(placesKey, free, elapsedMs());
    if (!read) {
      // The whole window, whatever one tenant's share: it orders every tenant's first tasks
      // before anyone's next, so a longer tail is only kept for the rounds that follow.
      const readStarted = elapsedMs();
      read = await this.queue.queueHead(window, window, places);
      const readEnded = elapsedMs();
      this.keptHead.read(placesKey, read, read.length >= window, readEnded, readEnded - readStarted);
    }
    const head = await this.refuseCovered(read, maintenance);
    if (head.length < read.length) {
      const admitted = new Set(head.map((t) => t.id));
      this.keptHead.drop(
        read.filter((t) => !admitted.has(t.id)),
        false,
      );
    }
    // Each tenant's runningTasks limit, for the tenants in the window: one query.
    const limits = await this.quotas.limitsOf('runningTasks', [...new Set(head.map((t) => t.tenantId))]);
    const plan = planRound(
      head,
      candidates,
      budget,
      held.byTenant,
      this.lastServed,
      (tenantId) => limits.get(tenantId) ?? Infinity,
    );
    // Claimed in one transaction; sent after it committed (each delivery counted first).
    this.keptHead.drop(
      plan.map(({ task }) => task),
      true,
    );
    const won = await this.queue.claimMany(
      plan.map(({ task, agentId }) => ({ task, agentId })),
      this.wireClock.now() + this.opts.taskLeaseMs,
      this.clock.now(),
    );
    const claimed: Assignment[] = [];
    for (const { task, agentId } of plan) {
      const attempt = won.get(task.id);
      if (attempt === undefined) {
        // Another replica took it, or it was cancelled: its slot may go to the next task.
        this.again = true;
        continue;
      }
      this.lastServed.set(task.tenantId, ++this.served);
      claimed.push({
        session: this.sessions.get(agentId),
        task: { ...task, attempt, state: 'dispatched', agentId, deliveries: 1 },
      });
    }
    // Their first send was counted by the claim itself: one transaction a round, not two. One
    // whose session closed meanwhile is counted all the same and sent on the agent's next hello:
    // it spends one of its CAIRN_ASSIGN_MAX_SENDS.
    await this.assign(claimed, true);
  }

  /**
   * A backup maintenance covers is never placed: it fails with the scope's message
   * (MaintenanceGate.admitQueued); what failed here is logged and counted.
   */
  private async refuseCovered(head: TaskRow[], maintenance: MaintenanceNow): Promise<TaskRow[]> {
    const { admitted, refused } = await this.maintenanceGate.admitQueued(head, maintenance);
    for (const { task, message } of refused) {
      this.log.info({ taskId: task.id, message }, 'queued backup failed: maintenance');
      this.metrics?.tasksEnded.inc({ state: 'failed' });
    }
    return admitted;
  }

  /**
   * Sends the assignments; if a socket is gone the task stays dispatched and is re-sent on
   * reconnect. An assignment that can never arrive fails instead of being sent again and again:
   * one larger than the agent's frame limit (the agent would drop the session on it), or one
   * sent `maxDeliveries` times without being accepted. The provider of each is read once per
   * call, and the sends not yet accepted are counted in one transaction before they go, unless
   * `counted` (the assignments were claimed just now, and the claim counted their first send).
   */
  private async assign(assignments: Assignment[], counted = false): Promise<void> {
    const configs = new Map<string, string | null>();
    const ready: { session: AgentSession; task: TaskRow; frame: Uint8Array }[] = [];
    for (const { session, task } of assignments) {
      if (!session) continue;
      if (!configs.has(task.providerId)) {
        const provider = await this.catalog.getProvider(task.providerId);
        configs.set(task.providerId, provider ? JSON.stringify(await this.catalog.taskConnectionFor(provider)) : null);
      }
      const providerConfigJson = configs.get(task.providerId);
      if (!providerConfigJson) {
        await this.failAssignment(
          task,
          FailureCodes.PROVIDER_GONE,
          `provider connection ${task.providerId} no longer exists`,
        );
        continue;
      }
      const frame = encodeFrame({
        assign: {
          taskId: task.id,
          attempt: task.attempt,
          operation: task.kind,
          plugin: task.plugin,
          providerConfigJson,
          paramsJson: task.params,
          tenantId: task.tenantId,
        },
      });
      const limit = session.agentMaxFrameBytes;
      if (frame.byteLength > limit) {
        await this.failAssignment(
          task,
          FailureCodes.ASSIGNMENT_TOO_LARGE,
          `the assignment is ${frame.byteLength} bytes, over agent ${session.agentId}'s frame limit of ${limit} bytes: the instance locator, provider configuration or parameters are too large`,
        );
        continue;
      }
      // Only an assignment not yet accepted counts; a running one is re-sent on reconnect only.
      if (!counted && task.state === 'dispatched' && task.deliveries >= this.opts.maxDeliveries) {
        await this.failAssignment(
          task,
          FailureCodes.ASSIGNMENT_UNDELIVERED,
          `the assignment was sent to agent ${session.agentId} ${task.deliveries} times and never accepted`,
        );
        continue;
      }
      ready.push({ session, task, frame });
    }
    const sent = counted
      ? undefined
      : await this.queue.recordDeliveries(ready.filter((r) => r.task.state === 'dispatched').map((r) => r.task));
    for (const { session, task, frame } of ready) {
      if (sent && task.state === 'dispatched' && !sent.has(task.id)) continue; // the attempt moved on meanwhile
      session.sendFrame(frame);
      this.log.debug({ taskId: task.id, attempt: task.attempt, agentId: session.agentId }, 'task assigned');
    }
  }

  private async failAssignment(task: TaskRow, code: FailureCode, message: string): Promise<void> {
    if (!(await this.queue.failAssignment(task, code, message))) return;
    this.log.warn({ taskId: task.id, attempt: task.attempt, agentId: task.agentId, code }, `task failed: ${message}`);
    this.metrics?.tasksEnded.inc({ state: 'failed' });
    this.poke();
  }

  /**
   * An assignment is itself delivered at least once: a task still `dispatched` to a connected
   * agent a while after it was sent (the send failed, the process died between claim and send)
   * is sent again. The agent's journal makes a repeat harmless: it re-acknowledges an attempt it
   * runs, ignores one it finished, and runs one it never saw. Only while the agent shows it hears
   * the session (a heartbeat came after the last send): a link gone silent, that delivers later
   * or not at all, is no proof the agent refused anything, and must not spend the sends that end
   * in ASSIGNMENT_UNDELIVERED.
   */
  private async resendUnacknowledged(): Promise<void> {
    const olderThan = this.clock.now() - 2 * this.opts.heartbeatMs;
    const again: Assignment[] = [];
    for (const task of await this.queue.dispatchedBefore(olderThan)) {
      const session = this.sessions.get(task.agentId ?? '');
      if (!session?.isOpen) continue;
      if ((session.lastHeartbeatAt ?? -Infinity) <= (task.dispatchedAt ?? -Infinity)) continue;
      this.log.warn(
        { taskId: task.id, attempt: task.attempt, agentId: session.agentId },
        'assignment not acknowledged; sending it again',
      );
      again.push({ session, task });
    }
    await this.assign(again);
  }

  private async sendCancels(): Promise<void> {
    if (this.sessions.size === 0) return;
    for (const task of await this.queue.pendingCancels()) {
      const session = this.sessions.get(task.agentId ?? '');
      const key = `${task.id}:${task.attempt}`;
      if (!session || session.cancelsSent.has(key)) continue;
      session.cancelsSent.add(key);
      session.send({ cancel: { taskId: task.id, attempt: task.attempt, reason: 'cancelled through the API' } });
    }
  }

  /**
   * Leases are not swept during the first lease period of a process: after a control-plane
   * restart, agents need a moment to reconnect and renew them.
   */
  private async sweepLeases(): Promise<void> {
    if (elapsedMs() - this.startedAt < this.opts.taskLeaseMs) return;
    for (const task of await this.queue.expireLeases(this.wireClock.now())) {
      this.log.warn({ taskId: task.id, attempt: task.attempt, agentId: task.agentId }, 'task lost: lease expired');
      this.metrics?.tasksEnded.inc({ state: 'lost' });
    }
  }

  /** An agent (authenticated) asks to open a session: refused while it reconnects too often. */
  admitSession(agentId: string): SessionVerdict {
    const now = elapsedMs();
    return this.budgets.of(agentId, now).session(now);
  }

  // --- SessionHost ---

  budgetOf(agentId: string): AgentBudget {
    return this.budgets.of(agentId, elapsedMs());
  }

  async onHello(
    session: AgentSession,
    hello: AgentHelloInfo,
    running: { taskId: string; attempt: number }[],
  ): Promise<void> {
    const previous = this.sessions.get(session.agentId);
    if (previous && previous !== session) previous.fail(4000, 'replaced by a newer session of the same agent');
    this.sessions.set(session.agentId, session);
    this.agentInfo.set(session.agentId, hello);
    await this.maintenance.hostDrain(session.agentId, undefined, hello.draining, hello.drainMessage);
    await this.agents.markConnected(session.agentId, session.sessionId, hello);
    if (!(await this.credentialCheck(session))) return;
    // Right after every welcome: the drain the API sets for this agent, whatever it was told before.
    session.drainSent = undefined;
    await this.sendDrains(session);
    // Reconcile: re-send every assignment the store says this agent holds and the agent did not
    // list (it lists what it runs and what ended with its result not yet acknowledged: those
    // reports are on their way). The agent re-acknowledges, or ignores an attempt it finished.
    const listed = new Set(running.map((r) => `${r.taskId}:${r.attempt}`));
    const held = await this.queue.heldBy(session.agentId);
    await this.assign(
      held.filter((task) => !listed.has(`${task.id}:${task.attempt}`)).map((task) => ({ session, task })),
    );
    this.log.info(
      {
        agentId: session.agentId,
        sessionId: session.sessionId,
        slots: hello.slots,
        plugins: hello.plugins.map((p) => p.name),
      },
      'agent connected',
    );
    this.poke();
  }

  async onHeartbeat(session: AgentSession): Promise<void> {
    session.lastHeartbeatAt = this.clock.now();
    this.metrics?.heartbeats.inc();
    this.heartbeats.beat(session);
  }

  /** Applied as a hello's state is: stored, and the next round places work by it. */
  async onAgentState(session: AgentSession, state: AgentStateInfo): Promise<void> {
    if (this.sessions.get(session.agentId) !== session) return;
    const info = this.agentInfo.get(session.agentId);
    if (info) Object.assign(info, state);
    await this.maintenance.hostDrain(session.agentId, session.sessionId, state.draining, state.drainMessage);
    await this.agents.markState(session.agentId, session.sessionId, state);
    this.log.info({ agentId: session.agentId, sessionId: session.sessionId, ...state }, 'agent state changed');
    // Undrained: queued work may go to it now; drained: queued backups it was the last to take fail.
    this.poke();
  }

  async onCredentialStored(session: AgentSession, credential: string): Promise<void> {
    if (!(await this.agents.credentialStored(session.agentId, credential))) {
      session.fail(1008, 'credential_stored frame: credential is not one this agent was sent');
      return;
    }
    // A later rotation is offered on this same session.
    session.credentialOffered = false;
    this.log.info(
      { agentId: session.agentId, sessionId: session.sessionId },
      'agent stored its rotated credential; the previous one is retired',
    );
  }

  /**
   * Renews the agent's presence and leases, and acts on what the API changed meanwhile on any
   * replica: a deleted agent's session closes (false); a rotated credential is sent.
   */
  private async credentialCheck(session: AgentSession): Promise<boolean> {
    const answers = await this.agents.heartbeats([session.agentId], this.wireClock.now() + this.opts.taskLeaseMs);
    return this.heartbeatFound(session, answers.get(session.agentId)!);
  }

  /** What a stored heartbeat found: a deleted agent's session closes (false); a rotated credential is sent. */
  private async heartbeatFound(session: AgentSession, state: HeartbeatAnswer): Promise<boolean> {
    if (state.revoked) {
      session.fail(CLOSE_REVOKED, 'the agent was deleted');
      return false;
    }
    if (state.rotationPending) await this.offerCredential(session);
    return true;
  }

  /** Sends the pending rotated credential, once per session (every new session gets it again). */
  private async offerCredential(session: AgentSession): Promise<void> {
    if (session.credentialOffered || !session.isOpen) return;
    const credential = await this.agents.pendingCredential(session.agentId);
    if (!credential) return;
    session.credentialOffered = true;
    session.send({ credential: { credential } });
    this.log.info({ agentId: session.agentId, sessionId: session.sessionId }, 'rotated credential sent to the agent');
  }

  /** The API deleted an agent: close its session here at once (other replicas at its next heartbeat). */
  agentRevoked(agentId: string): void {
    this.sessions.get(agentId)?.fail(CLOSE_REVOKED, 'the agent was deleted');
  }

  /** The API rotated an agent's credential: a session held here gets it at once. */
  async rotationRequested(agentId: string): Promise<void> {
    const session = this.sessions.get(agentId);
    if (session) await this.offerCredential(session);
  }

  /**
   * The agent refused a task because it is shutting down: it is offered nothing more (its fresh
   * hello may still be on the way). A refusal because it drains changes nothing here: it says so
   * (AgentState, or its next hello), or is in a maintenance scope the dispatcher reads each round.
   */
  onShuttingDownRefusal(session: AgentSession): void {
    const info = this.agentInfo.get(session.agentId);
    if (info) info.shuttingDown = true;
  }

  onViolation(code: number): void {
    this.metrics?.frameErrors.inc({ code: String(code) });
  }

  onRateLimited(): void {
    this.metrics?.rateLimited.inc();
  }

  /** An agent's upgrade was refused: it opens sessions too often. */
  onReconnectRefused(): void {
    this.metrics?.reconnectsRefused.inc();
  }

  /** The heartbeat interval agents of this process are told now (it grows with the fleet). */
  get heartbeatMs(): number {
    return heartbeatIntervalMs(this.sessions.size, this.pace);
  }

  /** The interval agents of this process are told for while they hold no task. */
  get idleHeartbeatMs(): number {
    return idleHeartbeatIntervalMs(this.sessions.size, this.pace);
  }

  /** Agent sessions held by this process. */
  get localSessions(): number {
    return this.sessions.size;
  }

  async onClose(session: AgentSession): Promise<void> {
    if (this.sessions.get(session.agentId) !== session) return;
    this.sessions.delete(session.agentId);
    this.agentInfo.delete(session.agentId);
    await this.agents.markDisconnected(session.agentId, session.sessionId);
  }

  /** Closes every agent session (shutdown). */
  closeAll(): void {
    for (const s of this.sessions.values()) s.fail(1001, 'control plane shutting down');
  }
}
