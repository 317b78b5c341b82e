import { readFileSync } from 'node:fs';
import path from 'node:path';

/** What restic writes in a lock file (`restic cat lock <id>`), as far as the stale rule needs it. */
export interface LockInfo {
  /** When the lock was taken (restic takes a fresh one every 5 minutes while it runs). */
  time: string;
  hostname: string;
  pid: number;
}

/** A lock as `restic cat lock` printed it, or undefined when the document is not one. */
export function parseLock(doc: unknown): LockInfo | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  const { time, hostname, pid } = doc as Record<string, unknown>;
  if (typeof time !== 'string' || Number.isNaN(Date.parse(time))) return undefined;
  if (typeof hostname !== 'string' || !Number.isSafeInteger(pid) || (pid as number) <= 0) return undefined;
  return { time, hostname, pid: pid as number };
}

/**
 * How much later than the lock a process must have started before it counts as a stranger that
 * reused the PID. Both times are read off the wall clock: a restic always starts before it takes
 * its lock, but a clock stepped forward while it runs makes it look started later by the step.
 * A live restic takes a fresh lock every 5 minutes, so only a step of more than this, less than
 * 5 minutes before another command finds the repository locked, could make a live lock look stale.
 */
export const PID_REUSE_SLACK_MS = 10_000;

/** restic's own age past which any lock is stale, however alive its PID (restic 0.14: 30 minutes). */
export const RESTIC_STALE_MS = 30 * 60_000;

/**
 * What a lock is, as far as this host can tell:
 * - `live`: its restic runs on this host (the process with its PID started before the lock);
 * - `foreign`: taken on another host, whose processes this one cannot see (live until it expires);
 * - `gone`: taken on this host by a process that no longer exists;
 * - `reused`: taken on this host, and its PID now belongs to a process started after the lock was
 *   taken, which cannot be the restic that took it (a busy host reuses a PID within minutes);
 * - `expired`: older than restic's 30 minutes (a live restic takes a fresh lock every 5).
 *
 * `startedMs` is when the process now holding the lock's PID started, undefined when none does.
 */
export type LockState = 'live' | 'foreign' | 'gone' | 'reused' | 'expired';

export function lockState(lock: LockInfo, host: string, startedMs: number | undefined, nowMs: number): LockState {
  const taken = Date.parse(lock.time);
  if (nowMs - taken > RESTIC_STALE_MS) return 'expired';
  if (lock.hostname !== host) return 'foreign';
  if (startedMs === undefined) return 'gone';
  return startedMs > taken + PID_REUSE_SLACK_MS ? 'reused' : 'live';
}

/** Whether a lock in that state is left by a restic that no longer runs, and may be removed. */
export const isStale = (state: LockState): boolean => state === 'gone' || state === 'reused' || state === 'expired';

/**
 * What to do about the locks found in a repository, judged by {@link lockState}:
 * - `remove`: in a local repository, remove these lock files (the stale ones);
 * - `unlock`: elsewhere, run `restic unlock`, which signals the PID of each lock of this host's;
 *   only when no such PID belongs to a stranger (a live restic ignores the signal);
 * - `wait`: leave the locks as they are (nothing stale, or `restic unlock` would signal a stranger).
 */
export type LockPlan = { do: 'remove'; ids: string[] } | { do: 'unlock' } | { do: 'wait'; why: string };

export function planLocks(found: readonly { id: string; state: LockState }[], local: boolean): LockPlan {
  const stale = found.filter((f) => isStale(f.state));
  if (stale.length === 0) return { do: 'wait', why: 'no lock is stale' };
  if (local) return { do: 'remove', ids: stale.map((f) => f.id) };
  if (found.some((f) => f.state === 'reused'))
    return { do: 'wait', why: 'a stale lock’s PID belongs to another process now, which restic unlock would signal' };
  return { do: 'unlock' };
}

/** A local repository's directory (`/srv/repo`, `local:/srv/repo`); undefined for any other backend. */
export function localDirectory(repository: string): string | undefined {
  const dir = repository.startsWith('local:') ? repository.slice('local:'.length) : repository;
  return path.isAbsolute(dir) ? dir : undefined;
}

/** USER_HZ, the unit of a process's start time in `/proc`: 100 on every Linux architecture Node runs on. */
const TICKS_PER_S = 100;

/**
 * When the process with this PID started, in ms since the epoch (Linux `/proc`: its start in clock
 * ticks after boot, field 22 of `stat`, plus the boot time); undefined when there is no such
 * process or no `/proc` to ask. The boot time is read each time, never kept: the kernel moves it
 * with every step of the wall clock, and a stale one would misdate every process by the step.
 */
export function processStartMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const bootS = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    return Number.isFinite(ticks) && Number.isFinite(bootS) ? bootS * 1000 + (ticks * 1000) / TICKS_PER_S : undefined;
  } catch {
    return undefined;
  }
}
