/** `cairn event list` (the log, paged) and `cairn event follow` (the live stream, resumed on reconnect). */
import type { Command } from '@commander-js/extra-typings';
import { stringify } from 'yaml';
import { paging, pagingOptions, type App } from '../app.js';
import { ApiError, type Client, type Problem } from '../client.js';
import { cell, type Output } from '../output.js';
import { EVENT } from '../columns.js';
import { CliError, EXIT } from '../exit.js';
import { SseParser } from '../sse.js';

/** Longest quiet on a stream before it counts as dead (the server sends a keep-alive every 15 s). */
const STALL_MS = 45_000;
const MAX_BACKOFF_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One event as a line: a table row without header, a JSON line, or a YAML document. */
function printEvent(out: Output, event: Record<string, unknown>): void {
  if (out.format === 'json') out.streams.stdout.write(`${JSON.stringify(event)}\n`);
  else if (out.format === 'yaml') out.streams.stdout.write(`---\n${stringify(event)}`);
  else {
    const shown = EVENT.filter((c) => out.format === 'wide' || !c.wide);
    out.streams.stdout.write(`${shown.map((c) => cell(c.get(event))).join('  ')}\n`);
  }
}

/**
 * Follows `/v1/events/stream` for ever: each event printed once, in order. A connection that ends
 * or goes quiet is opened again with `Last-Event-ID` set to the last position the server named,
 * so nothing is missed or repeated. Only the first connection failing is an error.
 */
export async function follow(client: Client, out: Output, after: string | undefined): Promise<never> {
  const parser = new SseParser((m) => {
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(m.data) as Record<string, unknown>;
    } catch {
      out.note(`warning: event ${m.id} is not JSON; skipped`);
      return;
    }
    printEvent(out, event);
  });
  let connected = false;
  let backoff = 1000;
  for (;;) {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (parser.lastEventId !== '') headers['last-event-id'] = parser.lastEventId;
    const query = parser.lastEventId === '' && after !== undefined ? { after } : {};
    const abort = new AbortController();
    let res: Response;
    try {
      res = await client.open('/v1/events/stream', { query, headers, signal: abort.signal });
    } catch (err) {
      if (!connected) throw err;
      out.note(`${(err as Error).message}; trying again in ${backoff / 1000} s`);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      continue;
    }
    if (!res.ok) {
      const text = await res.text();
      let problem: Problem = { status: res.status, detail: text.slice(0, 200) };
      try {
        problem = { ...(JSON.parse(text) as Problem), status: res.status };
      } catch {
        // not a problem document: keep the text
      }
      const retryable = res.status === 429 || res.status >= 500;
      if (!retryable || !connected) throw new ApiError(problem, 'GET', '/v1/events/stream');
      const wait = Math.max(Number(res.headers.get('retry-after')) * 1000 || 0, backoff);
      out.note(`the server refused the stream (${problem.code ?? res.status}); trying again in ${wait / 1000} s`);
      await sleep(wait);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      continue;
    }
    if (!res.body) throw new CliError(EXIT.api, 'the event stream answered without a body');
    if (connected) out.note('reconnected to the event stream');
    connected = true;
    backoff = 1000;
    let stall = setTimeout(() => abort.abort(), STALL_MS);
    try {
      const decoder = new TextDecoder();
      for await (const chunk of res.body) {
        clearTimeout(stall);
        stall = setTimeout(() => abort.abort(), STALL_MS);
        parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
      }
    } catch {
      // the connection broke or went quiet: reconnect below
    } finally {
      clearTimeout(stall);
    }
    parser.reset();
    const wait = parser.retryMs ?? backoff;
    out.note(`the event stream ended; reconnecting in ${wait / 1000} s`);
    await sleep(wait);
  }
}

export function eventCommands(program: Command, app: App): void {
  const event = program.command('event').description('the event log and its live stream');
  pagingOptions(
    event
      .command('list')
      .description('list events, oldest first')
      .option('--after <id>', 'start after this event id (0: from the start); instead of --cursor'),
  ).action(async (opts) => {
    app.out().list(await app.client().list('/v1/events', { after: opts.after }, paging(opts)), EVENT);
  });
  event
    .command('follow')
    .description(
      'print events as they happen, until Ctrl-C (-o json: one JSON object a line; -o yaml: a document each); reconnects and resumes where it was',
    )
    .option('--after <id>', 'first replay the log after this event id (0: the whole log)')
    .action(async (opts) => {
      await follow(app.client(), app.out(), opts.after);
    });
}
