import { randomUUID } from 'node:crypto';
import {
  decodeFrame,
  encodeFrame,
  FrameError,
  PROTOCOL_VERSION,
  toBytes,
  type Decoded,
  type DecodedFrame,
  type wire,
} from '@cairn/proto';
import type WebSocket from 'ws';
import type { Logger } from '../logger.js';
import type { AgentHelloInfo } from '../store/agent-repository.js';
import type { Report } from '../store/task-repository.js';

/** What a session needs from the rest of the control plane. */
export interface SessionHost {
  heartbeatMs: number;
  maxFrameBytes: number;
  /** Called once, after a valid hello; the welcome has been sent. */
  onHello(session: AgentSession, hello: AgentHelloInfo, running: { taskId: string; attempt: number }[]): Promise<void>;
  onHeartbeat(session: AgentSession): Promise<void>;
  /** Stores a batch of reports; the session acknowledges them only after this resolves. */
  onReports(session: AgentSession, reports: Report[]): Promise<void>;
  onClose(session: AgentSession): Promise<void>;
  /** A protocol violation is closing this session with `code`. */
  onViolation(code: number): void;
}

/** Frames an agent must never send. */
const SERVER_ONLY = new Set(['welcome', 'assign', 'cancel', 'drain', 'credential']);

/** Close code for the session of an agent deleted through the API (not a protocol violation). */
export const CLOSE_REVOKED = 4003;

/**
 * One agent's WebSocket session. Enforces the protocol order (hello first, once), decodes
 * frames, batches reports into one store write and acknowledges them after it commits.
 * Any protocol violation closes this session only.
 */
export class AgentSession {
  readonly sessionId = randomUUID();
  private helloSeen = false;
  private closed = false;
  private inbox: Report[] = [];
  private pumping = false;
  private chain: Promise<void> = Promise.resolve();
  /** Cancel frames already sent on this session, by `taskId:attempt` (only to avoid resending). */
  readonly cancelsSent = new Set<string>();
  /** A rotated credential was already sent on this session. */
  credentialOffered = false;
  slots = 0;

  constructor(
    readonly agentId: string,
    readonly zone: string,
    private readonly socket: WebSocket,
    private readonly host: SessionHost,
    private readonly log: Logger,
  ) {
    socket.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    socket.on('close', (code, reason) => {
      this.closed = true;
      this.log.info({ code, reason: reason.toString() }, 'agent session closed');
      this.enqueue(() => this.host.onClose(this));
    });
    socket.on('error', (err) => {
      // ws itself closes a session whose frame is over maxPayload (1009); say so like any violation.
      const code = (err as { code?: string }).code;
      if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        this.host.onViolation(1009);
        this.log.warn(
          { closeCode: 1009 },
          `closing agent session: frame over the ${this.host.maxFrameBytes}-byte limit`,
        );
        return;
      }
      this.log.warn({ err: err.message }, 'agent socket error');
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  send(body: wire.IEnvelope): boolean {
    if (this.closed) return false;
    this.socket.send(encodeFrame(body));
    return true;
  }

  /** Ends the session with a protocol error; the agent will reconnect. */
  fail(code: number, reason: string): void {
    if (this.closed) return;
    if (code !== 1001 && code !== 4000 && code !== CLOSE_REVOKED) this.host.onViolation(code);
    this.log.warn({ closeCode: code, reason }, `closing agent session: ${reason}`);
    this.closed = true;
    this.socket.close(code, reason.slice(0, 120));
  }

  private enqueue(work: () => Promise<void>): void {
    this.chain = this.chain.then(work).catch((err: unknown) => {
      this.log.error({ err }, 'agent session handler failed');
      this.fail(1011, 'internal error');
    });
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    if (!isBinary) return this.fail(1003, 'text frames are not part of the protocol');
    let env: DecodedFrame;
    try {
      env = decodeFrame(toBytes(data), this.host.maxFrameBytes);
    } catch (err) {
      const e = err as FrameError;
      return this.fail(e.code === 'FRAME_TOO_LARGE' ? 1009 : 1007, e.message);
    }
    const kind = env.body;
    if (!this.helloSeen && kind !== 'hello') return this.fail(1008, `expected hello as the first frame, got ${kind}`);
    if (SERVER_ONLY.has(kind)) return this.fail(1008, `agents may not send ${kind} frames`);
    switch (kind) {
      case 'hello':
        return this.onHello(env.hello!);
      case 'heartbeat':
        this.send({ heartbeat: { sentAtMs: Date.now(), running: 0 } });
        return this.enqueue(() => this.host.onHeartbeat(this));
      case 'ack':
        return; // agents acknowledge drains; nothing to do yet
      default: {
        const report = toReport(env);
        if (!report) return this.fail(1008, `${kind} frame lacks a task id or attempt`);
        this.inbox.push(report);
        if (!this.pumping) {
          this.pumping = true;
          this.enqueue(() => this.pump());
        }
      }
    }
  }

  private onHello(hello: Decoded<wire.AgentHello.$Properties>): void {
    if (this.helloSeen) return this.fail(1008, 'hello sent twice');
    this.helloSeen = true;
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      return this.fail(
        1008,
        `protocol version ${hello.protocolVersion} is not supported (server speaks ${PROTOCOL_VERSION})`,
      );
    }
    if (hello.agentId !== this.agentId)
      return this.fail(1008, `hello names agent ${hello.agentId}, credential belongs to ${this.agentId}`);
    this.slots = hello.slots;
    this.send({
      welcome: {
        protocolVersion: PROTOCOL_VERSION,
        sessionId: this.sessionId,
        heartbeatIntervalMs: this.host.heartbeatMs,
        maxFrameBytes: this.host.maxFrameBytes,
      },
    });
    const info: AgentHelloInfo = {
      zone: this.zone,
      slots: hello.slots,
      plugins: hello.plugins.map((p) => ({
        name: p.name,
        version: p.version,
        apiVersion: p.apiVersion,
        capabilities: [...p.capabilities],
      })),
      agentVersion: hello.agentVersion,
      hostname: hello.hostname,
      draining: hello.draining,
      drainMessage: hello.drainMessage,
    };
    const running = hello.running.map((r) => ({ taskId: r.taskId, attempt: r.attempt }));
    this.enqueue(() => this.host.onHello(this, info, running));
  }

  /** Writes everything that arrived meanwhile in one batch, then acknowledges it. */
  private async pump(): Promise<void> {
    while (this.inbox.length > 0) {
      const batch = this.inbox;
      this.inbox = [];
      await this.host.onReports(this, batch);
      this.send({ ack: { spoolSeqs: batch.map((r) => r.seq) } });
    }
    this.pumping = false;
  }
}

function toReport(env: DecodedFrame): Report | null {
  const m = env.accepted ?? env.rejected ?? env.progress ?? env.event ?? env.result;
  if (!m || !m.taskId || !m.attempt) return null;
  const base = { seq: Number(m.spoolSeq), taskId: m.taskId, attempt: m.attempt, at: Number(m.atMs) || Date.now() };
  if (env.accepted) return { kind: 'accepted', ...base };
  if (env.rejected)
    return { kind: 'rejected', ...base, reasonCode: env.rejected.reasonCode, message: env.rejected.message };
  if (env.progress) {
    const p = env.progress;
    return {
      kind: 'progress',
      ...base,
      percent: Math.min(100, Math.max(0, p.percent)),
      bytesDone: Number(p.bytesDone),
      bytesTotal: Number(p.bytesTotal),
      message: p.message,
    };
  }
  if (env.event) {
    const e = env.event;
    return { kind: 'event', ...base, type: e.type || 'agent.event', message: e.message, data: jsonOrNull(e.dataJson) };
  }
  const r = env.result!;
  if (r.ok) {
    const b = r.ok.backup;
    return {
      kind: 'result',
      ...base,
      outcome: {
        ok: true,
        backup: b
          ? {
              externalId: b.externalId,
              sizeBytes: Number(b.sizeBytes),
              addedBytes: Number(b.addedBytes),
              mode: b.mode,
              parentExternalId: b.parentExternalId,
            }
          : null,
        output: jsonOrNull(r.ok.outputJson),
      },
    };
  }
  const e = r.error;
  return {
    kind: 'result',
    ...base,
    outcome: {
      ok: false,
      code: e?.code || 'UNKNOWN',
      message: e?.message || 'the agent gave no error message',
      retryable: e?.retryable ?? false,
    },
  };
}

/** Agent-supplied JSON is stored only if it parses; anything else is kept as a string value. */
function jsonOrNull(text: string): string | null {
  if (!text) return null;
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify({ unparsed: text });
  }
}
