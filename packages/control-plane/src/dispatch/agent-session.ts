import { randomUUID } from 'node:crypto';
import {
  decodeFrame,
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  FrameError,
  PROTOCOL_VERSION,
  toBytes,
  type Decoded,
  type DecodedFrame,
  type wire,
} from '@cairn/proto';
import { FailureCodes, RejectReasons } from '@cairn/proto/vocabulary';
import type WebSocket from 'ws';
import type { AgentBudget } from '../domain/rate-limit.js';
import {
  boundChars,
  boundJson,
  boundText,
  WIRE_LIMITS,
  WireViolation,
  wireAttempt,
  wireCount,
  wireIdentifier,
  wirePercent,
  wireSeq,
  wireTime,
} from '../domain/wire-limits.js';
import type { Logger } from '../logger.js';
import type { AgentHelloInfo, AgentStateInfo } from '../store/agent-repository.js';
import type { Report } from '../domain/report-outcome.js';
import type { ReportCommitter } from '../lifecycle/report-committer.js';
import { elapsedMs, type Clock } from '../clock.js';
import { answerHeartbeat, paceChanged } from '../domain/heartbeat-pace.js';

/** One agent's session, as the gateway opens it. */
export interface AgentSessionOptions {
  agentId: string;
  zone: string;
  socket: WebSocket;
  host: SessionHost;
  /**
   * Where reports are stored (lifecycle/report-committer.ts: every session's in one transaction a
   * tick); the session acknowledges a batch only after it resolves.
   */
  reports: Pick<ReportCommitter, 'submit'>;
  /**
   * The clock the agent's own times are judged by (a report's time must lie near it; a heartbeat
   * says it): the agent's host keeps real time, so this is the host's clock (see server.ts).
   */
  wireClock: Clock;
  log: Logger;
}

/** What a session needs from the rest of the control plane. */
export interface SessionHost {
  /** The heartbeat interval to tell agents now (it may change as the fleet does). */
  readonly heartbeatMs: number;
  /** The interval to tell agents for while they hold no task (never shorter than heartbeatMs). */
  readonly idleHeartbeatMs: number;
  maxFrameBytes: number;
  /** Every agent's frame and byte budgets (token buckets, told in the welcome); going over one closes the session. */
  frameRate: { perSecond: number; burst: number };
  byteRate: { perSecond: number; burst: number };
  /** The agent's budget: one per agent, shared by its sessions and kept after they end. */
  budgetOf(agentId: string): AgentBudget;
  /** Called once, after a valid hello; the welcome has been sent. */
  onHello(session: AgentSession, hello: AgentHelloInfo, running: { taskId: string; attempt: number }[]): Promise<void>;
  onHeartbeat(session: AgentSession): Promise<void>;
  /** The agent's drain or shutdown changed during the session (an AgentState frame, checked). */
  onAgentState(session: AgentSession, state: AgentStateInfo): Promise<void>;
  /** The agent stored its rotated `credential` (a CredentialStored frame, not empty). */
  onCredentialStored(session: AgentSession, credential: string): Promise<void>;
  /** The agent refused a task because it is shutting down (told after the refusal is stored). */
  onShuttingDownRefusal(session: AgentSession): void;
  onClose(session: AgentSession): Promise<void>;
  /** A protocol violation is closing this session with `code`. */
  onViolation(code: number): void;
  /** The session went over its agent's frame or byte budget and is being closed. */
  onRateLimited(): void;
}

/** Reports handed in per tick (the committer bounds its transactions; this bounds one session's share). */
const MAX_BATCH = 200;
/**
 * Reports read from one session and not yet applied, past which the session's socket is paused
 * (TCP pushes back on the agent) until its backlog falls under half of it. An agent that keeps
 * to its window never comes near it; one that floods within its byte budget (any frames, faster
 * than the store applies them) would otherwise grow the backlog without bound, and hold the
 * store's report ticks and the event loop for every other session.
 */
const INBOX_PAUSE = 4096;

/** Frames an agent must never send. */
const SERVER_ONLY = new Set(['welcome', 'assign', 'cancel', 'drain', 'credential']);
/** The bodies a report can have, in a frame of its own or in a ReportBatch. */
const REPORT_KINDS = new Set(['accepted', 'rejected', 'progress', 'event', 'result']);
/** A report: a frame carrying one, or one entry of a ReportBatch (same fields, same names). */
type ReportBody = Pick<DecodedFrame, 'accepted' | 'rejected' | 'progress' | 'event' | 'result'> & { body?: string };

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
  private heartbeatQueued = false;
  /** The heartbeat interval the agent was last told (in its welcome, or a heartbeat answer). */
  private heartbeatToldMs = 0;
  /** The idle interval the agent was last told. */
  private idleToldMs = 0;
  /** The previous heartbeat was answered. */
  private answeredLast = false;
  private readonly budget: AgentBudget;
  /** Cancel frames already sent on this session, by `taskId:attempt` (only to avoid resending). */
  readonly cancelsSent = new Set<string>();
  /** When its last heartbeat arrived, by the dispatcher's clock: it shows the agent hears this session. */
  lastHeartbeatAt: number | undefined;
  /** A rotated credential was already sent on this session (and the agent has not yet said it stored it). */
  credentialOffered = false;
  /** The maintenance drain last sent on this session (none yet: the next one is always sent). */
  drainSent: { enabled: boolean; message: string } | undefined;
  slots = 0;
  /** The largest frame the agent accepts, from its hello. */
  agentMaxFrameBytes = DEFAULT_MAX_FRAME_BYTES;
  /** The agent said it is shutting down (in its hello or an AgentState): it never takes that back. */
  private shuttingDown = false;

  readonly agentId: string;
  readonly zone: string;
  private readonly socket: WebSocket;
  private readonly host: SessionHost;
  private readonly reports: Pick<ReportCommitter, 'submit'>;
  private readonly wireClock: Clock;
  private readonly log: Logger;

  constructor({ agentId, zone, socket, host, reports, wireClock, log }: AgentSessionOptions) {
    this.agentId = agentId;
    this.zone = zone;
    this.socket = socket;
    this.host = host;
    this.reports = reports;
    this.wireClock = wireClock;
    this.log = log;
    this.budget = host.budgetOf(agentId);
    this.budget.open++;
    socket.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    socket.on('close', (code, reason) => {
      this.closed = true;
      this.budget.open--;
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

  /** Reports read from the agent and not yet handed to the store (bounded: see INBOX_PAUSE). */
  get backlog(): number {
    return this.inbox.length;
  }

  send(body: wire.IEnvelope): boolean {
    return this.sendFrame(encodeFrame(body));
  }

  /** Sends an already encoded frame. */
  sendFrame(frame: Uint8Array): boolean {
    if (this.closed) return false;
    this.socket.send(frame);
    return true;
  }

  /** Ends the session with a protocol error; the agent will reconnect. */
  fail(code: number, reason: string): void {
    if (this.closed) return;
    if (code !== 1001 && code !== 4000 && code !== CLOSE_REVOKED) this.host.onViolation(code);
    this.log.warn({ closeCode: code, reason }, `closing agent session: ${reason}`);
    this.closed = true;
    this.socket.close(code, closeReason(reason));
    // A peer that keeps sending instead of completing the close handshake is not waited for.
    setTimeout(() => this.socket.terminate(), 1_000).unref();
  }

  private enqueue(work: () => Promise<void>): void {
    this.chain = this.chain.then(work).catch((err: unknown) => {
      this.log.error({ err }, 'agent session handler failed');
      this.fail(1011, 'internal error');
    });
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    // Counted before any decoding: a flood must cost as little as possible.
    const verdict = this.budget.frame(elapsedMs(), data.byteLength);
    if (!verdict.ok) return this.overBudget(verdict.over);
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
      case 'heartbeat': {
        if (env.heartbeat!.intervalMs || env.heartbeat!.idleIntervalMs)
          return this.fail(
            1008,
            "heartbeat: interval_ms and idle_interval_ms are the control plane's to set; an agent sends 0",
          );
        // The answer carries new intervals when the fleet's pace moved from what the agent was told;
        // at a slow pace only every second heartbeat is answered otherwise.
        const paceMs = this.host.heartbeatMs;
        const idleMs = this.host.idleHeartbeatMs;
        const retell = paceChanged(this.heartbeatToldMs, paceMs) || paceChanged(this.idleToldMs, idleMs);
        if (retell) {
          this.heartbeatToldMs = paceMs;
          this.idleToldMs = idleMs;
        }
        this.answeredLast = retell || answerHeartbeat(this.heartbeatToldMs, this.answeredLast);
        if (this.answeredLast)
          this.send({
            heartbeat: {
              sentAtMs: this.wireClock.now(),
              running: 0,
              intervalMs: retell ? paceMs : 0,
              idleIntervalMs: retell ? idleMs : 0,
            },
          });
        // Coalesced: however many arrive, at most one lease renewal waits behind the one running.
        if (this.heartbeatQueued) return;
        this.heartbeatQueued = true;
        return this.enqueue(() => {
          this.heartbeatQueued = false;
          return this.host.onHeartbeat(this);
        });
      }
      case 'ack':
        return; // agents acknowledge drains; nothing to do yet
      case 'agentState':
        return this.onAgentState(env.agentState!);
      case 'credentialStored': {
        const { credential } = env.credentialStored!;
        if (!credential) return this.fail(1008, 'credential_stored frame: credential is empty');
        return this.enqueue(() => this.host.onCredentialStored(this, credential));
      }
      case 'reportBatch':
        return this.onReports(env.reportBatch!.reports, data.byteLength, true);
      default:
        return this.onReports([env], data.byteLength, false);
    }
  }

  /**
   * The reports of one frame (a single report, or a ReportBatch), each checked as a single frame
   * is: one that breaks a rule closes the session and nothing of the frame is stored.
   */
  private onReports(items: readonly ReportBody[], frameBytes: number, batch: boolean): void {
    const limit = WIRE_LIMITS.reportsPerFrame;
    if (batch && items.length === 0) return this.fail(1008, 'report_batch frame carries no reports');
    if (items.length > limit)
      return this.fail(1008, `report_batch frame carries ${items.length} reports, the limit is ${limit}`);
    const now = this.wireClock.now();
    const reports: Report[] = [];
    let stored = 0;
    for (const [i, item] of items.entries()) {
      const what = batch ? `report ${i + 1} of the report_batch frame (${item.body ?? 'empty'})` : `${item.body} frame`;
      if (batch && !REPORT_KINDS.has(item.body ?? '')) return this.fail(1008, `${what} carries no report`);
      let report: Report | null;
      try {
        report = toReport(item, now);
      } catch (err) {
        if (err instanceof WireViolation) return this.fail(1008, `${what}: ${err.message}`);
        throw err;
      }
      if (!report) return this.fail(1008, `${what} lacks a task id or attempt`);
      reports.push(report);
      stored += storedBytes(report);
    }
    if (!this.budget.stores(elapsedMs(), stored - frameBytes)) return this.overBudget('bytes');
    this.inbox.push(...reports);
    if (this.inbox.length >= INBOX_PAUSE && !this.socket.isPaused) this.socket.pause();
    if (!this.pumping) {
      this.pumping = true;
      this.enqueue(() => this.pump());
    }
  }

  /** The agent went over its budget: the session ends; the budget stays as it is for the next one. */
  private overBudget(over: 'frames' | 'bytes'): void {
    this.host.onRateLimited();
    if (over === 'frames') {
      const { perSecond, burst } = this.host.frameRate;
      return this.fail(1008, `over the frame rate limit (${perSecond} frames/s, burst ${burst}, per agent)`);
    }
    const { perSecond, burst } = this.host.byteRate;
    return this.fail(1008, `over the byte rate limit (${perSecond} bytes/s, burst ${burst}, per agent)`);
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
    let facts: { info: AgentHelloInfo; running: { taskId: string; attempt: number }[] };
    try {
      facts = helloFacts(hello, this.zone);
    } catch (err) {
      if (err instanceof WireViolation) return this.fail(1008, `hello: ${err.message}`);
      throw err;
    }
    this.slots = hello.slots;
    this.shuttingDown = hello.shuttingDown;
    if (hello.maxFrameBytes > 0) this.agentMaxFrameBytes = hello.maxFrameBytes;
    this.heartbeatToldMs = this.host.heartbeatMs;
    this.idleToldMs = this.host.idleHeartbeatMs;
    this.send({
      welcome: {
        protocolVersion: PROTOCOL_VERSION,
        sessionId: this.sessionId,
        heartbeatIntervalMs: this.heartbeatToldMs,
        idleHeartbeatIntervalMs: this.idleToldMs,
        maxFrameBytes: this.host.maxFrameBytes,
        framesPerSecond: this.host.frameRate.perSecond,
        frameBurst: this.host.frameRate.burst,
        bytesPerSecond: this.host.byteRate.perSecond,
        byteBurst: this.host.byteRate.burst,
        acceptsAgentState: true,
        acceptsReportBatch: true,
      },
    });
    this.enqueue(() => this.host.onHello(this, facts.info, facts.running));
  }

  /** Checked here, applied in order behind whatever the session handed on before it. */
  private onAgentState(frame: Decoded<wire.AgentState.$Properties>): void {
    let state: AgentStateInfo;
    try {
      state = stateFacts(frame, this.shuttingDown);
    } catch (err) {
      if (err instanceof WireViolation) return this.fail(1008, `agent_state frame: ${err.message}`);
      throw err;
    }
    this.shuttingDown = state.shuttingDown;
    this.enqueue(() => this.host.onAgentState(this, state));
  }

  /**
   * Hands everything that arrived meanwhile to the committer (stored with the other sessions' in
   * the tick's one transaction), then acknowledges it: never before the commit, and not at all
   * once the session closed (the agent resends; the store dedupes). The next batch goes only
   * after this one committed, so an agent's reports are applied in its spool order.
   */
  private async pump(): Promise<void> {
    while (this.inbox.length > 0) {
      const batch = this.inbox.splice(0, MAX_BATCH);
      await this.reports.submit(this.agentId, batch);
      // An agent that refuses because it is shutting down is offered nothing more (its fresh hello may still be on the way).
      if (batch.some((r) => r.kind === 'rejected' && r.reasonCode === RejectReasons.SHUTTING_DOWN))
        this.host.onShuttingDownRefusal(this);
      this.send({ ack: { spoolSeqs: batch.map((r) => r.seq) } });
      if (this.socket.isPaused && this.inbox.length < INBOX_PAUSE / 2) this.socket.resume();
    }
    this.pumping = false;
  }
}

/**
 * UTF-8 bytes of what a report makes the store keep from the agent (text, JSON, codes, ids):
 * never more than its frame except for text the store quotes (event data that is not JSON).
 */
function storedBytes(report: Report): number {
  const b = (s: string | null | undefined) => (s ? Buffer.byteLength(s, 'utf8') : 0);
  const base = b(report.taskId);
  switch (report.kind) {
    case 'accepted':
      return base;
    case 'rejected':
      return base + b(report.reasonCode) + b(report.message);
    case 'progress':
      return base + b(report.message);
    case 'event':
      return base + b(report.type) + b(report.message) + b(report.data);
    case 'result': {
      const o = report.outcome;
      if (!o.ok) return base + b(o.code) + b(o.message);
      return base + b(o.output) + b(o.backup?.externalId) + b(o.backup?.parentExternalId) + b(o.backup?.mode);
    }
  }
}

/** Close reasons travel in a control frame limited to 123 bytes. */
function closeReason(reason: string): string {
  const buf = Buffer.from(reason, 'utf8');
  return buf.byteLength <= 123
    ? reason
    : `${buf
        .subarray(0, 119)
        .toString('utf8')
        .replace(/\uFFFD$/, '')}…`;
}

/** What a hello says, checked against the limits of the columns it is stored in. */
function helloFacts(
  hello: Decoded<wire.AgentHello.$Properties>,
  zone: string,
): { info: AgentHelloInfo; running: { taskId: string; attempt: number }[] } {
  const L = WIRE_LIMITS;
  if (hello.slots > L.maxSlots) throw new WireViolation(`slots ${hello.slots} is over the limit of ${L.maxSlots}`);
  if (hello.plugins.length > L.plugins)
    throw new WireViolation(`${hello.plugins.length} plugins listed, the limit is ${L.plugins}`);
  const plugins = hello.plugins.map((p) => {
    if (p.capabilities.length > L.capabilities)
      throw new WireViolation(
        `plugin ${p.name} lists ${p.capabilities.length} capabilities, the limit is ${L.capabilities}`,
      );
    return {
      name: wireIdentifier('plugin name', p.name, L.pluginNameChars),
      version: wireIdentifier('plugin version', p.version, L.pluginVersionChars),
      apiVersion: p.apiVersion,
      capabilities: p.capabilities.map((c) => wireIdentifier('plugin capability', c, L.capabilityChars)),
    };
  });
  const pluginsBytes = Buffer.byteLength(JSON.stringify(plugins), 'utf8');
  if (pluginsBytes > L.jsonBytes)
    throw new WireViolation(`the plugin list is ${pluginsBytes} bytes as JSON, the limit is ${L.jsonBytes}`);
  if (hello.running.length > L.runningTasks)
    throw new WireViolation(`${hello.running.length} running tasks listed, the limit is ${L.runningTasks}`);
  const running = hello.running.map((r) => ({
    taskId: wireIdentifier('running task id', r.taskId, L.taskIdChars),
    attempt: wireAttempt(r.attempt),
  }));
  return {
    info: {
      zone,
      slots: hello.slots,
      plugins,
      // Descriptive only: cut to their columns rather than refusing the agent.
      agentVersion: boundChars(hello.agentVersion, L.agentVersionChars),
      hostname: boundChars(hello.hostname, L.hostnameChars),
      draining: hello.draining,
      drainMessage: boundText(hello.drainMessage),
      shuttingDown: hello.shuttingDown,
    },
    running,
  };
}

/**
 * What an AgentState frame says, checked against the session: a shutdown is never withdrawn
 * (it ends with the process), and a drain message comes only with a drain. The message is cut
 * to its column as a hello's is.
 */
function stateFacts(frame: Decoded<wire.AgentState.$Properties>, shuttingDown: boolean): AgentStateInfo {
  if (shuttingDown && !frame.shuttingDown)
    throw new WireViolation(
      'shutting_down is false after the agent said it is shutting down (a shutdown ends with the process)',
    );
  if (!frame.draining && frame.drainMessage !== '')
    throw new WireViolation('drain_message is set but draining is false');
  return { draining: frame.draining, drainMessage: boundText(frame.drainMessage), shuttingDown: frame.shuttingDown };
}

/**
 * Turns a report frame into a store report. Numbers out of range throw WireViolation (the
 * session is closed and nothing is stored); free text and JSON are cut to their columns.
 */
function toReport(env: ReportBody, now: number): Report | null {
  const m = env.accepted ?? env.rejected ?? env.progress ?? env.event ?? env.result;
  if (!m || !m.taskId || !m.attempt) return null;
  const base = {
    seq: wireSeq(Number(m.spoolSeq)),
    taskId: wireIdentifier('task_id', m.taskId, WIRE_LIMITS.taskIdChars),
    attempt: wireAttempt(m.attempt),
    at: wireTime('at_ms', Number(m.atMs), now),
  };
  if (env.accepted) return { kind: 'accepted', ...base };
  if (env.rejected)
    return {
      kind: 'rejected',
      ...base,
      reasonCode: boundChars(env.rejected.reasonCode, WIRE_LIMITS.codeChars),
      message: boundText(env.rejected.message),
    };
  if (env.progress) {
    const p = env.progress;
    return {
      kind: 'progress',
      ...base,
      percent: wirePercent(p.percent),
      bytesDone: wireCount('bytes_done', Number(p.bytesDone)),
      bytesTotal: wireCount('bytes_total', Number(p.bytesTotal)),
      message: boundText(p.message),
    };
  }
  if (env.event) {
    const e = env.event;
    return {
      kind: 'event',
      ...base,
      type: wireIdentifier('event type', e.type, WIRE_LIMITS.eventTypeChars) || 'provider.message',
      message: boundText(e.message),
      data: boundJson('event data', e.dataJson),
    };
  }
  const r = env.result!;
  if (r.ok) {
    const b = r.ok.backup;
    const output = boundJson('task output', r.ok.outputJson);
    if (b && [...b.externalId].length > WIRE_LIMITS.externalIdChars) {
      // Cutting an external id would point restores at the wrong backup: the task fails instead.
      return {
        kind: 'result',
        ...base,
        outcome: {
          ok: false,
          code: FailureCodes.INVALID_RESULT,
          message: `the plugin returned a backup external id of ${[...b.externalId].length} characters; the limit is ${WIRE_LIMITS.externalIdChars}`,
          retryable: false,
        },
      };
    }
    return {
      kind: 'result',
      ...base,
      outcome: {
        ok: true,
        backup: b
          ? {
              externalId: b.externalId,
              sizeBytes: wireCount('size_bytes', Number(b.sizeBytes)),
              addedBytes: wireCount('added_bytes', Number(b.addedBytes)),
              mode: b.mode,
              // A longer one cannot name a stored backup anyway.
              parentExternalId: [...b.parentExternalId].length > WIRE_LIMITS.externalIdChars ? '' : b.parentExternalId,
            }
          : null,
        output,
      },
    };
  }
  const e = r.error;
  return {
    kind: 'result',
    ...base,
    outcome: {
      ok: false,
      code: boundChars(e?.code || FailureCodes.UNKNOWN, WIRE_LIMITS.codeChars),
      message: boundText(e?.message || 'the agent gave no error message'),
      retryable: e?.retryable ?? false,
    },
  };
}
