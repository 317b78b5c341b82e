import os from 'node:os';
import type { PluginIsolation, PluginRegistry } from '@cairn/plugin-sdk/host';
import { FailureCodes } from '@cairn/proto/vocabulary';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import { Executor, JOURNAL_RETENTION_MS } from './executor/executor.js';
import { AgentConnection, type ServerFrame, type Welcome } from './session/connection.js';
import { buildHello } from './session/handshake.js';
import { ReportOutbox } from './session/outbox.js';
import type { BackoffPolicy } from './session/reconnect.js';
import { Spool } from './spool/spool.js';
import { writeCredential, type AgentCredential } from './state/credential.js';
import { DrainState, drainMessage, sameDrain, type DrainRecord } from './state/drain.js';
import { TaskJournal } from './state/journal.js';
import { AgentLog } from './state/wal.js';
import { StatusFile } from './state/status.js';
import { AGENT_VERSION } from './version.js';

export interface AgentOptions {
  stateDir: string;
  credential: AgentCredential;
  plugins: PluginRegistry;
  slots: number;
  /** Running backups are aborted after being cut off from the control plane this long. */
  disconnectAbortMs: number;
  taskTimeoutMs: number;
  /**
   * The agent's one clock: its parts stamp reports, the journal and its files with it and keep
   * their deadlines by it (`systemClock` in production).
   */
  clock: Clock;
  /** Where plugin code runs (default: a worker thread per operation). */
  pluginIsolation?: PluginIsolation;
  /** The heap of each plugin worker thread, in MB. */
  pluginHeapMb?: number;
  /** How long a cancelled or timed-out plugin may take to wind down (default 5 s). */
  abortGraceMs?: number;
  log: Logger;
  /** Override the control plane URL stored at enrollment: one, or the replicas of one control plane. */
  servers?: readonly string[];
  hostname?: string;
  /** How often the drain file is polled for an operator's change. */
  drainPollMs?: number;
  backoff?: BackoffPolicy;
  /** Largest frame accepted from the control plane (default 1 MiB). */
  maxFrameBytes?: number;
  /** Host directories host-path plugins may touch (`{tenant}`: the task's tenant); default none. */
  roots?: readonly string[];
}

/** The most attempts a hello lists (the control plane's limit). */
const HELLO_ATTEMPTS = 10_000;

/**
 * The attempts a hello lists as the agent's: those running, then those that ended with their
 * result not yet acknowledged. The control plane sends neither again, so a finished backup whose
 * acceptance and result are still on their way is not counted as an undelivered assignment.
 */
export function heldAttempts(
  running: { taskId: string; attempt: number }[],
  unacknowledged: { taskId: string; attempt: number }[],
): { taskId: string; attempt: number }[] {
  const seen = new Set<string>();
  const out: { taskId: string; attempt: number }[] = [];
  for (const a of [...running, ...unacknowledged]) {
    const key = `${a.taskId}:${a.attempt}`;
    if (seen.has(key) || out.length >= HELLO_ATTEMPTS) continue;
    seen.add(key);
    out.push(a);
  }
  return out;
}

/** How long, after running tasks were interrupted, the agent waits for its spool to be acknowledged. */
export const FLUSH_AFTER_INTERRUPT_MS = 2_000;

/** What the agent reported of its own state (see {@link Agent}'s `reportState`). */
interface ReportedState {
  drain: Pick<DrainRecord, 'enabled' | 'message'>;
  shuttingDown: boolean;
}

export interface ShutdownOutcome {
  /** Tasks that did not finish within the grace (or before a second signal). */
  interrupted: number;
  /** Reports left in the spool for the next start (the control plane did not acknowledge them in time). */
  unacknowledged: number;
}

/**
 * One agent: its durable state (spool, journal, drain), the executor and the session with the
 * control plane, wired together. `main.ts` builds one per process; tests build them in-process.
 *
 * @example
 * const agent = new Agent({ stateDir, credential, plugins, slots: 2, disconnectAbortMs: 600_000, taskTimeoutMs: 6 * 3600_000, clock: systemClock, log });
 * agent.start();
 * // ...
 * await agent.stop();
 */
export class Agent {
  /** The write-ahead log the spool and the journal share (one fsync per batch of both). */
  readonly stateLog: AgentLog;
  readonly spool: Spool;
  readonly journal: TaskJournal;
  readonly drain: DrainState;
  /** What `cairn-agent status` reads: this process, and the control plane it last reached. */
  readonly status: StatusFile;
  readonly executor: Executor;
  readonly connection: AgentConnection;
  private readonly outbox: ReportOutbox;
  private readonly log: Logger;
  private readonly clock: Clock;
  /** The operator's drain and the shutdown as the control plane last heard them from us. */
  private reported: ReportedState | undefined;
  /** The session's control plane takes AgentState and CredentialStored frames (its welcome said so). */
  private liveState = false;
  private disconnectTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private started = false;
  /** The identity in use; a rotation replaces its credential. */
  private credential: AgentCredential;
  /** Ends a shutdown's wait for the running tasks (a second signal). */
  private cutShutdownShort: () => void = () => {};
  private flushing = false;
  private flushCut = false;

  constructor(private readonly opts: AgentOptions) {
    this.credential = opts.credential;
    this.log = opts.log.child({ agentId: opts.credential.agentId });
    const { clock } = opts;
    this.clock = clock;
    this.stateLog = AgentLog.open(opts.stateDir, {
      clock,
      onDamaged: (file, err) => this.log.error({ file, err: err.message }, 'damaged agent state found and set aside'),
    });
    this.spool = new Spool(this.stateLog);
    this.journal = new TaskJournal(this.stateLog.replayed, this.stateLog);
    this.drain = new DrainState(opts.stateDir, clock);
    const servers = opts.servers ?? [opts.credential.server];
    this.status = new StatusFile(opts.stateDir, servers.join(','), clock);
    this.executor = new Executor({
      spool: this.spool,
      journal: this.journal,
      plugins: opts.plugins,
      drain: this.drain,
      slots: opts.slots,
      taskTimeoutMs: opts.taskTimeoutMs,
      roots: opts.roots ?? [],
      stateDir: opts.stateDir,
      clock,
      ...(opts.pluginIsolation === undefined ? {} : { pluginIsolation: opts.pluginIsolation }),
      ...(opts.pluginHeapMb === undefined ? {} : { pluginHeapMb: opts.pluginHeapMb }),
      ...(opts.abortGraceMs === undefined ? {} : { abortGraceMs: opts.abortGraceMs }),
      log: this.log,
    });
    this.outbox = new ReportOutbox((frame) => this.connection.sendFrame(frame), clock, {
      cut: (record, limit) =>
        this.log.warn(
          { seq: record.seq, kind: record.kind, taskId: record.body.taskId, maxFrameBytes: limit },
          'report too large for the control plane: sent cut to fit its frame limit',
        ),
      dropped: (record, why) => {
        this.log.error({ seq: record.seq, kind: record.kind, taskId: record.body.taskId, why }, 'report dropped');
        this.spool.ack([record.seq]);
      },
    });
    this.connection = new AgentConnection({
      servers,
      credential: opts.credential.credential,
      ...(opts.credential.serverTrust ? { trust: opts.credential.serverTrust } : {}),
      clock,
      log: this.log,
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      ...(opts.maxFrameBytes ? { maxFrameBytes: opts.maxFrameBytes } : {}),
      handlers: {
        hello: () => this.hello(),
        ready: (welcome) => this.onReady(welcome),
        frame: (frame) => this.onFrame(frame),
        lost: () => this.onLost(),
        runningCount: () => this.executor.busy,
        holdsTasks: () => this.executor.busy > 0 || this.spool.holdsResults,
      },
    });
  }

  /** Recovers from a previous crash, then connects (and keeps reconnecting). */
  start(): void {
    if (this.started) return;
    this.started = true;
    const interrupted = this.executor.recoverInterrupted();
    if (interrupted > 0)
      this.log.warn({ interrupted }, 'tasks interrupted by the previous run reported as AGENT_INTERRUPTED');
    // Live reports go out as soon as they are on disk; while no session is up they wait in the
    // spool and go out, in seq order, after the next welcome.
    this.unsubscribe = this.spool.onAppend((records) => this.outbox.push(...records));
    this.drain.watch((record) => this.onLocalDrainChange(record), this.opts.drainPollMs);
    this.pruneTimer = setInterval(() => this.journal.prune(JOURNAL_RETENTION_MS, this.clock.now()), 60 * 60_000);
    this.pruneTimer.unref();
    this.recordStatus(() => this.status.started());
    this.connection.start();
  }

  /**
   * Stops the agent at once: running tasks end as AGENT_INTERRUPTED (spooled), the session gets
   * `graceMs` to deliver what is spooled, then closes.
   */
  async stop(options: { graceMs?: number } = {}): Promise<void> {
    this.executor.refuseNew();
    this.interruptRunning('the agent stopped while the task was running');
    await this.executor.settled();
    await this.close(this.clock.now() + (options.graceMs ?? 2_000));
  }

  /**
   * Stops the agent the way a rolling upgrade needs (SIGTERM): new tasks are refused with
   * SHUTTING_DOWN, which hands them back to the queue, and the control plane is told, so it shows
   * the agent draining and offers it nothing more; running tasks get `graceMs` to finish. At the
   * end of the grace, or on {@link interrupt}, the ones still running end as AGENT_INTERRUPTED
   * (retryable). Then the agent waits, until the end of the grace (or `FLUSH_AFTER_INTERRUPT_MS`
   * after an interruption), for the control plane to acknowledge what is spooled, and closes.
   * Whatever is still unacknowledged then stays in the durable spool and goes out on the next
   * start.
   */
  async shutdown(options: { graceMs: number }): Promise<ShutdownOutcome> {
    const graceEnds = this.clock.now() + options.graceMs;
    this.executor.refuseNew();
    this.log.info(
      { running: this.executor.busy, graceMs: options.graceMs },
      'agent shutting down: new tasks are refused, running ones may finish',
    );
    // onReady reports it too if the session being set up right now already sent an older hello.
    this.reportState();
    let graceTimer: NodeJS.Timeout | undefined;
    const cutShort = new Promise<'grace' | 'interrupt'>((resolve) => {
      this.cutShutdownShort = () => resolve('interrupt');
      graceTimer = setTimeout(() => resolve('grace'), options.graceMs);
    });
    const how = await Promise.race([this.executor.settled().then(() => 'finished' as const), cutShort]);
    clearTimeout(graceTimer);
    let interrupted = 0;
    if (how !== 'finished') {
      interrupted = this.interruptRunning(
        how === 'grace'
          ? `the agent shut down and the task did not finish within the ${options.graceMs} ms shutdown grace`
          : 'the agent was told to stop at once while the task was running',
      );
      if (interrupted > 0)
        this.log.warn({ interrupted, why: how }, 'running tasks interrupted by the shutdown (AGENT_INTERRUPTED)');
      await this.executor.settled();
    }
    const flushUntil = how === 'finished' ? graceEnds : this.clock.now() + FLUSH_AFTER_INTERRUPT_MS;
    await this.close(flushUntil);
    return { interrupted, unacknowledged: this.spool.size };
  }

  /**
   * A second signal: while tasks run, they end as AGENT_INTERRUPTED now and a short flush
   * follows; during the flush, it stops waiting for the control plane.
   */
  interrupt(): void {
    if (this.flushing) this.flushCut = true;
    else this.cutShutdownShort();
  }

  private interruptRunning(message: string): number {
    return this.executor.abortAll({ code: FailureCodes.AGENT_INTERRUPTED, message, retryable: true });
  }

  /** Waits, until `flushUntil` at most, for the spool to be acknowledged; then closes. */
  private async close(flushUntil: number): Promise<void> {
    this.drain.close();
    this.recordStatus(() => this.status.stopped());
    clearInterval(this.pruneTimer);
    clearTimeout(this.disconnectTimer);
    this.flushing = true;
    while (this.spool.size > 0 && this.clock.now() < flushUntil && !this.flushCut) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const left = this.spool.size;
    if (left > 0)
      this.log.warn(
        { unacknowledged: left, connected: this.connection.isReady },
        'reports not yet acknowledged by the control plane stay in the spool and go out on the next start',
      );
    this.unsubscribe?.();
    await this.connection.stop();
    // The acknowledgements logged without a write of their own, so the next start resends less.
    try {
      await this.stateLog.flushed();
      this.stateLog.close();
    } catch (err) {
      this.log.warn({ err }, 'writing the agent log at stop failed; the next start resends what it lost');
    }
  }

  /** The state the control plane must hear: only the operator's drain (it knows its own) and the shutdown. */
  private stateNow(): ReportedState {
    const { enabled, message } = this.drain.local;
    return { drain: { enabled, message }, shuttingDown: this.executor.shuttingDown };
  }

  /**
   * Tells the control plane of a session that is up the state it has not heard yet: in an
   * AgentState frame, or, to a control plane that does not take one, with a fresh hello.
   */
  private reportState(): void {
    if (!this.connection.isReady || !this.reported) return;
    const now = this.stateNow();
    if (sameDrain(now.drain, this.reported.drain) && now.shuttingDown === this.reported.shuttingDown) return;
    if (!this.liveState) {
      this.connection.restart('the agent state (local drain, shutdown) changed; reconnecting to report it');
      return;
    }
    this.connection.send({
      agentState: {
        draining: now.drain.enabled,
        drainMessage: now.drain.enabled ? drainMessage(now.drain) : '',
        shuttingDown: now.shuttingDown,
      },
    });
    this.reported = now;
  }

  private hello() {
    this.drain.refresh();
    const state = this.stateNow();
    this.reported = state;
    const drain = state.drain;
    return buildHello({
      agentId: this.opts.credential.agentId,
      zone: this.opts.credential.zone,
      slots: this.opts.slots,
      plugins: this.opts.plugins.infos(),
      agentVersion: AGENT_VERSION,
      hostname: this.opts.hostname ?? os.hostname(),
      running: heldAttempts(this.executor.running(), this.spool.pendingResults()),
      draining: drain.enabled,
      drainMessage: drainMessage(drain),
      shuttingDown: state.shuttingDown,
    });
  }

  private onReady(welcome: Welcome): void {
    this.liveState = welcome.acceptsAgentState;
    clearTimeout(this.disconnectTimer);
    this.disconnectTimer = undefined;
    const pending = this.spool.pending();
    this.log.info(
      {
        sessionId: welcome.sessionId,
        url: this.connection.url,
        heartbeatIntervalMs: welcome.heartbeatIntervalMs,
        idleHeartbeatIntervalMs: welcome.idleHeartbeatIntervalMs,
        spooled: pending.length,
        running: this.executor.busy,
        ...(welcome.pace ? { reportsPerSecond: welcome.pace.perSecond } : {}),
      },
      'agent connected',
    );
    this.outbox.start(welcome.pace, pending, welcome.maxFrameBytes, welcome.acceptsReportBatch);
    this.recordStatus(() => this.status.connected(welcome.sessionId));
    // The drain or the shutdown may have changed between the hello and the welcome.
    this.drain.refresh();
    this.reportState();
  }

  private onFrame(frame: ServerFrame): void {
    switch (frame.body) {
      case 'assign':
        this.executor.assign(frame.assign!);
        return;
      case 'cancel':
        this.executor.cancel(frame.cancel!);
        return;
      case 'ack': {
        const seqs = frame.ack!.spoolSeqs ?? [];
        this.spool.ack(seqs);
        this.outbox.acked(seqs);
        return;
      }
      case 'drain':
        this.onServerDrain(frame.drain!);
        return;
      case 'credential':
        this.onRotatedCredential(frame.credential!.credential);
        return;
      default:
        return;
    }
  }

  /**
   * The control plane rotated this agent's credential. It is on disk (atomically replacing
   * agent.json) before it is used: a crash before the write leaves the old one, which keeps
   * working until the control plane has seen the new one; a crash after leaves the new one, which
   * already works. Then it tells the control plane, which retires the old one; one that does not
   * take that frame hears it from the agent reconnecting with the new credential.
   */
  private onRotatedCredential(credential: string): void {
    if (!credential || credential === this.credential.credential) return;
    const next = { ...this.credential, credential };
    try {
      writeCredential(this.opts.stateDir, next);
    } catch (err) {
      // Keep the old credential: it still works, and the next session offers the new one again.
      this.log.error({ err }, 'storing the rotated agent credential failed; keeping the current one');
      return;
    }
    this.credential = next;
    this.connection.setCredential(credential);
    if (this.liveState) {
      this.log.info('agent credential rotated and saved; the next connection uses it');
      this.connection.send({ credentialStored: { credential } });
      return;
    }
    this.log.info('agent credential rotated and saved; reconnecting with the new one');
    this.connection.restart('switching to the rotated credential');
  }

  private onServerDrain(drain: { enabled?: boolean | null; message?: string | null }): void {
    const record = { enabled: drain.enabled === true, message: drain.message ?? '' };
    // The control plane repeats its drain after every welcome: only a change is stored and logged.
    if (sameDrain(record, this.drain.server)) {
      this.connection.send({ ack: { spoolSeqs: [] } });
      return;
    }
    try {
      this.drain.setServer(record);
    } catch (err) {
      // Not acknowledged: the control plane sends the drain again on the next session.
      this.log.error({ err }, 'storing the control plane drain failed');
      this.connection.restart('the control plane drain could not be stored');
      return;
    }
    this.log.info(
      { draining: record.enabled, drainMessage: record.enabled ? drainMessage(record) : undefined },
      record.enabled
        ? 'maintenance drain set by the control plane; new backups are refused'
        : 'maintenance drain lifted by the control plane',
    );
    // agent.proto: the agent acknowledges a Drain with an (empty) Ack.
    this.connection.send({ ack: { spoolSeqs: [] } });
  }

  private onLocalDrainChange(record: DrainRecord): void {
    this.log.info(
      {
        draining: record.enabled,
        drainMessage: record.enabled ? drainMessage(record) : undefined,
      },
      record.enabled ? 'agent drained locally; new backups are refused' : 'local drain lifted',
    );
    this.reportState();
  }

  /** The status file is for humans: failing to write it is logged and never stops the agent. */
  private recordStatus(write: () => void): void {
    try {
      write();
    } catch (err) {
      this.log.warn({ err }, 'writing the agent status file failed');
    }
  }

  private onLost(): void {
    this.outbox.stop();
    this.recordStatus(() => this.status.lost());
    if (this.disconnectTimer) return;
    const limit = this.opts.disconnectAbortMs;
    this.disconnectTimer = setTimeout(() => {
      this.disconnectTimer = undefined;
      const aborted = this.executor.abortBackups({
        code: FailureCodes.AGENT_DISCONNECTED,
        message: `the agent lost its connection to the control plane for more than ${limit} ms`,
        retryable: true,
      });
      if (aborted > 0)
        this.log.warn(
          { aborted, disconnectAbortMs: limit },
          'running backups aborted: cut off from the control plane for too long',
        );
    }, limit);
    this.disconnectTimer.unref();
  }
}
