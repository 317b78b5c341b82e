/**
 * Where the CPU went during a timed window, from Linux /proc counters (null elsewhere). Two
 * uses: to say which process a throughput limit comes from, and to notice when something
 * outside the benchmark (a test suite on a shared machine) was eating the same cores, which
 * makes the figures of that run worthless.
 */
import fs from 'node:fs';

/** /proc times are in clock ticks; USER_HZ is 100 on every Linux Node supports. */
const HZ = 100;

export interface CpuUse {
  /** CPU seconds per named group of processes; system time is mostly file syncs and sockets. */
  byGroup: Record<string, { userSec: number; systemSec: number }>;
  /** User time of processes outside the groups: unrelated load on the machine. */
  foreignSec: number;
  /** System time not charged to the groups: kernel threads (disk flushing) and foreign syscalls. */
  kernelSec: number;
  /** foreignSec as a share of all the CPU the machine had in the window. */
  foreignPct: number;
  machineBusyPct: number;
}

/** The fields of /proc/<pid>/stat after the command name (which may itself hold spaces), or null. */
function statFields(pid: number | 'self'): string[] | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** [user, system] ticks of one process, or null once it is gone. */
function procTicks(pid: number): [number, number] | null {
  const f = statFields(pid);
  return f ? [Number(f[11]), Number(f[12])] : null;
}

/**
 * CPU seconds (user + system) of the children `pid` has waited for (a Node process reaps its
 * children as they exit): what the restic processes an agent ran cost. `'self'` for this process.
 * Null off Linux.
 */
export function childrenCpuSec(pid: number | 'self'): number | null {
  const f = statFields(pid);
  return f ? (Number(f[13]) + Number(f[14])) / HZ : null;
}

/** Machine-wide [user, system, idle, total] ticks, or null off Linux. */
function machineTicks(): [number, number, number, number] | null {
  try {
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const at = (i: number) => cpu[i] ?? 0;
    // user nice system idle iowait irq softirq steal
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    return [at(0) + at(1), at(2) + at(5) + at(6), at(3) + at(4), total];
  } catch {
    return null;
  }
}

/** Pids of running processes whose command name is one of `names` (e.g. the database server). */
export function pidsNamed(...names: string[]): number[] {
  try {
    return fs
      .readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          return names.includes(fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim());
        } catch {
          return false;
        }
      })
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * Starts a window now; the returned function closes it. Every pid must live through the
 * window (a process that exits mid-way would have its time counted as foreign).
 */
export function cpuWindow(groups: Record<string, (number | undefined)[]>): () => CpuUse | null {
  const sample = () => {
    const machine = machineTicks();
    const per: Record<string, [number, number]> = {};
    for (const [name, pids] of Object.entries(groups)) {
      const acc: [number, number] = [0, 0];
      for (const pid of pids) {
        const t = pid === undefined ? null : procTicks(pid);
        if (!t) return null;
        acc[0] += t[0];
        acc[1] += t[1];
      }
      per[name] = acc;
    }
    return machine ? { machine, per } : null;
  };
  const before = sample();
  return () => {
    const after = sample();
    if (!before || !after) return null;
    const d = (i: number) => after.machine[i]! - before.machine[i]!;
    const total = d(3);
    const byGroup: CpuUse['byGroup'] = {};
    let user = 0;
    let system = 0;
    for (const name of Object.keys(groups)) {
      const u = after.per[name]![0] - before.per[name]![0];
      const s = after.per[name]![1] - before.per[name]![1];
      byGroup[name] = { userSec: u / HZ, systemSec: s / HZ };
      user += u;
      system += s;
    }
    const foreignSec = Math.max(0, d(0) - user) / HZ;
    return {
      byGroup,
      foreignSec,
      kernelSec: Math.max(0, d(1) - system) / HZ,
      foreignPct: total > 0 ? (100 * foreignSec * HZ) / total : 0,
      machineBusyPct: total > 0 ? (100 * (total - d(2))) / total : 0,
    };
  };
}
