/**
 * The task state machine (docs/api.md, "Tasks"): queued → dispatched → running → succeeded / failed /
 * cancelled, plus `lost` when the agent vanished past its lease.
 */
import { FailureCodes, OPERATIONS, type Operation } from '@cairn/proto/vocabulary';

/** A task runs one plugin operation, so its kinds are the wire's operation names. */
export const TASK_KINDS = OPERATIONS;
export type TaskKind = Operation;

export const TASK_STATES = ['queued', 'dispatched', 'running', 'succeeded', 'failed', 'cancelled', 'lost'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const TERMINAL_STATES: readonly TaskState[] = ['succeeded', 'failed', 'cancelled', 'lost'];
/** States in which an agent holds the task (and a lease). */
export const HELD_STATES: readonly TaskState[] = ['dispatched', 'running'];

const transitions: Record<TaskState, readonly TaskState[]> = {
  queued: ['dispatched', 'cancelled', 'failed'],
  dispatched: ['running', 'queued', 'succeeded', 'failed', 'cancelled', 'lost'],
  running: ['succeeded', 'failed', 'cancelled', 'lost'],
  succeeded: [],
  failed: [],
  cancelled: [],
  lost: [],
};

/** How a task ended: its final state, the failure (if any) and the output (a success's). */
export interface TaskEnd {
  state: TaskState;
  error: { code: string; message: string } | null;
  output: string | null;
  /**
   * A sync that found no repository through a connection that never reached one
   * (`noRepositoryYet`): it succeeded with an empty listing, and this is what the plugin said.
   */
  noRepository?: string;
}

export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.includes(state);
}

export function canTransition(from: TaskState, to: TaskState): boolean {
  return transitions[from].includes(to);
}

/** The states a task may be in for a transition into `to` to apply (for conditional updates). */
export function statesLeadingTo(to: TaskState): TaskState[] {
  return TASK_STATES.filter((s) => canTransition(s, to));
}

/**
 * What an agent's result does to a task: a failure with code CANCELLED after a cancel request
 * is a cancellation; everything else is success or failure as reported.
 */
export function outcomeState(result: { ok: boolean; errorCode?: string }, cancelRequested: boolean): TaskState {
  if (result.ok) return 'succeeded';
  if (result.errorCode === FailureCodes.CANCELLED && cancelRequested) return 'cancelled';
  return 'failed';
}

/** Seconds left, from the rate so far; null when it cannot be told yet. */
export function etaSeconds(startedAt: number | null, now: number, percent: number): number | null {
  if (startedAt === null || percent <= 0 || percent >= 100) return percent >= 100 ? 0 : null;
  const elapsed = (now - startedAt) / 1000;
  return Math.max(0, Math.round((elapsed * (100 - percent)) / percent));
}
