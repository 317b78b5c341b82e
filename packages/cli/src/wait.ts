/**
 * Waiting for a task to end (`backup create --wait`, `task watch`): follows the event stream
 * filtered to the task (its state changes and live progress; polling the task every second when
 * the server refuses the stream), prints its state changes on stderr (one line each; on a
 * terminal a single line rewritten with the percentage), and answers the exit code its outcome
 * means.
 */
import { CliError, EXIT, type ExitCode } from './exit.js';
import type { Client, Query } from './client.js';
import type { Output } from './output.js';
import { SseParser } from './sse.js';

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
/** While following the stream, the thing is read again at least this often anyway. */
const REREAD_MS = 30_000;
/** A stream quiet this long is dead (the server sends a keep-alive every 15 s): back to polling. */
const STREAM_STALL_MS = 45_000;

/** What the filtered event stream said since the last look. */
type StreamNews = 'event' | 'progress' | 'quiet' | 'closed';

/**
 * The event stream filtered to one task or job (`?taskId=` / `?jobId=`): wakes a wait on every
 * state change and progress message, and keeps the latest progress. Opening answers undefined
 * when the stream cannot be had (refused, e.g. 429 too_many_streams, or unreachable): the wait
 * then polls.
 */
class StreamFollower {
  progress: { taskId: string; percent: number; message: string | null } | undefined;
  private news: StreamNews | undefined;
  private wake: (() => void) | undefined;
  private closed = false;

  private constructor(private readonly abort: AbortController) {}

  static async open(client: Client, query: Query): Promise<StreamFollower | undefined> {
    const abort = new AbortController();
    let res: Response;
    try {
      res = await client.open('/v1/events/stream', {
        query,
        headers: { accept: 'text/event-stream' },
        signal: abort.signal,
      });
    } catch {
      return undefined;
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      return undefined;
    }
    const f = new StreamFollower(abort);
    void f.read(res.body);
    return f;
  }

  private note(news: StreamNews): void {
    // A state change outranks progress: the thing is read again.
    if (this.news !== 'event' && this.news !== 'closed') this.news = news;
    this.wake?.();
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const parser = new SseParser((m) => {
      if (m.event !== 'task.progress') return this.note('event');
      try {
        const p = JSON.parse(m.data) as { taskId: string; percent: number; message: string | null };
        this.progress = { taskId: p.taskId, percent: p.percent, message: p.message };
      } catch {
        return;
      }
      this.note('progress');
    });
    let stall = setTimeout(() => this.abort.abort(), STREAM_STALL_MS);
    try {
      const decoder = new TextDecoder();
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        clearTimeout(stall);
        stall = setTimeout(() => this.abort.abort(), STREAM_STALL_MS);
        parser.feed(decoder.decode(chunk, { stream: true }));
      }
    } catch {
      // broken or quiet: the wait goes back to polling
    } finally {
      clearTimeout(stall);
      this.closed = true;
      this.note('closed');
    }
  }

  /** What happened since the last call, waiting up to `ms` for something. */
  async next(ms: number): Promise<StreamNews> {
    if (this.news === undefined && !this.closed) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, ms);
      });
      clearTimeout(timer);
      this.wake = undefined;
    }
    const news = this.news ?? (this.closed ? 'closed' : 'quiet');
    this.news = undefined;
    return news;
  }

  close(): void {
    this.abort.abort();
  }
}

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

/** The filtered stream a wait follows (`{taskId}` or `{jobId}`). */
export type Follow = { taskId: string } | { jobId: string };

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
export async function watch<T>(
  out: Output,
  read: () => Promise<T>,
  see: (v: T) => Seen,
  opts: WaitOptions & { client?: Client; follow?: Follow; progressOf?: (v: T) => string | undefined },
) {
  const tty = Boolean(out.streams.stderr.isTTY);
  const deadline = opts.timeoutS !== undefined ? Date.now() + opts.timeoutS * 1000 : Infinity;
  const c = out.errColors;
  let lastState = '';
  let lineShown = false;
  const clearLine = () => {
    if (lineShown) out.streams.stderr.write('\r\x1b[K');
    lineShown = false;
  };
  // Opened before the first read: nothing that happens after that read is missed.
  const stream = opts.client && opts.follow ? await StreamFollower.open(opts.client, { ...opts.follow }) : undefined;
  let following = stream !== undefined;
  let value = await read();
  let lastRead = Date.now();
  try {
    for (;;) {
      const s = see(value);
      // The stream's progress is newer than the last read, for the task that was read.
      const p = stream?.progress;
      if (p && !s.ended && opts.progressOf?.(value) === p.taskId) {
        s.percent = p.percent;
        s.message = p.message;
      }
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
      if (following) {
        const news = await stream!.next(Math.min(REREAD_MS - (Date.now() - lastRead), left));
        if (news === 'closed') following = false;
        // Progress alone is drawn as it came; anything else (or a long quiet) reads the thing again.
        if (news === 'progress' && s.state === 'running' && opts.progressOf !== undefined) continue;
      } else await new Promise((r) => setTimeout(r, Math.min(opts.pollMs ?? POLL_MS, left)));
      value = await read();
      lastRead = Date.now();
      // What was just read is at least as new as the progress the stream sent before.
      if (stream) stream.progress = undefined;
    }
  } finally {
    stream?.close();
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
    { ...opts, client, follow: { taskId: id }, progressOf: (task) => task.id },
  );
}
