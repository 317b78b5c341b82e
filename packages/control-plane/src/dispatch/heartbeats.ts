import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { AgentRepository, HeartbeatAnswer } from '../store/agent-repository.js';
import { outsideRequest } from '../store/request-scope.js';
import type { AgentSession } from './agent-session.js';

export interface HeartbeatsDeps {
  agents: Pick<AgentRepository, 'heartbeats'>;
  /** Leases count real time (see the dispatcher's `wireClock`). */
  wireClock: Clock;
  leaseMs: number;
  /** How long heartbeats gather before one transaction stores them all (read as each window opens). */
  windowMs: () => number;
  /** What a stored heartbeat found: the dispatcher closes a revoked agent's session, offers a rotated credential. */
  found(session: AgentSession, answer: HeartbeatAnswer): Promise<void>;
  log: Logger;
}

/**
 * The heartbeats of every agent session of this process, stored together: the first one to
 * arrive opens a window of `windowMs`, and everything that arrived by its end is one transaction
 * (presence and leases renewed, revocations and rotations read). 10,000 agents beating every
 * 5 s make 2,000 heartbeats a second: a transaction each would keep the database busy with an
 * idle fleet. An agent's lease lasts many heartbeats, so the window delays nothing that matters.
 */
export class Heartbeats {
  private readonly waiting = new Map<string, AgentSession>();
  private timer: NodeJS.Timeout | undefined;
  private storing = false;
  private stopped = false;

  constructor(private readonly deps: HeartbeatsDeps) {}

  /** An agent's session beat: stored with the others of the window (its newest session's). */
  beat(session: AgentSession): void {
    if (this.stopped) return;
    this.waiting.set(session.agentId, session);
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.waiting.clear();
  }

  private schedule(): void {
    if (this.timer || this.storing || this.waiting.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      outsideRequest(() => void this.store());
    }, this.deps.windowMs());
    this.timer.unref();
  }

  private async store(): Promise<void> {
    const sessions = [...this.waiting.values()].filter((s) => s.isOpen);
    this.waiting.clear();
    this.storing = true;
    try {
      const { agents, wireClock, leaseMs, found } = this.deps;
      const answers = await agents.heartbeats(
        sessions.map((s) => s.agentId),
        wireClock.now() + leaseMs,
      );
      for (const session of sessions) await found(session, answers.get(session.agentId)!);
    } catch (err) {
      // The next heartbeats try again; leases outlast several of them.
      this.deps.log.warn({ err, agents: sessions.length }, 'storing heartbeats failed');
    } finally {
      this.storing = false;
      this.schedule();
    }
  }
}
