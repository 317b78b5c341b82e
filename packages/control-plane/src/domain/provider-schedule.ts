/**
 * Pure rules of provider-side schedules: some backup systems run an SLA's schedule on their own
 * clock. The control plane asks the plugin (a `configure-schedule` task) when an instance joins an
 * SLA offering whose plugin declares `provider-schedules`, and records on the instance who runs
 * the clock and what it is waiting for.
 */

/** Who fires the instance's SLA backups. null: no provider was asked; Cairn fires as for any instance. */
export const SCHEDULE_OWNERS = ['cairn', 'provider'] as const;
export type ScheduleOwner = (typeof SCHEDULE_OWNERS)[number];

/**
 * `configuring`: the assignment waits for the provider (no SLA fire meanwhile; a failure rolls the
 * assignment back). `reconfiguring`: an SLA change waits for it (a failure leaves the owner as it
 * was). `deconfiguring`: the provider is asked to drop the schedule. `configured`: settled.
 * `failed`: the last request failed (see its task and the instance's events).
 */
export const SCHEDULE_STATES = ['configuring', 'reconfiguring', 'deconfiguring', 'configured', 'failed'] as const;
export type ScheduleState = (typeof SCHEDULE_STATES)[number];

export interface InstanceSchedule {
  owner: ScheduleOwner | null;
  state: ScheduleState | null;
  taskId: string | null;
}

/** The capability a plugin declares when its backup system can run schedules itself. */
export const PROVIDER_SCHEDULES = 'provider-schedules';

/**
 * Does Cairn's scheduler fire this instance's SLA backups? Not when the provider runs them, and
 * not while the assignment waits for the provider's answer (it may yet take the clock over).
 */
export function cairnFiresSla(s: InstanceSchedule): boolean {
  return s.owner !== 'provider' && s.state !== 'configuring';
}

/** A configure is pending (or may have reached the provider): a removal must undo it too. */
export function providerMayRun(s: InstanceSchedule): boolean {
  return s.owner === 'provider' || s.state === 'configuring' || s.state === 'reconfiguring';
}

/**
 * Did the plugin take the clock over? Only an output of `{"managed": true}` says so; anything else
 * (false, missing, malformed) leaves the clock to Cairn, which at worst makes a backup too many.
 *
 * @example managedByProvider('{"managed":true}') // → true
 */
export function managedByProvider(output: string | null): boolean {
  if (!output) return false;
  try {
    return (JSON.parse(output) as { managed?: unknown } | null)?.managed === true;
  } catch {
    return false;
  }
}

/** What a configure-schedule or deconfigure-schedule task's end does to its instance. */
export type ScheduleEnd =
  /** A later request superseded this task (or the instance is gone): the instance stays as it is. */
  | { action: 'none' }
  | { action: 'configured'; owner: ScheduleOwner }
  /** The assignment could not be configured: the instance leaves the offering again. */
  | { action: 'roll-back' }
  /** An SLA change, or a removal, did not reach the provider: the owner stays as it was. */
  | { action: 'failed' }
  /** The provider dropped the schedule. */
  | { action: 'cleared' };

/**
 * Decides what the end of `task` does, given the instance's current schedule. Only the task the
 * instance names as its current one moves it: an older request's late answer changes nothing.
 *
 * @example scheduleEnd({ owner: null, state: 'configuring', taskId: 't1' }, { id: 't1', kind: 'configure-schedule', state: 'failed', output: null })
 * // → { action: 'roll-back' }
 */
export function scheduleEnd(
  current: InstanceSchedule | undefined,
  task: { id: string; kind: string; state: string; output: string | null },
): ScheduleEnd {
  if (!current || current.taskId !== task.id) return { action: 'none' };
  const ok = task.state === 'succeeded';
  if (task.kind === 'deconfigure-schedule') return ok ? { action: 'cleared' } : { action: 'failed' };
  if (ok) return { action: 'configured', owner: managedByProvider(task.output) ? 'provider' : 'cairn' };
  return current.state === 'configuring' ? { action: 'roll-back' } : { action: 'failed' };
}
