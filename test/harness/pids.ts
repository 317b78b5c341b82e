import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/**
 * The kernel hands out the PID after the one written here next (root only, Linux): how a test
 * gives a dead process's PID to a new one, as a busy host does within minutes on its own.
 */
const NS_LAST_PID = '/proc/sys/kernel/ns_last_pid';

/** Whether this machine lets a test choose the next PID ({@link spawnWithPid}). */
export const canChoosePid: boolean = (() => {
  try {
    fs.accessSync(NS_LAST_PID, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
})();

/**
 * The PID asked for belongs to another process (or thread) that goes on running: it cannot be
 * had until that one ends. On a host with a small PID space (`pid_max` 32768) and many processes
 * starting, a dead process's PID is often taken again within seconds, as it is here by the other
 * tests running at the same time.
 */
export class PidTaken extends Error {
  override readonly name = 'PidTaken';
}

/**
 * Starts `sleep 300` with exactly `pid` (a PID no process has now), retrying while other
 * processes take it first. The caller kills it. Throws {@link PidTaken} when another process
 * holds `pid` for 2 s on end; throws when it could not be had otherwise.
 */
export async function spawnWithPid(pid: number): Promise<ChildProcess> {
  let heldFor = 0;
  for (let i = 0; i < 500; i++) {
    // /proc/<pid> names every live process and thread, listed or not.
    if (fs.existsSync(`/proc/${pid}`)) {
      if (++heldFor > 100) throw new PidTaken(`pid ${pid} is held by another process`);
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    heldFor = 0;
    fs.writeFileSync(NS_LAST_PID, String(pid - 1));
    const child = spawn('sleep', ['300'], { stdio: 'ignore' });
    if (child.pid === pid) return child;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
  throw new Error(`no process could be started with pid ${pid}`);
}
