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
 * Starts `sleep 300` with exactly `pid` (a PID no process has now), retrying while other
 * processes take it first. The caller kills it. Throws when `pid` could not be had.
 */
export async function spawnWithPid(pid: number): Promise<ChildProcess> {
  for (let i = 0; i < 500; i++) {
    fs.writeFileSync(NS_LAST_PID, String(pid - 1));
    const child = spawn('sleep', ['300'], { stdio: 'ignore' });
    if (child.pid === pid) return child;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
  throw new Error(`no process could be started with pid ${pid}`);
}
