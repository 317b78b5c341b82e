import http from 'node:http';
import net from 'node:net';
import { waitFor } from './wait.js';

export interface SseEvent {
  id: number;
  event: string;
  data: { tenantId: string; taskId: string | null; instanceId: string | null; type: string; message: string };
}

/**
 * A client of `GET /v1/events/stream` that keeps every message it is given. `slow` streams never
 * read their socket once the headers arrived: the server must stop writing to them, not buffer.
 */
export interface ProgressMessage {
  event: string;
  data: {
    taskId: string;
    tenantId: string;
    percent: number;
    bytesDone: number;
    bytesTotal: number;
    etaSeconds: number | null;
    message: string | null;
    at: string;
  };
  /** When it arrived (local clock). */
  at: number;
  /** How many events of the log the stream had sent before it. */
  eventsBefore: number;
}

export class SseClient {
  readonly events: SseEvent[] = [];
  /** Live progress messages (`task.progress`, no id: not events of the log), in arrival order. */
  readonly progress: ProgressMessage[] = [];
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
        if (fields['id'] === undefined) {
          if (!light)
            this.progress.push({
              event: fields['event'] ?? '',
              data: JSON.parse(fields['data']) as ProgressMessage['data'],
              at: Date.now(),
              eventsBefore: this.count,
            });
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

/**
 * A raw `GET /v1/events/stream` on its own socket that reads only the answer's head and then
 * never reads again: the server's writes pile up in the kernel and in the server, as with a
 * client that hung. `status` and `headers` are those of the answer; a refusal's problem body is
 * read whole.
 */
export class StalledStream {
  status = 0;
  headers: Record<string, string> = {};
  body = '';
  /** The connection ended (seen only once the socket is read again: {@link drain}). */
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static async open(url: string, token: string): Promise<StalledStream> {
    const { hostname, port } = new URL(url);
    const socket = net.connect({ host: hostname, port: Number(port) });
    const s = new StalledStream(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.write(`GET /v1/events/stream HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      });
      let head = '';
      const onData = (chunk: Buffer) => {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = head.slice(0, end).split('\r\n');
        s.status = Number(lines[0]!.split(' ')[1]);
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          s.headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
        }
        if (s.status === 200) {
          // From now on nothing is read.
          socket.off('data', onData);
          socket.pause();
          resolve();
          return;
        }
        s.body = head.slice(end + 4);
        const length = Number(s.headers['content-length'] ?? 0);
        if (Buffer.byteLength(s.body, 'latin1') >= length) {
          socket.off('data', onData);
          socket.destroy();
          resolve();
        }
      };
      socket.on('data', onData);
    });
    return s;
  }

  /** Reads whatever the socket still holds, and resolves once the connection has ended. */
  async drain(timeoutMs = 30_000): Promise<void> {
    this.socket.on('data', () => undefined);
    this.socket.resume();
    await waitFor(() => this.closed, 'the stalled stream to be ended', timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }
}
