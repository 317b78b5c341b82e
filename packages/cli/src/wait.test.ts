import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Client } from './client.js';
import { CliError, EXIT } from './exit.js';
import { Output } from './output.js';
import { outcome, waitForTask, type TaskView } from './wait.js';

const task = (state: string, percent = 0, error: TaskView['error'] = null): TaskView => ({
  id: 'tsk_1',
  kind: 'backup',
  state,
  progress: { percent, message: percent ? `step ${percent}` : null },
  error,
});

/** A client whose task reads answer `states` in turn (the last one for ever). */
function client(states: TaskView[]): Client {
  let i = 0;
  return { get: async () => states[Math.min(i++, states.length - 1)] } as unknown as Client;
}

function output(tty: boolean, columns?: number) {
  const text = { err: '' };
  const s = new PassThrough() as unknown as NodeJS.WriteStream;
  s.isTTY = tty;
  if (columns !== undefined) s.columns = columns;
  s.write = ((chunk: string) => ((text.err += chunk), true)) as never;
  const out = new PassThrough() as unknown as NodeJS.WriteStream;
  return { out: new Output('table', { stdout: out, stderr: s }, { NO_COLOR: '1' }), text };
}

describe('waitForTask', () => {
  const opts = (messages: (string | null)[] = []) => ({
    watchCommand: 'cairn task watch tsk_1',
    onInterruptMessage: (m: string | null) => messages.push(m),
    pollMs: 1,
  });

  it('prints one line per state change when stderr is no terminal', async () => {
    const o = output(false);
    const states = [task('queued'), task('queued'), task('running', 10), task('running', 60), task('succeeded', 100)];
    const messages: (string | null)[] = [];
    const end = await waitForTask(client(states), o.out, 'tsk_1', opts(messages));
    expect(end.state).toBe('succeeded');
    expect(o.text.err).toBe('tsk_1: queued\ntsk_1: running\ntsk_1: succeeded\n');
    // While waiting, Ctrl-C would say the task goes on; once done, nothing.
    expect(messages[0]).toBe(
      'task tsk_1 is still queued on the server; the work goes on. Watch it with: cairn task watch tsk_1',
    );
    expect(messages.at(-1)).toBeNull();
  });

  it('rewrites one line with the percentage on a terminal, then leaves the outcome', async () => {
    const o = output(true);
    await waitForTask(
      client([task('running', 10), task('running', 55), task('succeeded', 100)]),
      o.out,
      'tsk_1',
      opts(),
    );
    expect(o.text.err).toBe(
      'tsk_1 running 10% step 10' + '\r\x1b[K' + 'tsk_1 running 55% step 55' + '\r\x1b[K' + 'tsk_1: succeeded\n',
    );
  });

  it('counts a terminal reporting no size as 80 wide, and cuts only the message to fit', async () => {
    const zero = output(true, 0);
    await waitForTask(client([task('running', 40), task('succeeded', 100)]), zero.out, 'tsk_1', opts());
    expect(zero.text.err).toBe('tsk_1 running 40% step 40' + '\r\x1b[K' + 'tsk_1: succeeded\n');
    const narrow = output(true, 23);
    await waitForTask(client([task('running', 40), task('succeeded', 100)]), narrow.out, 'tsk_1', opts());
    expect(narrow.text.err).toBe('tsk_1 running 40% step' + '\r\x1b[K' + 'tsk_1: succeeded\n');
  });

  it('gives up after the timeout with exit 5, saying how to watch the task again', async () => {
    const o = output(false);
    const err = await waitForTask(client([task('queued')]), o.out, 'tsk_1', { ...opts(), timeoutS: 0.05 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).code).toBe(EXIT.timeout);
    expect((err as CliError).message).toContain('Watch it with: cairn task watch tsk_1');
  });
});

describe('waitForTask on the event stream', () => {
  /** SSE text sent in `parts`, one every few ms, then the connection stays open. */
  function sse(parts: string[]): Response {
    const enc = new TextEncoder();
    let i = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        await new Promise((r) => setTimeout(r, 5));
        if (i < parts.length) ctrl.enqueue(enc.encode(parts[i++]));
        else await new Promise(() => undefined);
      },
    });
    return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
  }

  /** Task reads answer `states` in turn; opening the stream answers `stream` and records its query. */
  function streaming(states: TaskView[], stream: () => Response) {
    const opened: unknown[] = [];
    let reads = 0;
    const c = {
      get: async () => states[Math.min(reads++, states.length - 1)],
      open: async (_path: string, init: { query?: unknown }) => {
        opened.push(init.query);
        return stream();
      },
    } as unknown as Client;
    return { c, opened, reads: () => reads };
  }

  const progress = (percent: number) =>
    `event: task.progress\ndata: ${JSON.stringify({ taskId: 'tsk_1', percent, message: `live ${percent}` })}\n\n`;

  it('follows the stream filtered to the task: draws its progress, and reads the task again on a state change', async () => {
    const o = output(true);
    const s = streaming([task('running', 10), task('succeeded', 100)], () =>
      sse(['id: 7\n\n', progress(42), progress(77), 'event: task.succeeded\ndata: {}\nid: 8\n\n']),
    );
    // Polling would wait a minute between reads: the stream ends the wait.
    const end = await waitForTask(s.c, o.out, 'tsk_1', {
      watchCommand: 'w',
      onInterruptMessage: () => undefined,
      pollMs: 60_000,
    });
    expect(end.state).toBe('succeeded');
    expect(s.opened).toEqual([{ taskId: 'tsk_1' }]);
    // Two reads only: the first, and after the state change; the progress came from the stream.
    expect(s.reads()).toBe(2);
    expect(o.text.err).toBe(
      'tsk_1 running 10% step 10' +
        '\r\x1b[K' +
        'tsk_1 running 42% live 42' +
        '\r\x1b[K' +
        'tsk_1 running 77% live 77' +
        '\r\x1b[K' +
        'tsk_1: succeeded\n',
    );
  });

  it('polls when the server refuses the stream (429 too_many_streams)', async () => {
    const o = output(false);
    const refused = () =>
      new Response(JSON.stringify({ code: 'too_many_streams' }), { status: 429, headers: { 'retry-after': '5' } });
    const s = streaming([task('queued'), task('running', 50), task('succeeded', 100)], refused);
    const end = await waitForTask(s.c, o.out, 'tsk_1', {
      watchCommand: 'w',
      onInterruptMessage: () => undefined,
      pollMs: 1,
    });
    expect(end.state).toBe('succeeded');
    expect(s.opened).toHaveLength(1);
    expect(o.text.err).toBe('tsk_1: queued\ntsk_1: running\ntsk_1: succeeded\n');
  });
});

describe('outcome', () => {
  it('maps the end state to the exit code, with the reason', () => {
    expect(outcome(task('succeeded'))).toEqual({ code: 0 });
    expect(outcome(task('failed', 0, { code: 'DISK_FULL', message: 'full' }))).toEqual({
      code: 1,
      message: 'task tsk_1 failed: DISK_FULL: full',
    });
    expect(outcome(task('cancelled', 0, { code: 'CANCELLED', message: 'by user' })).message).toBe(
      'task tsk_1 was cancelled: CANCELLED: by user',
    );
    expect(outcome(task('lost')).message).toBe('task tsk_1 was lost (its agent stopped reporting): no reason given');
  });
});
