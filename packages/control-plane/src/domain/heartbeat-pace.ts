/**
 * How often agents beat, given how many this control plane holds. Every heartbeat costs the
 * control plane a read, an answer and a share of a store write; at a fixed interval an idle
 * fleet's cost grows with the fleet. So, as Nomad does with its heartbeat TTLs, the interval
 * grows with the number of sessions to keep the heartbeats a second within a budget, never
 * below the configured interval, and never above a third of the task lease (a lease outlives
 * two missed heartbeats whatever the pace).
 *
 * Only an agent that holds a task renews a lease with its heartbeats. An agent holding none (no
 * attempt running, no result unacknowledged) beats at the idle interval: the budget's interval
 * without the lease's cap, at most one task lease. A large idle fleet then takes the budget's
 * heartbeats a second, where the lease's cap alone would take more; an agent's presence is
 * judged against two leases (see {@link presenceStaleAfterMs}).
 */
export interface HeartbeatPace {
  /** The configured interval (CAIRN_HEARTBEAT_MS): the pace of a small fleet. */
  baseMs: number;
  /** Heartbeats a second this control plane takes from its fleet (CAIRN_HEARTBEATS_PER_S). */
  perSecond: number;
  /** The task lease (CAIRN_TASK_LEASE_MS): heartbeats renew it. */
  leaseMs: number;
}

/** Intervals are announced in whole steps of this: a fleet a few agents larger changes nothing. */
const STEP_MS = 1000;

/** The interval for a fleet of `sessions` agents. */
export function heartbeatIntervalMs(sessions: number, pace: HeartbeatPace): number {
  const needed = (sessions * 1000) / pace.perSecond;
  if (needed <= pace.baseMs) return pace.baseMs;
  const ceiling = Math.max(pace.baseMs, Math.floor(pace.leaseMs / 3));
  return Math.min(ceiling, Math.ceil(needed / STEP_MS) * STEP_MS);
}

/**
 * The interval for an agent of a fleet of `sessions` that holds no task: the budget's interval,
 * never below {@link heartbeatIntervalMs}'s and never above one task lease.
 */
export function idleHeartbeatIntervalMs(sessions: number, pace: HeartbeatPace): number {
  const busy = heartbeatIntervalMs(sessions, pace);
  const needed = Math.ceil((sessions * 1000) / pace.perSecond / STEP_MS) * STEP_MS;
  return Math.max(busy, Math.min(needed, pace.leaseMs));
}

/**
 * How long after an agent was last heard from it is shown disconnected (the replica that held its
 * socket may have died without saying so): two task leases, so an idle agent, which beats at
 * least once a lease, is never shown gone between two of its heartbeats.
 */
export function presenceStaleAfterMs(leaseMs: number): number {
  return 2 * leaseMs;
}

/** The longest a heartbeat waits for the others of its window before they are stored together. */
export const HEARTBEAT_WINDOW_MAX_MS = 2000;

/**
 * How long the heartbeats of a fleet of `sessions` gather before one transaction stores them all:
 * a quarter of the configured interval, at most a quarter of a second, while the fleet beats at
 * it; a twentieth of a longer interval (fewer heartbeats a window would cost a transaction each
 * for less), at most {@link HEARTBEAT_WINDOW_MAX_MS}. A lease lasts at least three intervals.
 */
export function heartbeatWindowMs(sessions: number, pace: HeartbeatPace): number {
  const base = Math.min(250, Math.ceil(pace.baseMs / 4));
  return Math.min(HEARTBEAT_WINDOW_MAX_MS, Math.max(base, Math.ceil(heartbeatIntervalMs(sessions, pace) / 20)));
}

/**
 * Whether a session's agent should be told a new interval: only when the fleet's pace moved by
 * more than a quarter from what the session was told (the fleet grows and shrinks by a few
 * sessions all the time; a change of pace is sent on the next heartbeat answer).
 */
export function paceChanged(toldMs: number, fleetMs: number): boolean {
  return Math.abs(fleetMs - toldMs) > toldMs / 4;
}

/**
 * From this interval up, a heartbeat is answered only every second time (unless the answer
 * carries a new pace). An agent counts the control plane gone after three intervals of silence,
 * so every second answer still leaves it a whole interval (10 s or more) of margin; shorter
 * intervals, whose margin a busy event loop could eat, are answered every time. Answering is
 * most of what a heartbeat costs the control plane (loopback or not, the send is a system call).
 */
export const ANSWER_EVERY_OTHER_FROM_MS = 10_000;

/** Whether a heartbeat is answered, given the interval the agent was told and whether the previous one was. */
export function answerHeartbeat(toldMs: number, answeredPrevious: boolean): boolean {
  return toldMs < ANSWER_EVERY_OTHER_FROM_MS || !answeredPrevious;
}
