/**
 * How often agents beat, given how many this control plane holds. Every heartbeat costs the
 * control plane a read, an answer and a share of a store write; at a fixed interval an idle
 * fleet's cost grows with the fleet. So, as Nomad does with its heartbeat TTLs, the interval
 * grows with the number of sessions to keep the heartbeats a second within a budget, never
 * below the configured interval, and never above a third of the task lease (a lease outlives
 * two missed heartbeats whatever the pace).
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
 * Whether a session's agent should be told a new interval: only when the fleet's pace moved by
 * more than a quarter from what the session was told (the fleet grows and shrinks by a few
 * sessions all the time; a change of pace is sent on the next heartbeat answer).
 */
export function paceChanged(toldMs: number, fleetMs: number): boolean {
  return Math.abs(fleetMs - toldMs) > toldMs / 4;
}
