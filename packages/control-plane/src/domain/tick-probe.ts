/** What a scheduler learnt from its store's answer to a tick's probe. */
export interface ProbeSeen {
  /** When it asked, in ms of elapsed (monotonic) time. */
  askedAtMs: number;
  /** The store's count of this process's commits to the tables the probe reads, taken just before it asked. */
  version: number;
  /** Whether anything was due (or had no next fire time yet): that tick fired and moved fire times. */
  anyDue: boolean;
  /** The earliest next fire time of any schedule, clock ms; Infinity when none will fire. */
  earliest: number;
  /** The event clock: the change mark the RPO watch compares. */
  changes: number;
}

/**
 * Whether a tick at clock time `now` (elapsed time `elapsedMs`, the store's count of this
 * process's commits to the probed tables `version`) must ask its store, or may go on what it
 * learnt last (`seen`). It asks the first time, after a tick that fired, when this process
 * committed a change since, when the earliest fire time it knows of has come, and at least every
 * `refreshMs` of elapsed time: the longest a change committed by another replica (a schedule set
 * there, a restore point another replica's agent reported) waits to be seen here. A change
 * committed by this process is seen at the next tick, and a fire time already known is never
 * waited for. Pure.
 *
 * @example probeNeeded({ askedAtMs: 0, version: 3, anyDue: false, earliest: 60_000, changes: 9 }, 1_000, 1_000, 3, 5_000) // → false
 */
export function probeNeeded(
  seen: ProbeSeen | undefined,
  now: number,
  elapsedMs: number,
  version: number,
  refreshMs: number,
): boolean {
  if (!seen) return true;
  return seen.anyDue || version !== seen.version || now >= seen.earliest || elapsedMs - seen.askedAtMs >= refreshMs;
}
