import { FailureCodes, PluginError } from '../errors.js';
import { confineRepository, confineRequest, TEST_HOST } from '../paths/index.js';
import type { HostAccess } from '../provider.js';
import { DEFAULT_ABORT_GRACE_MS, guard, TaskAbort, type TaskFailure } from '../host/guard.js';
import { invoke } from '../host/invoke.js';
import { normalizeEvent, normalizeProgress, type ProgressRecord } from '../host/reports.js';
import type { PreflightReport } from '../host/preflight.js';
import { checkResult, toPlain, type BackupRecord } from '../host/results.js';
import { validateManifest } from '../manifest-check.js';
import type { Operation, PluginManifest } from '../manifest.js';
import type {
  BackupRequest,
  BackupResult,
  ConfigureScheduleRequest,
  ConfigureScheduleResult,
  DeconfigureScheduleRequest,
  PruneResult,
  DeleteBackupRequest,
  ListedBackup,
  PowerStateRequest,
  PowerStateResult,
  PluginLogger,
  PreflightRequest,
  ProgressReport,
  ProviderConnection,
  ProviderOffering,
  ProviderPlugin,
  RestoreRequest,
  RestoreResult,
  RestoreVolumeRequest,
  TaskContext,
  TaskEvent,
} from '../provider.js';
import { SDK_API_VERSION } from '../version.js';

/** Each operation's request, and the value a successful run of it gives back. */
export interface OperationTypes {
  backup: { request: BackupRequest; result: BackupResult };
  restore: { request: RestoreRequest; result: RestoreResult };
  'restore-volume': { request: RestoreVolumeRequest; result: RestoreResult };
  /** Resolves with nothing, which crosses the worker boundary as `null`. */
  'delete-backup': { request: DeleteBackupRequest; result: null };
  /** Takes no request. */
  'list-offerings': { request: Record<string, never>; result: ProviderOffering[] };
  sync: { request: { locator?: unknown }; result: ListedBackup[] };
  /** The checked report: `{ok, message}` alone arrives as one check named `preflight`. */
  preflight: { request: PreflightRequest; result: PreflightReport };
  'power-state': { request: PowerStateRequest; result: PowerStateResult };
  'configure-schedule': { request: ConfigureScheduleRequest; result: ConfigureScheduleResult };
  /** Resolves with nothing, which crosses the worker boundary as `null`. */
  'deconfigure-schedule': { request: DeconfigureScheduleRequest; result: null };
  /** Takes no request; resolves with the plugin's summary (or nothing, as `null`). */
  prune: { request: Record<string, never>; result: PruneResult | null };
}

export interface MockTaskOptions {
  /** The provider connection's `config`. Default `{}`. */
  config?: Record<string, unknown>;
  /** The provider connection's (decrypted) `credentials`. Default `{}`. */
  credentials?: Record<string, unknown>;
  /** The provider connection's `endpoint`. Default `null`. */
  endpoint?: string | null;
  /** The repository identity the connection records (`ProviderConnection.identity`). Default none (as is `''`). */
  identity?: string;
  /** The connection this one exports into (`ProviderConnection.exportTo`). Default none. */
  exportTo?: ProviderConnection & { plugin: string };
  /** Default `task-1`. */
  taskId?: string;
  /** Default 1. */
  attempt?: number;
  /** The task timeout: past it a run fails with PLUGIN_TIMEOUT. Default 6 hours, as the agent's. */
  timeoutMs?: number;
  /** How long a cancelled or timed-out plugin may take to wind down before it is abandoned. Default 5 s, as the agent's. */
  abortGraceMs?: number;
  /** The SDK API versions the simulated agent hosts. Default `[SDK_API_VERSION]`. */
  hostApiVersions?: readonly number[];
  /** The clock for `atMs` stamps. Default `Date.now` (so fake timers apply). */
  now?: () => number;
  /** Called with each progress report as the agent would forward it (e.g. to cancel at a point). */
  onProgress?: (report: RecordedProgress) => void;
  /** Called with each event as the agent would forward it. */
  onEvent?: (event: RecordedEvent) => void;
  /** Called with each log line. */
  onLog?: (line: RecordedLog) => void;
  /**
   * What the task may touch on the host (the agent's roots for the task's tenant, and its own
   * state). Default: the system's temporary directory as the one root, nothing denied. For a
   * plugin that declares `host-paths`, every run is checked against it first, as the agent does.
   */
  host?: HostAccess;
}

/** A progress report as the agent forwards it (clamped, defaulted), with when it came. */
export interface RecordedProgress extends ProgressRecord {
  atMs: number;
}

/** A task event as the agent forwards it, with when it came. */
export interface RecordedEvent {
  type: string;
  message: string;
  /** Absent when the event had none, or it was too large to forward. */
  data?: Record<string, unknown>;
  atMs: number;
}

export interface RecordedLog {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
  atMs: number;
}

/** What one run recorded, however it ended. */
export interface MockRunRecord {
  /** Progress reports, in order. */
  progress: RecordedProgress[];
  /** Task events, in order. */
  events: RecordedEvent[];
  /** Log lines, in order. */
  logs: RecordedLog[];
  /**
   * What the agent would have adjusted or dropped (a percent out of range, an oversized event,
   * a report after the task ended). Empty for a plugin that reports cleanly.
   */
  notes: string[];
  /**
   * True when the plugin did not settle within the abort grace after a cancel or timeout: the
   * agent abandons such a call (and replaces its worker thread). A plugin should honour its signal.
   */
  abandoned: boolean;
}

/**
 * How a run ended, as the agent would report it: `ok` with the value the plugin resolved with
 * (its plain-JSON copy, as it crosses the worker boundary) and, for a backup, the checked
 * {@link BackupRecord}; or the {@link TaskFailure} the task would fail with. A result the agent
 * would refuse (a backup without `externalId`, output that is not JSON) is a PLUGIN_CRASHED
 * failure whose message says what is wrong.
 */
export type MockRun<Op extends Operation = Operation> = MockRunRecord &
  (
    | { ok: true; value: OperationTypes[Op]['result']; backup: Op extends 'backup' ? BackupRecord : undefined }
    | { ok: false; failure: TaskFailure }
  );

/** Thrown when the agent would not run the plugin, or the task, at all. */
export class PluginRefusedError extends Error {
  override readonly name = 'PluginRefusedError';
}

type RunArgs<Op extends Operation> = Op extends 'list-offerings'
  ? [request?: OperationTypes[Op]['request']]
  : [request: OperationTypes[Op]['request']];

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

function reasonText(reason: unknown): string {
  const message = (reason as { message?: unknown } | null | undefined)?.message;
  return typeof message === 'string' ? message : 'aborted';
}

/**
 * Runs a plugin's operations as the Cairn agent would, without an agent: like Temporal's
 * `MockActivityEnvironment`, it hands the operation a task context that records every progress
 * report, event and log line, can be cancelled mid-operation, and checks what the operation
 * returns with the agent's own rules (`@cairn/plugin-sdk/host`). The constructor checks the
 * manifest as the agent does at start.
 *
 * What the plugin sees follows the agent's default (worker) isolation: requests, connection,
 * reports and results are plain-JSON copies, and a cancel aborts `ctx.signal` with an
 * `AbortError` whose message is the reason.
 *
 * @example
 * import { MockTaskEnvironment } from '@cairn/plugin-sdk/testing';
 * import plugin from 'cairn-plugin-acme';
 *
 * const env = new MockTaskEnvironment(plugin, { config: { repository: '/srv/repo' } });
 * const run = await env.run('backup', { instanceId: 'i-1', instanceName: 'web', locator: {}, mode: 'FULL' });
 * if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
 * console.log(run.backup.externalId, run.progress.map((p) => p.percent));
 *
 * // Cancel once the operation is under way:
 * const cancelling = new MockTaskEnvironment(plugin, { onProgress: () => cancelling.cancel('stop') });
 * const stopped = await cancelling.run('backup', req); // → ok: false, failure.code 'CANCELLED'
 */
export class MockTaskEnvironment {
  /** The manifest as the agent would see it (validated, unknown fields dropped). */
  readonly manifest: PluginManifest;
  /** The SDK API version the agent and the plugin would agree on. */
  readonly apiVersion: number;
  private readonly active = new Set<AbortController>();

  /** @throws PluginRefusedError when the agent would refuse to load the plugin. */
  constructor(
    private readonly plugin: ProviderPlugin,
    private readonly options: MockTaskOptions = {},
  ) {
    if (typeof plugin !== 'object' || plugin === null || typeof plugin.createProvider !== 'function') {
      throw new PluginRefusedError('the agent would refuse this plugin: it has no createProvider function');
    }
    const check = validateManifest(plugin.manifest, options.hostApiVersions ?? [SDK_API_VERSION]);
    if (!check.ok) throw new PluginRefusedError(`the agent would refuse this plugin: ${check.problem}`);
    this.manifest = check.manifest;
    this.apiVersion = check.apiVersion;
  }

  /** How many runs are under way. */
  get running(): number {
    return this.active.size;
  }

  /**
   * Runs one operation to its end and resolves with how it ended and what it recorded. Never
   * rejects for anything the plugin does.
   *
   * Rejects with a PluginRefusedError when the agent would reject the task before running it:
   * the manifest does not list the operation, or the request is not a JSON object.
   */
  async run<Op extends Operation>(operation: Op, ...args: RunArgs<Op>): Promise<MockRun<Op>> {
    if (!this.manifest.capabilities.includes(operation)) {
      throw new PluginRefusedError(
        `the agent would reject this task (UNSUPPORTED_OPERATION): ${this.manifest.name} does not list ${operation} in its capabilities`,
      );
    }
    let params: unknown;
    try {
      params = toPlain(args[0] ?? {});
    } catch (err) {
      throw new PluginRefusedError(`the request is not JSON: ${(err as Error).message}`);
    }
    if (typeof params !== 'object' || params === null || Array.isArray(params)) {
      throw new PluginRefusedError('the agent would reject this task (BAD_PARAMS): the request must be a JSON object');
    }
    const controller = new AbortController();
    // Registered before the first await, so a cancel() right after run() reaches this run.
    this.active.add(controller);
    try {
      return (await this.execute(operation, params as Record<string, unknown>, controller)) as MockRun<Op>;
    } finally {
      this.active.delete(controller);
    }
  }

  /**
   * Cancels every run under way, as a cancel through the API does: the plugin's signal is
   * aborted and the run fails with CANCELLED and `reason`, whatever the plugin does next.
   * Returns whether there was anything to cancel.
   */
  cancel(reason = 'the task was cancelled'): boolean {
    return this.abort({ code: FailureCodes.CANCELLED, message: reason, retryable: false });
  }

  /**
   * Aborts every run under way with `failure`, as the agent does on other stops (e.g.
   * `AGENT_INTERRUPTED` at shutdown). Returns whether there was anything to abort.
   */
  abort(failure: TaskFailure): boolean {
    let any = false;
    for (const controller of this.active) {
      if (controller.signal.aborted) continue;
      controller.abort(new TaskAbort(failure));
      any = true;
    }
    return any;
  }

  private async execute(
    operation: Operation,
    params: Record<string, unknown>,
    controller: AbortController,
  ): Promise<MockRun> {
    const { options, plugin } = this;
    const now = options.now ?? Date.now;
    const record: MockRunRecord = { progress: [], events: [], logs: [], notes: [], abandoned: false };
    let ended = false;
    let settled = false;
    const late = (what: string): void => {
      record.notes.push(`${what} after the task ended was dropped`);
    };

    const log =
      (level: (typeof LEVELS)[number]) =>
      (obj: object | string, msg?: string): void => {
        if (ended) return late(`a ${level} log line`);
        let fields: Record<string, unknown>;
        try {
          fields = typeof obj === 'string' ? {} : (toPlain(obj) as Record<string, unknown>);
        } catch (err) {
          record.notes.push(`a ${level} log line was dropped: ${(err as Error).message}`);
          return;
        }
        const line: RecordedLog = {
          level,
          message: typeof obj === 'string' ? obj : (msg ?? ''),
          fields: fields ?? {},
          atMs: now(),
        };
        record.logs.push(line);
        options.onLog?.(line);
      };
    const logger = Object.fromEntries(LEVELS.map((level) => [level, log(level)])) as unknown as PluginLogger;

    const connection = toPlain({
      endpoint: options.endpoint ?? null,
      config: options.config ?? {},
      credentials: options.credentials ?? {},
      ...(options.identity ? { identity: options.identity } : {}),
      ...(options.exportTo ? { exportTo: options.exportTo } : {}),
    }) as ProviderConnection;

    const host: HostAccess = toPlain(options.host ?? TEST_HOST) as HostAccess;
    const hostPaths = this.manifest.capabilities.includes('host-paths');
    const call = (signal: AbortSignal): Promise<unknown> => {
      // In its worker thread, the plugin's signal is aborted with an AbortError naming the reason.
      const own = new AbortController();
      const forward = () => {
        const reason = new Error(reasonText(signal.reason));
        reason.name = 'AbortError';
        own.abort(reason);
      };
      if (signal.aborted) forward();
      else signal.addEventListener('abort', forward, { once: true });
      const context: TaskContext = {
        taskId: options.taskId ?? 'task-1',
        attempt: options.attempt ?? 1,
        signal: own.signal,
        logger,
        host,
        progress(report: ProgressReport): void {
          // The copy is made in the plugin's thread, so what JSON cannot carry throws into the plugin.
          const copy = toPlain(report ?? {}) as ProgressReport;
          if (ended) return late('a progress report');
          let recorded: RecordedProgress;
          try {
            recorded = { ...normalizeProgress(copy, record.notes), atMs: now() };
          } catch (err) {
            record.notes.push(`a progress report was dropped: ${(err as Error).message}`);
            return;
          }
          record.progress.push(recorded);
          options.onProgress?.(recorded);
        },
        event(event: TaskEvent): void {
          const copy = toPlain(event ?? {}) as TaskEvent;
          if (ended) return late('an event');
          let recorded: RecordedEvent;
          try {
            const e = normalizeEvent(copy, record.notes);
            recorded = {
              type: e.type,
              message: e.message,
              ...(e.dataJson === '' ? {} : { data: JSON.parse(e.dataJson) as Record<string, unknown> }),
              atMs: now(),
            };
          } catch (err) {
            record.notes.push(`an event was dropped: ${(err as Error).message}`);
            return;
          }
          record.events.push(recorded);
          options.onEvent?.(recorded);
        },
      };
      const pending = (async () => {
        if (hostPaths) {
          await confineRequest(operation, params, host);
          await confineRepository(connection.endpoint, host, 'endpoint');
        }
        if (connection.exportTo) await confineRepository(connection.exportTo.endpoint, host, 'exportTo.endpoint');
        const provider = plugin.createProvider(connection);
        if (typeof provider !== 'object' || provider === null) {
          throw new PluginError(FailureCodes.PLUGIN_CRASHED, 'createProvider() returned no provider');
        }
        // The result crosses the worker boundary as a plain copy too.
        return toPlain(await invoke(provider, operation, params, context));
      })();
      return pending.finally(() => {
        settled = true;
        signal.removeEventListener('abort', forward);
      });
    };

    const outcome = await guard(call, {
      signal: controller.signal,
      timeoutMs: options.timeoutMs ?? 6 * 60 * 60_000,
      abortGraceMs: options.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS,
    });
    ended = true;
    record.abandoned = !settled;
    if (!outcome.ok) return { ...record, ok: false, failure: outcome.failure };
    const checked = checkResult(operation, outcome.value, params['mode'], {
      credentials: connection.exportTo
        ? [connection.credentials, connection.exportTo.credentials]
        : connection.credentials,
    });
    if (!checked.ok) return { ...record, ok: false, failure: checked.failure };
    // A preflight's value is what the agent reports of it: the checked report.
    const value = operation === 'preflight' ? (JSON.parse(checked.outputJson) as unknown) : outcome.value;
    return { ...record, ok: true, value: value as never, backup: checked.backup as never };
  }
}
