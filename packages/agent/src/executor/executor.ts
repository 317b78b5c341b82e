import type { HostAccess, Operation } from '@cairn/plugin-sdk';
import {
  runOperation,
  TaskAbort,
  type PluginIsolation,
  type PluginRegistry,
  type TaskFailure,
} from '@cairn/plugin-sdk/host';
import { FailureCodes } from '@cairn/proto/vocabulary';
import type { wire } from '@cairn/proto';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Spool } from '../spool/spool.js';
import { drainMessage, type DrainState } from '../state/drain.js';
import type { TaskJournal } from '../state/journal.js';
import { failureOutcome, fitResult, resultOutcome } from './results.js';
import { pageListing } from './sync-pages.js';
import { decideAssign, hostAccessFor, type AssignDecision } from './rules.js';
import { createTaskContext } from './task-context.js';

export interface ExecutorOptions {
  spool: Spool;
  journal: TaskJournal;
  plugins: PluginRegistry;
  drain: DrainState;
  /** How many tasks may run at once. */
  slots: number;
  /** Every operation ends with PLUGIN_TIMEOUT after this long. */
  taskTimeoutMs: number;
  /** How long a stopped (cancelled, timed out) plugin may take to wind down; see guard(). */
  abortGraceMs?: number;
  /** Where plugin code runs; see runOperation(). */
  pluginIsolation?: PluginIsolation;
  /** The heap of each plugin worker thread, in MB; see runOperation(). */
  pluginHeapMb?: number;
  /** Host directories host-path plugins may touch; see {@link hostAccessFor}. */
  roots: readonly string[];
  /** The agent's state directory: never backed up nor restored into. */
  stateDir: string;
  /** Stamps the journal and every report; times each task. */
  clock: Clock;
  log: Logger;
}

interface ActiveTask {
  taskId: string;
  attempt: number;
  operation: Operation;
  controller: AbortController;
  done: Promise<void>;
}

/** Finished journal entries are kept this long to recognise re-sent assignments. */
export const JOURNAL_RETENTION_MS = 24 * 60 * 60 * 1000;

const key = (taskId: string, attempt: number) => `${taskId}#${attempt}`;

/**
 * Runs assignments: decides whether each may run ({@link decideAssign}), keeps the journal,
 * runs the operation through the plugin host and spools every report. Never throws into the
 * session: a task's failure is a spooled result.
 *
 * @example
 * const executor = new Executor({ spool, journal, plugins, drain, slots: 2, taskTimeoutMs, roots, stateDir, clock, log });
 * executor.recoverInterrupted();
 * executor.assign(frame.assign);
 */
export class Executor {
  private readonly active = new Map<string, ActiveTask>();
  private refusing = false;

  constructor(private readonly opts: ExecutorOptions) {}

  /** From now on every new assignment is rejected with SHUTTING_DOWN; running tasks go on. */
  refuseNew(): void {
    this.refusing = true;
  }

  get shuttingDown(): boolean {
    return this.refusing;
  }

  /**
   * Ends every attempt the journal still calls running: the process died under it. Spools an
   * AGENT_INTERRUPTED result so the control plane never waits for it forever. Run once, before
   * any assignment.
   */
  recoverInterrupted(now = this.opts.clock.now()): number {
    const { journal, spool, log } = this.opts;
    let ended = 0;
    for (const entry of journal.running()) {
      // A result already spooled means the process died between spooling it and updating the
      // journal: that result stands.
      if (!spool.hasResult(entry.taskId, entry.attempt)) {
        spool.append('result', {
          taskId: entry.taskId,
          attempt: entry.attempt,
          ...failureOutcome({
            code: FailureCodes.AGENT_INTERRUPTED,
            message: 'agent restarted while the task was running',
            retryable: true,
          }),
          atMs: now,
        });
      }
      journal.finish(entry.taskId, entry.attempt, now);
      log.warn(
        { taskId: entry.taskId, attempt: entry.attempt, operation: entry.operation },
        'task interrupted by an agent restart',
      );
      ended++;
    }
    journal.prune(JOURNAL_RETENTION_MS, now);
    return ended;
  }

  /** Handles one TaskAssign frame; returns what was decided (for logs and tests). */
  assign(frame: wire.ITaskAssign): AssignDecision {
    const { journal, plugins, drain, spool, clock, log } = this.opts;
    const taskId = frame.taskId ?? '';
    const attempt = frame.attempt ?? 0;
    const pluginName = frame.plugin ?? '';
    // The operator may have drained the agent a moment ago from another process.
    drain.refresh();
    const entry = journal.get(taskId);
    const decision = decideAssign({
      taskId,
      attempt,
      operation: frame.operation ?? '',
      plugin: pluginName,
      paramsJson: frame.paramsJson ?? '',
      providerConfigJson: frame.providerConfigJson ?? '',
      journal: entry && { attempt: entry.attempt, state: entry.state },
      capabilities: plugins.get(pluginName)?.manifest.capabilities,
      freeSlots: this.opts.slots - this.active.size,
      drain: { enabled: drain.current.enabled, message: drainMessage(drain.current) },
      shuttingDown: this.refusing,
    });
    const tlog = log.child({ taskId, attempt, operation: frame.operation, plugin: pluginName });
    const host = hostAccessFor(frame.tenantId ?? '', this.opts.roots, [this.opts.stateDir]);
    if ((decision.action === 'run' || decision.action === 'reject') && decision.supersedes !== undefined) {
      this.abortOne(taskId, decision.supersedes, {
        code: FailureCodes.SUPERSEDED,
        message: `attempt ${decision.supersedes} was superseded by attempt ${attempt}`,
        retryable: false,
      });
    }
    switch (decision.action) {
      case 'ignore':
        tlog.info({ why: decision.why }, 'assignment ignored');
        break;
      case 're-acknowledge':
        spool.append('accepted', { taskId, attempt, atMs: clock.now() });
        tlog.info('assignment re-acknowledged; the attempt is already running');
        break;
      case 'reject': {
        const at = clock.now();
        // Journaled so that the same attempt, sent again, is not accepted after being rejected.
        journal.record({
          taskId,
          attempt,
          operation: frame.operation ?? '',
          plugin: pluginName,
          state: 'rejected',
          startedAt: at,
          endedAt: at,
        });
        spool.append('rejected', {
          taskId,
          attempt,
          reasonCode: decision.reasonCode,
          message: decision.message,
          atMs: at,
        });
        tlog.info({ reasonCode: decision.reasonCode, reason: decision.message }, 'assignment rejected');
        break;
      }
      case 'run':
        this.start(taskId, attempt, pluginName, decision, host, tlog);
        break;
    }
    return decision;
  }

  /** Handles a Cancel frame: aborts the attempt if it runs here; otherwise nothing. */
  cancel(frame: wire.ICancel): boolean {
    const taskId = frame.taskId ?? '';
    const attempt = frame.attempt ?? 0;
    const reason = frame.reason?.trim() || 'the task was cancelled';
    for (const task of this.active.values()) {
      if (task.taskId !== taskId || (attempt !== 0 && task.attempt !== attempt)) continue;
      this.opts.log.info({ taskId, attempt: task.attempt, reason }, 'cancelling task');
      task.controller.abort(new TaskAbort({ code: FailureCodes.CANCELLED, message: reason, retryable: false }));
      return true;
    }
    this.opts.log.debug({ taskId, attempt }, 'cancel for a task not running here ignored');
    return false;
  }

  /** Aborts every running backup (not restores or deletes) with `failure`; returns how many. */
  abortBackups(failure: TaskFailure): number {
    let n = 0;
    for (const task of this.active.values()) {
      if (task.operation !== 'backup' || task.controller.signal.aborted) continue;
      task.controller.abort(new TaskAbort(failure));
      n++;
    }
    return n;
  }

  /** Aborts every running task with `failure` (shutdown). */
  abortAll(failure: TaskFailure): number {
    let n = 0;
    for (const task of this.active.values()) {
      if (task.controller.signal.aborted) continue;
      task.controller.abort(new TaskAbort(failure));
      n++;
    }
    return n;
  }

  /** The attempts running right now, for hello and heartbeats. */
  running(): { taskId: string; attempt: number }[] {
    return [...this.active.values()].map((t) => ({ taskId: t.taskId, attempt: t.attempt }));
  }

  get busy(): number {
    return this.active.size;
  }

  /** Resolves when every task running now has ended and spooled its result. */
  async settled(): Promise<void> {
    await Promise.all([...this.active.values()].map((t) => t.done));
  }

  private abortOne(taskId: string, attempt: number, failure: TaskFailure): void {
    this.active.get(key(taskId, attempt))?.controller.abort(new TaskAbort(failure));
  }

  private start(
    taskId: string,
    attempt: number,
    pluginName: string,
    decision: Extract<AssignDecision, { action: 'run' }>,
    host: HostAccess,
    log: Logger,
  ): void {
    const { journal, spool, plugins, clock } = this.opts;
    const plugin = plugins.get(pluginName);
    if (!plugin) return; // decideAssign saw it loaded; the registry never changes
    const startedAt = clock.now();
    // Journal first: if the process dies from here on, the restart reports AGENT_INTERRUPTED.
    journal.record({
      taskId,
      attempt,
      operation: decision.operation,
      plugin: plugin.manifest.name,
      state: 'running',
      startedAt,
    });
    spool.append('accepted', { taskId, attempt, atMs: startedAt });
    log.info('task started');

    const controller = new AbortController();
    const task: ActiveTask = { taskId, attempt, operation: decision.operation, controller, done: Promise.resolve() };
    this.active.set(key(taskId, attempt), task);
    const run = async () => {
      // The plugin starts only once `running` is on disk (the accepted report, in the same
      // batch, goes out then too): a restart must know an attempt may have run.
      await journal.durable();
      const ctx = { close: () => {} };
      const outcome = await runOperation({
        plugin,
        operation: decision.operation,
        connection: decision.connection,
        params: decision.params,
        host,
        signal: controller.signal,
        timeoutMs: this.opts.taskTimeoutMs,
        ...(this.opts.pluginIsolation === undefined ? {} : { isolation: this.opts.pluginIsolation }),
        ...(this.opts.pluginHeapMb === undefined ? {} : { heapMb: this.opts.pluginHeapMb }),
        ...(this.opts.abortGraceMs === undefined ? {} : { abortGraceMs: this.opts.abortGraceMs }),
        context: (signal) => {
          const made = createTaskContext({
            task: { taskId, attempt },
            signal,
            host,
            spool,
            clock,
            // Already bound to the task and its plugin (see assign).
            log,
          });
          ctx.close = made.close;
          return made.context;
        },
      });
      ctx.close();
      // A listing too large for one result goes as pages before it (the result counts them).
      const paged =
        decision.operation === 'sync' && outcome.ok
          ? await pageListing(outcome.value, { task: { taskId, attempt }, spool, clock, signal: controller.signal })
          : undefined;
      // The export target's secrets are the task's too: blanked from a preflight's report alike.
      const { credentials, exportTo } = decision.connection;
      const secrets = exportTo ? [credentials, exportTo.credentials] : credentials;
      const result = fitResult(paged ?? resultOutcome(decision.operation, outcome, decision.params['mode'], secrets));
      // Result before journal, in one log: the journal cannot say finished without the result.
      const endedAt = clock.now();
      spool.append('result', { taskId, attempt, ...result, atMs: endedAt });
      journal.finish(taskId, attempt, endedAt);
      await journal.durable();
      if ('ok' in result) log.info({ durationMs: endedAt - startedAt }, 'task succeeded');
      else
        log.warn(
          { code: result.error.code, error: result.error.message, durationMs: endedAt - startedAt },
          'task failed',
        );
    };
    task.done = run()
      .catch((err: unknown) => {
        // Only the agent's log failing (disk full, permissions) lands here.
        log.error({ err }, 'could not record the end of a task');
      })
      .finally(() => {
        this.active.delete(key(taskId, attempt));
      });
  }
}
