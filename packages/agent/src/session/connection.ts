import {
  decodeFrame,
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  FrameError,
  toBytes,
  type DecodedFrame,
  type wire,
} from '@cairn/proto';
import type { createConnection } from 'node:net';
import WebSocket from 'ws';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { checkServerFrame, CloseCodes, heartbeatInterval, sendLimit } from './handshake.js';
import { Heartbeat } from './heartbeat.js';
import { paceFor, type Pace } from './pacing.js';
import { DEFAULT_BACKOFF, nextServer, parseRetryAfter, reconnectDelay, type BackoffPolicy } from './reconnect.js';
import { ServerTrustError, trustedConnection, type ServerTrust } from './tls.js';
import { agentSocketUrl } from './url.js';

/** A decoded frame from the control plane. */
export type ServerFrame = DecodedFrame;

/** What the connection asks of the agent around it. */
export interface ConnectionHandlers {
  /** The first frame of a new session. */
  hello(): wire.IAgentHello;
  /** The control plane welcomed the session; frames may flow, reports at `pace`. */
  ready(welcome: Welcome): void;
  /** Assign, cancel, drain, ack or a rotated credential (heartbeats and the handshake are handled here). */
  frame(frame: ServerFrame): void;
  /** A welcomed session ended. */
  lost(): void;
  /** Tasks running now, for heartbeats. */
  runningCount(): number;
  /**
   * Whether the agent holds a task: one running, or one whose result is not yet acknowledged
   * (its lease must still be renewed). An agent holding none beats at the idle interval.
   */
  holdsTasks(): boolean;
}

export interface ConnectionOptions {
  /**
   * Control plane base URLs (http or https): one, or the replicas of one control plane. The first
   * connect goes to one picked at random (agents spread over the replicas); after a failure or a
   * lost session the next one in the list (see `nextServer`).
   */
  servers: readonly string[];
  /** Picks the first URL: [0, 1) (tests pass a fixed one). */
  random?: () => number;
  credential: string;
  handlers: ConnectionHandlers;
  /** The agent's clock: heartbeat times, the peer's silence, a 429's Retry-After date. */
  clock: Clock;
  log: Logger;
  maxFrameBytes?: number;
  /** How long to wait for the welcome after the hello. */
  welcomeTimeoutMs?: number;
  backoff?: BackoffPolicy;
  /** How a wss:// control plane proves who it is (chosen at enrollment); unset: the system CAs. */
  trust?: ServerTrust;
}

/** What the agent takes from a welcome. */
export interface Welcome {
  sessionId: string;
  heartbeatIntervalMs: number;
  /** The interval while the agent holds no task. */
  idleHeartbeatIntervalMs: number;
  pace: Pace | null;
  maxFrameBytes: number;
  /** The control plane applies AgentState and CredentialStored frames (older ones close the session on them). */
  acceptsAgentState: boolean;
  /** The control plane takes ReportBatch frames: reports ready together go out in one frame. */
  acceptsReportBatch: boolean;
}

type Phase = 'idle' | 'connecting' | 'awaiting-welcome' | 'ready' | 'closing';

/** Close reasons travel in a control frame limited to 123 bytes. */
function closeReason(reason: string): string {
  const buf = Buffer.from(reason, 'utf8');
  return buf.byteLength <= 123 ? reason : buf.subarray(0, 120).toString('utf8');
}

/**
 * The agent's session with its control plane, kept up forever: connect with the agent's
 * credential, hello, wait for the welcome, heartbeat, and on any close or error reconnect with
 * jittered exponential backoff. Protocol violations by the server close the socket (1007, 1008,
 * 1009) and count as a disconnection, never as a crash.
 *
 * @example
 * const conn = new AgentConnection({ servers: [server], credential, handlers, clock, log });
 * conn.start();
 * conn.send({ accepted: { spoolSeq: 7, taskId, attempt, atMs: clock.now() } });
 */
export class AgentConnection {
  private ws: WebSocket | undefined;
  private phase: Phase = 'idle';
  private failures = 0;
  private stopped = false;
  private reconnectImmediately = false;
  /** Whether the current socket got its welcome (its end is then a lost session). */
  private welcomed = false;
  /** The upgrade was refused and already logged; the socket error that follows is noise. */
  private refused = false;
  /** The last upgrade was refused with 429: the next connect waits at least this long. */
  private retryAfterMs: number | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private welcomeTimer: NodeJS.Timeout | undefined;
  private heartbeat: Heartbeat | undefined;
  /** The agent socket URL of each control plane URL, and the one connected or tried now. */
  private readonly urls: readonly string[];
  private at: number;
  private readonly maxFrameBytes: number;
  private credential: string;

  constructor(private readonly opts: ConnectionOptions) {
    if (opts.servers.length === 0) throw new Error('AgentConnection needs at least one control plane URL');
    this.credential = opts.credential;
    this.urls = opts.servers.map(agentSocketUrl);
    this.at = Math.min(this.urls.length - 1, Math.floor((opts.random ?? Math.random)() * this.urls.length));
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** The agent socket URL connected to now, or tried next. */
  get url(): string {
    return this.urls[this.at]!;
  }

  /** True between the welcome and the end of the session. */
  get isReady(): boolean {
    return this.phase === 'ready' && this.ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    if (this.stopped || this.phase !== 'idle') return;
    this.connect();
  }

  /** Sends a frame on the welcomed session; false when there is none (the spool keeps it). */
  send(body: wire.IEnvelope): boolean {
    return this.sendFrame(encodeFrame(body));
  }

  /** Sends a frame already encoded (`encodeFrame`) on the welcomed session; false when there is none. */
  sendFrame(frame: Uint8Array): boolean {
    if (!this.isReady || !this.ws) return false;
    this.ws.send(frame);
    return true;
  }

  /** The credential the next connect authenticates with (after a rotation). */
  setCredential(credential: string): void {
    this.credential = credential;
  }

  /** Ends the current session and opens a new one at once (to send a fresh hello). */
  restart(reason: string): void {
    if (this.stopped || !this.ws) return;
    this.reconnectImmediately = true;
    this.close(CloseCodes.REHELLO, reason, 'info');
  }

  /** Closes the session for good. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    if (!ws) return;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    this.close(CloseCodes.GOING_AWAY, 'agent shutting down', 'info');
    await closed;
  }

  private connect(): void {
    this.phase = 'connecting';
    this.opts.log.debug({ url: this.url }, 'connecting to the control plane');
    const ws = new WebSocket(this.url, {
      headers: { Authorization: `Bearer ${this.credential}` },
      maxPayload: this.maxFrameBytes,
      handshakeTimeout: 10_000,
      // Over wss:// the upgrade request, and the credential in it, is written only once the
      // server passed the trust check. ws hands this to https.request, which takes the callback form.
      ...(this.url.startsWith('wss:')
        ? { createConnection: trustedConnection(this.opts.trust) as unknown as typeof createConnection }
        : {}),
    });
    this.ws = ws;
    this.welcomed = false;
    this.refused = false;
    ws.binaryType = 'nodebuffer';
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume(); // drain the body so the socket can be released
      this.refused = true;
      if (status === 429) {
        // Reconnecting too often (the control plane paces sessions per agent): wait as asked.
        this.retryAfterMs = parseRetryAfter(res.headers['retry-after'], this.opts.clock.now()) ?? 1000;
        this.opts.log.warn(
          { status, url: this.url, retryAfterMs: this.retryAfterMs },
          'the control plane asks the agent to reconnect later (HTTP 429)',
        );
      } else if (status === 401 || status === 403) {
        this.opts.log.error(
          { status, url: this.url },
          `the control plane refused the agent credential (HTTP ${status}); it may have been revoked or the agent re-enrolled elsewhere; retrying`,
        );
      } else {
        this.opts.log.warn(
          { status, url: this.url },
          `the control plane refused the WebSocket upgrade (HTTP ${status}); retrying`,
        );
      }
      ws.terminate();
    });
    ws.on('open', () => {
      if (ws !== this.ws) return;
      this.phase = 'awaiting-welcome';
      // The server never sends a frame over the limit announced here.
      ws.send(encodeFrame({ hello: { ...this.opts.handlers.hello(), maxFrameBytes: this.maxFrameBytes } }));
      const waitMs = this.opts.welcomeTimeoutMs ?? 15_000;
      this.welcomeTimer = setTimeout(
        () => this.close(CloseCodes.POLICY_VIOLATION, `no welcome within ${waitMs} ms`, 'warn'),
        waitMs,
      );
    });
    ws.on('message', (data, isBinary) => {
      if (ws === this.ws) this.onMessage(data, isBinary);
    });
    ws.on('error', (err) => {
      // 'close' always follows; the reconnect is scheduled there.
      if (ws !== this.ws || this.refused) return;
      if (err instanceof ServerTrustError)
        this.opts.log.error(
          { url: this.url },
          `refusing the control plane: ${err.message}; nothing was sent to it; retrying`,
        );
      else this.opts.log.warn({ err: err.message, url: this.url }, 'control plane connection error');
    });
    ws.on('close', (code, reason) => {
      if (ws === this.ws) this.onClose(code, reason.toString());
    });
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.phase !== 'awaiting-welcome' && this.phase !== 'ready') return;
    if (!isBinary) return this.close(CloseCodes.UNSUPPORTED_DATA, 'text frames are not part of the protocol', 'warn');
    let frame: ServerFrame;
    try {
      frame = decodeFrame(toBytes(data), this.maxFrameBytes);
    } catch (err) {
      const tooBig = err instanceof FrameError && err.code === 'FRAME_TOO_LARGE';
      const message = err instanceof Error ? err.message : String(err);
      return this.close(
        tooBig ? CloseCodes.MESSAGE_TOO_BIG : CloseCodes.INVALID_PAYLOAD,
        `bad frame from the control plane: ${message}`,
        'warn',
      );
    }
    const verdict = checkServerFrame(this.phase, frame.body, frame.welcome);
    if (!verdict.ok) return this.close(verdict.closeCode, verdict.reason, 'warn');
    this.heartbeat?.heard();
    if (frame.body === 'welcome') return this.onWelcome(frame.welcome!);
    if (frame.body === 'heartbeat') {
      // A new pace from the control plane (its fleet grew or shrank); 0 keeps the current one.
      const told = frame.heartbeat?.intervalMs ?? 0;
      const idleTold = frame.heartbeat?.idleIntervalMs ?? 0;
      if (told > 0 || idleTold > 0) this.retime(told, idleTold);
      return;
    }
    try {
      this.opts.handlers.frame(frame);
    } catch (err) {
      // A bug in a handler must not tear the session down in a loop; log it loudly.
      this.opts.log.error({ err, frame: frame.body }, 'handling a control plane frame failed');
    }
  }

  /** A new pace from the control plane: either interval 0 keeps the current one. */
  private retime(told: number, idleTold: number): void {
    if (!this.heartbeat) return;
    const intervalMs = told > 0 ? heartbeatInterval({ heartbeatIntervalMs: told }) : this.heartbeat.interval;
    const idleMs = idleTold > 0 ? heartbeatInterval({ heartbeatIntervalMs: idleTold }) : 0;
    const was = { interval: this.heartbeat.interval, idle: this.heartbeat.idleInterval };
    this.heartbeat.retime(intervalMs, idleMs);
    if (this.heartbeat.interval === was.interval && this.heartbeat.idleInterval === was.idle) return;
    this.opts.log.info(
      {
        heartbeatIntervalMs: this.heartbeat.interval,
        idleHeartbeatIntervalMs: this.heartbeat.idleInterval,
        was: was.interval,
        idleWas: was.idle,
      },
      'the control plane set a new heartbeat interval',
    );
  }

  private onWelcome(welcome: wire.IServerWelcome): void {
    clearTimeout(this.welcomeTimer);
    this.phase = 'ready';
    this.welcomed = true;
    this.failures = 0;
    const intervalMs = heartbeatInterval(welcome);
    const idleIntervalMs = welcome.idleHeartbeatIntervalMs
      ? heartbeatInterval({ heartbeatIntervalMs: welcome.idleHeartbeatIntervalMs })
      : 0;
    const { clock } = this.opts;
    this.heartbeat = new Heartbeat({
      intervalMs,
      idleIntervalMs,
      holding: () => this.opts.handlers.holdsTasks(),
      clock,
      beat: () => this.send({ heartbeat: { sentAtMs: clock.now(), running: this.opts.handlers.runningCount() } }),
      silent: (silentMs) => {
        this.opts.log.warn(
          { silentMs, heartbeatIntervalMs: this.heartbeat?.interval ?? intervalMs },
          'the control plane stopped answering heartbeats; reconnecting',
        );
        this.ws?.terminate();
      },
    });
    this.heartbeat.start();
    this.opts.handlers.ready({
      sessionId: welcome.sessionId ?? '',
      heartbeatIntervalMs: intervalMs,
      idleHeartbeatIntervalMs: this.heartbeat.idleInterval,
      pace: paceFor(welcome),
      maxFrameBytes: sendLimit(welcome),
      acceptsAgentState: welcome.acceptsAgentState === true,
      acceptsReportBatch: welcome.acceptsReportBatch === true,
    });
  }

  /** Closes the socket with a code and a log line; the 'close' event schedules the reconnect. */
  private close(code: number, reason: string, level: 'info' | 'warn'): void {
    const ws = this.ws;
    if (!ws || this.phase === 'closing') return;
    this.opts.log[level]({ closeCode: code, reason }, `closing the control plane session: ${reason}`);
    this.phase = 'closing';
    this.heartbeat?.stop();
    clearTimeout(this.welcomeTimer);
    if (ws.readyState === WebSocket.OPEN) {
      ws.close(code, closeReason(reason));
      // Do not wait the full closing handshake of a misbehaving or vanished peer.
      setTimeout(() => ws.terminate(), 1_000).unref();
    } else {
      ws.terminate();
    }
  }

  private onClose(code: number, reason: string): void {
    const wasReady = this.welcomed;
    this.welcomed = false;
    this.heartbeat?.stop();
    this.heartbeat = undefined;
    clearTimeout(this.welcomeTimer);
    this.ws = undefined;
    this.phase = 'idle';
    if (wasReady) this.opts.handlers.lost();
    if (this.stopped) return;
    const delay = this.reconnectImmediately
      ? 0
      : reconnectDelay(this.failures++, this.retryAfterMs, this.opts.backoff ?? DEFAULT_BACKOFF);
    const from = this.url;
    this.at = nextServer(
      this.at,
      this.urls.length,
      this.reconnectImmediately ? 'rehello' : this.retryAfterMs !== undefined ? 'paced' : 'failed',
    );
    this.reconnectImmediately = false;
    this.retryAfterMs = undefined;
    this.opts.log.info(
      { code, reason, retryInMs: delay, url: from, ...(this.url !== from ? { next: this.url } : {}) },
      'control plane connection closed',
    );
    this.retryTimer = setTimeout(() => {
      if (!this.stopped) this.connect();
    }, delay);
  }
}
