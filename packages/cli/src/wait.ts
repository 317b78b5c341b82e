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
export function stillRunning(what: { label: string; state: string }, watchCommand: string): string {
  return `${what.label} is still ${what.state} on the server; the work goes on. Watch it with: ${watchCommand}`;
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
  /** The exact command that watches the work again, for the messages. */
  watchCommand: string;
  /** Called with the message to print if the wait is interrupted now (Ctrl-C); null when done. */
  onInterruptMessage: (message: string | null) => void;
  pollMs?: number;
}

/** What a wait shows of the thing it polls: a task, a job's run. */
export interface Seen {
  /** The id on the progress line (`tsk_…`). */
  id: string;
  /** How messages name it (`task tsk_…`). */
  label: string;
  state: string;
  ended: boolean;
  percent?: number | undefined;
  message?: string | null | undefined;
}

/**
 * Polls `read` until what it answers has ended, printing its state on stderr: on a terminal one
 * line rewritten with the percentage and message, else one plain line per state change. Gives
 * up after the timeout (exit 5); Ctrl-C meanwhile prints what `onInterruptMessage` got.
 */
export async function watch<T>(out: Output, read: () => Promise<T>, see: (v: T) => Seen, opts: WaitOptions) {
  const tty = Boolean(out.streams.stderr.isTTY);
  const deadline = opts.timeoutS !== undefined ? Date.now() + opts.timeoutS * 1000 : Infinity;
  const c = out.errColors;
  let lastState = '';
  let lineShown = false;
  const clearLine = () => {
    if (lineShown) out.streams.stderr.write('\r\x1b[K');
    lineShown = false;
  };
  try {
    for (;;) {
      const value = await read();
      const s = see(value);
      opts.onInterruptMessage(stillRunning(s, opts.watchCommand));
      if (tty) {
        const pct = typeof s.percent === 'number' ? ` ${Math.round(s.percent)}%` : '';
        clearLine();
        if (s.ended) out.note(`${s.id}: ${out.paint(s.state)}`);
        else {
          // A terminal that reports no size (0 columns, as a bare pseudo-terminal) counts as 80 wide;
          // only the message is cut, so the line never wraps and the colour codes stay whole.
          const width = (out.streams.stderr.columns || 80) - 1;
          const room = width - `${s.id} ${s.state}${pct}`.length;
          const msg = s.message && room > 1 ? ` ${s.message}`.slice(0, room) : '';
          out.streams.stderr.write(`${s.id} ${c.cyan(s.state)}${pct}${msg}`);
          lineShown = true;
        }
      } else if (s.state !== lastState) out.note(`${s.id}: ${s.state}`);
      lastState = s.state;
      if (s.ended) return value;
      const left = deadline - Date.now();
      if (left <= 0) {
        clearLine();
        throw new CliError(EXIT.timeout, `timed out after ${opts.timeoutS} s: ${stillRunning(s, opts.watchCommand)}`);
      }
      await new Promise((r) => setTimeout(r, Math.min(opts.pollMs ?? POLL_MS, left)));
    }
  } finally {
    clearLine();
    opts.onInterruptMessage(null);
  }
}

export function waitForTask(client: Client, out: Output, id: string, opts: WaitOptions): Promise<TaskView> {
  const path = `/v1/tasks/${encodeURIComponent(id)}`;
  return watch(
    out,
    () => client.get<TaskView>(path),
    (task) => ({
      id: task.id,
      label: `task ${task.id}`,
      state: task.state,
      ended: (ENDED_STATES as readonly string[]).includes(task.state),
      percent: task.progress?.percent,
      message: task.progress?.message,
    }),
    opts,
  );
}
