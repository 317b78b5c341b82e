/**
 * A server-sent events parser (WHATWG HTML, "Interpreting an event stream"). Written here rather
 * than taken from a library because resuming needs what libraries drop: the control plane's first
 * message is an `id:` line with no data, naming the position the stream starts after, and the
 * spec sets the last event id from it without firing an event. So `lastEventId` follows every
 * dispatched block, and `onMessage` gets only blocks with data.
 */
export interface SseMessage {
  id: string;
  event: string;
  data: string;
}

export class SseParser {
  /** The id to send as `Last-Event-ID` on reconnect ('' = none yet). */
  lastEventId = '';
  /** The reconnection time the server asked for (`retry:`), in ms. */
  retryMs: number | undefined;
  private buffer = '';
  private idBuffer = '';
  private eventType = '';
  private data: string[] = [];
  private sawCr = false;

  constructor(private readonly onMessage: (m: SseMessage) => void) {}

  feed(chunk: string): void {
    let text = chunk;
    // A CR at the end of the previous chunk already ended its line: skip the LF of its CRLF.
    if (this.sawCr && text.startsWith('\n')) text = text.slice(1);
    this.sawCr = false;
    this.buffer += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) break;
      // A lone CR at the very end may be the first half of a CRLF split across chunks.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) this.sawCr = true;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.idBuffer = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
  }

  private dispatch(): void {
    this.lastEventId = this.idBuffer;
    const data = this.data;
    const event = this.eventType || 'message';
    this.data = [];
    this.eventType = '';
    if (data.length === 0) return;
    this.onMessage({ id: this.lastEventId, event, data: data.join('\n') });
  }

  /** Forgets a partial block (a connection ended mid-message); keeps lastEventId. */
  reset(): void {
    this.buffer = '';
    this.data = [];
    this.eventType = '';
    this.idBuffer = this.lastEventId;
    this.sawCr = false;
  }
}
