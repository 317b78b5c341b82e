/**
 * Waiting for a task to end (`backup create --wait`, `task watch`): polls the task, prints its
 * state changes on stderr (one line each; on a terminal a single line rewritten with the
 * percentage), and answers the exit code its outcome means.
 */
import { CliError, EXIT, type ExitCode } from './exit.js';
import type { Client } from './client.js';
import type { Output } from './output.js';

export const ENDED_STATES = ['succeeded', 'failed', 'cancelled', 'lost'] as const;

export interface TaskView {
  id: string;
  kind: string;
  state: string;
  progress: { percent: number; message: string | null } | null;
  error: { code: string; message: string } | null;
  [key: string]: unknown;
}

const POLL_MS = 1000;

/** What to say when the wait is given up (Ctrl-C, timeout): the work goes on, and how to follow it. */
export function stillRunning(task: { id: string; state: string }, watchCommand: string): string {
  return `task ${task.id} is still ${task.state} on the server; the work goes on. Watch it with: ${watchCommand}`;
}

/** The exit code of an ended task and, unless it succeeded, the line that says why. */
export function outcome(task: TaskView): { code: ExitCode; message?: string } {
  if (task.state === 'succeeded') return { code: EXIT.ok };
  const why = task.error ? `${task.error.code}: ${task.error.message}` : 'no reason given';
  const verb =
    task.state === 'lost'
      ? 'was lost (its agent stopped reporting)'
      : task.state === 'cancelled'
        ? 'was cancelled'
        : 'failed';
  return { code: EXIT.failed, message: `task ${task.id} ${verb}: ${why}` };
}

export interface WaitOptions {
  /** Give up after this many seconds (exit 5); none: wait for ever. */
  timeoutS?: number | undefined;
  /** The exact command that watches the task again, for the messages. */
  watchCommand: string;
  /** Called with the message to print if the wait is interrupted now (Ctrl-C); null when done. */
  onInterruptMessage: (message: string | null) => void;
  pollMs?: number;
}

export async function waitForTask(client: Client, out: Output, id: string, opts: WaitOptions): Promise<TaskView> {
  const tty = Boolean(out.streams.stderr.isTTY);
  const deadline = opts.timeoutS !== undefined ? Date.now() + opts.timeoutS * 1000 : Infinity;
  const c = out.errColors;
  let lastState = '';
  let lineShown = false;
  const clearLine = () => {
    if (lineShown) out.streams.stderr.write('\r\x1b[K');
    lineShown = false;
  };
  const path = `/v1/tasks/${encodeURIComponent(id)}`;
  try {
    for (;;) {
      const task = await client.get<TaskView>(path);
      opts.onInterruptMessage(stillRunning(task, opts.watchCommand));
      const ended = (ENDED_STATES as readonly string[]).includes(task.state);
      if (tty) {
        const pct = task.progress ? ` ${Math.round(task.progress.percent)}%` : '';
        const msg = task.progress?.message ? ` ${task.progress.message}` : '';
        clearLine();
        if (ended) out.note(`${task.id}: ${out.paint(task.state)}`);
        else {
          const width = (out.streams.stderr.columns ?? 80) - 1;
          out.streams.stderr.write(`${task.id} ${c.cyan(task.state)}${pct}${msg}`.slice(0, Math.max(width, 20)));
          lineShown = true;
        }
      } else if (task.state !== lastState) out.note(`${task.id}: ${task.state}`);
      lastState = task.state;
      if (ended) return task;
      const left = deadline - Date.now();
      if (left <= 0) {
        clearLine();
        throw new CliError(
          EXIT.timeout,
          `timed out after ${opts.timeoutS} s: ${stillRunning(task, opts.watchCommand)}`,
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(opts.pollMs ?? POLL_MS, left)));
    }
  } finally {
    clearLine();
    opts.onInterruptMessage(null);
  }
}
