import http from 'node:http';
import { waitFor } from './wait.js';

export interface SseEvent {
  id: number;
  event: string;
  data: { tenantId: string; taskId: string | null; type: string; message: string };
}

/**
 * A client of `GET /v1/events/stream` that keeps every message it is given. `slow` streams never
 * read their socket once the headers arrived: the server must stop writing to them, not buffer.
 */
export class SseClient {
  readonly events: SseEvent[] = [];
  /** How many events arrived, and the id of the last one (kept even when `light` skips parsing). */
  count = 0;
  lastId = 0;
  /** Set when an id arrived that was not above the one before it. */
  outOfOrder = false;
  /** Comment lines (`: ...`) the server sent, in order. */
  readonly comments: string[] = [];
  /** The position the server said this stream starts after (its first message: an id, no data). */
  start: number | undefined;
  status = 0;
  ended = false;
  private req: http.ClientRequest | undefined;
  private res: http.IncomingMessage | undefined;

  private constructor(
    readonly url: string,
    readonly token: string,
  ) {}

  /** Opens a stream (query is appended as-is, e.g. `?after=0`) and resolves once headers are in. */
  static async open(
    url: string,
    token: string,
    opts: { query?: string; lastEventId?: string; slow?: boolean; light?: boolean } = {},
  ): Promise<SseClient> {
    const c = new SseClient(url, token);
    await new Promise<void>((resolve, reject) => {
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (opts.lastEventId !== undefined) headers['last-event-id'] = opts.lastEventId;
      c.req = http.get(`${url}/v1/events/stream${opts.query ?? ''}`, { headers, agent: false }, (res) => {
        c.res = res;
        c.status = res.statusCode ?? 0;
        res.on('end', () => (c.ended = true));
        res.on('close', () => (c.ended = true));
        res.on('error', () => (c.ended = true));
        if (opts.slow) res.pause();
        else c.read(res, opts.light ?? false);
        resolve();
      });
      c.req.on('error', (err) => (c.res ? (c.ended = true) : reject(err)));
    });
    return c;
  }

  private read(res: http.IncomingMessage, light: boolean) {
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields: Record<string, string> = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) {
            this.comments.push(line.slice(1).trim());
            continue;
          }
          const i = line.indexOf(':');
          fields[line.slice(0, i)] = line.slice(i + 1).trimStart();
        }
        if (fields['data'] === undefined) {
          if (fields['id'] !== undefined && this.start === undefined) this.start = Number(fields['id']);
          continue;
        }
        const id = Number(fields['id']);
        if (!(id > this.lastId)) this.outOfOrder = true;
        this.lastId = id;
        this.count++;
        if (!light)
          this.events.push({
            id,
            event: fields['event'] ?? '',
            data: JSON.parse(fields['data']) as SseEvent['data'],
          });
      }
    });
  }

  /** Resolves once the server said where the stream starts (its first comment). */
  async positioned(timeoutMs = 30_000): Promise<void> {
    await waitFor(() => this.start !== undefined, 'the stream to say where it starts', timeoutMs);
  }

  async waitForCount(n: number, timeoutMs = 30_000): Promise<SseEvent[]> {
    await waitFor(() => this.count >= n, `${n} events on the stream (have ${this.count})`, timeoutMs);
    return this.events;
  }

  close() {
    this.req?.destroy();
    this.res?.destroy();
  }
}
