import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeFrame, encodeFrame, PROTOCOL_VERSION, toBytes, type DecodedFrame, type wire } from '@cairn/proto';
import { WebSocketServer, type WebSocket } from 'ws';
import { waitFor } from './wait.js';

export type ReportKind = 'accepted' | 'rejected' | 'progress' | 'event' | 'result';
const REPORT_KINDS: readonly string[] = ['accepted', 'rejected', 'progress', 'event', 'result'];

/** One report frame as the fake control plane received it. */
export interface ReceivedReport {
  session: number;
  kind: ReportKind;
  seq: number;
  taskId: string;
  attempt: number;
  frame: DecodedFrame;
}

export interface FakeSession {
  index: number;
  socket: WebSocket;
  hello: DecodedFrame['hello'];
  frames: DecodedFrame[];
  closed: boolean;
  /** Close code and reason as the server saw them. */
  closeCode?: number;
  closeReason?: string;
}

export interface FakeOptions {
  heartbeatIntervalMs?: number;
  /** Acknowledge every report at once (default true). */
  autoAck?: boolean;
  /** The bearer credential the upgrade must carry. */
  credential?: string;
  /** The welcome's max_frame_bytes; like the real server, a larger frame closes the session (1009). */
  maxFrameBytes?: number;
  /** The welcome's accepts_agent_state (default false: a control plane older than AgentState). */
  acceptsAgentState?: boolean;
  /** The welcome's accepts_report_batch (default false: a control plane older than ReportBatch). */
  acceptsReportBatch?: boolean;
}

/**
 * A small control plane for agent tests: a real HTTP server on 127.0.0.1 with the agent
 * WebSocket at /v1/agent, speaking protocol v1 (welcome, heartbeat answers, acks) and
 * recording every frame it receives.
 */
export class FakeControlPlane {
  readonly sessions: FakeSession[] = [];
  readonly reports: ReceivedReport[] = [];
  refusedUpgrades = 0;
  autoAck: boolean;
  /** When false the server goes quiet: heartbeats get no answer. */
  answerHeartbeats = true;
  credential: string;
  /** The seqs this server acknowledged. */
  readonly acked = new Set<number>();

  private constructor(
    private readonly server: http.Server,
    private readonly wss: WebSocketServer,
    readonly url: string,
    private readonly opts: FakeOptions,
  ) {
    this.autoAck = opts.autoAck ?? true;
    this.credential = opts.credential ?? 'test-credential';
  }

  static async start(opts: FakeOptions = {}): Promise<FakeControlPlane> {
    const server = http.createServer((_req, res) => {
      res.writeHead(404).end();
    });
    const wss = new WebSocketServer({ noServer: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const fake = new FakeControlPlane(server, wss, `http://127.0.0.1:${port}`, opts);
    server.on('upgrade', (req, socket, head) => fake.onUpgrade(req, socket, head));
    return fake;
  }

  private onUpgrade(req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (req.url !== '/v1/agent' || req.headers.authorization !== `Bearer ${this.credential}`) {
      this.refusedUpgrades++;
      const status = req.url === '/v1/agent' ? 401 : 404;
      socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onSession(ws));
  }

  private onSession(socket: WebSocket): void {
    const session: FakeSession = { index: this.sessions.length, socket, hello: null, frames: [], closed: false };
    this.sessions.push(session);
    socket.on('close', (code, reason) => {
      session.closed = true;
      session.closeCode = code;
      session.closeReason = reason.toString();
    });
    socket.on('error', () => {});
    socket.on('message', (data) => {
      const limit = this.opts.maxFrameBytes ?? 1024 * 1024;
      if ((data as Buffer).byteLength > limit) {
        socket.close(1009, `frame over the ${limit}-byte limit`);
        return;
      }
      const frame = decodeFrame(toBytes(data as Buffer));
      session.frames.push(frame);
      if (frame.body === 'hello') {
        session.hello = frame.hello;
        socket.send(
          encodeFrame({
            welcome: {
              protocolVersion: PROTOCOL_VERSION,
              sessionId: `session-${session.index}`,
              heartbeatIntervalMs: this.opts.heartbeatIntervalMs ?? 1_000,
              maxFrameBytes: this.opts.maxFrameBytes ?? 1024 * 1024,
              acceptsAgentState: this.opts.acceptsAgentState ?? false,
              acceptsReportBatch: this.opts.acceptsReportBatch ?? false,
            },
          }),
        );
        return;
      }
      if (frame.body === 'heartbeat') {
        if (this.answerHeartbeats) socket.send(encodeFrame({ heartbeat: { sentAtMs: Date.now(), running: 0 } }));
        return;
      }
      // A batch's reports are the messages single frames carry, under the same names.
      const items = frame.body === 'reportBatch' ? (frame.reportBatch!.reports as unknown as DecodedFrame[]) : [frame];
      const seqs: number[] = [];
      for (const item of items) {
        if (!REPORT_KINDS.includes(item.body)) continue;
        const body = item[item.body as ReportKind]!;
        this.reports.push({
          session: session.index,
          kind: item.body as ReportKind,
          seq: body.spoolSeq,
          taskId: body.taskId,
          attempt: body.attempt,
          frame: item,
        });
        seqs.push(body.spoolSeq);
      }
      if (this.autoAck && seqs.length > 0) this.ack(seqs, session);
    });
  }

  /** The most recent session that is still open. */
  get current(): FakeSession | undefined {
    return [...this.sessions].reverse().find((s) => !s.closed);
  }

  /** Sends a frame on the current session. */
  send(body: wire.IEnvelope): void {
    const session = this.current;
    if (!session) throw new Error('no open agent session');
    session.socket.send(encodeFrame(body));
  }

  /** Sends raw bytes (for garbage frames) on the current session. */
  sendRaw(data: Uint8Array): void {
    const session = this.current;
    if (!session) throw new Error('no open agent session');
    session.socket.send(data);
  }

  ack(seqs: number[], session = this.current): void {
    for (const s of seqs) this.acked.add(s);
    session?.socket.send(encodeFrame({ ack: { spoolSeqs: seqs } }));
  }

  /** Kills every open socket without a closing handshake, like a crashed server. */
  dropAll(): void {
    for (const s of this.sessions) if (!s.closed) s.socket.terminate();
  }

  reportsFor(taskId: string, kind?: ReportKind): ReceivedReport[] {
    return this.reports.filter((r) => r.taskId === taskId && (kind === undefined || r.kind === kind));
  }

  /** Waits for a session (the n-th, 0-based) that got its hello. */
  waitForSession(n: number, timeoutMs = 20_000): Promise<FakeSession> {
    return waitFor(
      () => {
        const s = this.sessions[n];
        return s?.hello ? s : undefined;
      },
      `agent session #${n}`,
      timeoutMs,
    );
  }

  waitForReport(taskId: string, kind: ReportKind, timeoutMs = 20_000): Promise<ReceivedReport> {
    return waitFor(() => this.reportsFor(taskId, kind)[0], `${kind} report of ${taskId}`, timeoutMs);
  }

  async close(): Promise<void> {
    for (const s of this.sessions) if (!s.closed) s.socket.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
