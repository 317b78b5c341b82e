import { FailureCodes, isPluginError } from '../errors.js';

/** How a task failed, as reported to the control plane. */
export interface TaskFailure {
  code: string;
  message: string;
  retryable: boolean;
}

export type Guarded<T> = { ok: true; value: T } | { ok: false; failure: TaskFailure };

/**
 * The reason the agent aborts a task's signal with: it carries the failure the task ends with
 * (CANCELLED, AGENT_DISCONNECTED, SUPERSEDED, ...), whatever the plugin does afterwards.
 *
 * @example controller.abort(new TaskAbort({ code: 'CANCELLED', message: 'cancelled through the API', retryable: false }));
 */
export class TaskAbort extends Error {
  override readonly name = 'TaskAbort';
  constructor(readonly failure: TaskFailure) {
    super(failure.message);
  }
}

/** setTimeout fires at once for delays above 2^31-1 ms; cap instead of surprising anyone. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_CODE = 100;
const MAX_MESSAGE = 4000;

/** Reads a property without letting a hostile getter throw into the agent. */
function safeGet(obj: unknown, key: string): unknown {
  try {
    return (obj as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

function safeText(value: unknown, fallback: string, max: number): string {
  let text: string;
  try {
    text = typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
  } catch {
    text = '';
  }
  text = text.trim();
  if (text === '') return fallback;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Maps an abort reason to the failure it stands for; a bare abort is a cancel. */
export function abortFailure(reason: unknown): TaskFailure {
  if (reason instanceof TaskAbort) return reason.failure;
  return { code: FailureCodes.CANCELLED, message: 'the task was cancelled', retryable: false };
}

/** Maps anything a plugin threw or rejected with to a typed failure. */
export function failureOf(err: unknown): TaskFailure {
  if (isPluginError(err)) {
    return {
      code: safeText(err.code, FailureCodes.PLUGIN_CRASHED, MAX_CODE),
      message: safeText(err.message, 'the plugin failed without a message', MAX_MESSAGE),
      retryable: safeGet(err, 'retryable') === true,
    };
  }
  const message = err instanceof Error ? safeGet(err, 'message') : err;
  return {
    code: FailureCodes.PLUGIN_CRASHED,
    message: safeText(message, 'the plugin failed without a message', MAX_MESSAGE),
    retryable: false,
  };
}

export interface GuardOptions {
  /** The task's signal: aborting it stops the call with the abort's failure. */
  signal: AbortSignal;
  /** The call is stopped with PLUGIN_TIMEOUT after this long. */
  timeoutMs: number;
  /**
   * After an abort or timeout, how long the plugin may take to wind down (and report what it
   * did, e.g. an "aborted" event) before the task ends without it. Default 5 s.
   */
  abortGraceMs?: number;
}

export const DEFAULT_ABORT_GRACE_MS = 5_000;

/**
 * The only way plugin code is called. Runs `call` with a signal that is aborted on cancel or
 * timeout, and turns every way it can go wrong into a {@link TaskFailure}:
 * a PluginError keeps its code; an abort ends with the abort's failure (CANCELLED by default);
 * running past `timeoutMs` gives PLUGIN_TIMEOUT; anything else thrown, synchronously or not,
 * gives PLUGIN_CRASHED with its message.
 *
 * Once stopped, the outcome is decided: the plugin gets `abortGraceMs` to settle (so a
 * well-behaved plugin finishes its last reports and cleanup inside the task), then the call is
 * abandoned, so a plugin that ignores its signal still ends the task. Whatever it does later is
 * ignored.
 *
 * @example
 * const out = await guard((signal) => provider.backup(req, { ...ctx, signal }), { signal, timeoutMs: 60_000 });
 * if (!out.ok) report(out.failure);
 */
export function guard<T>(call: (signal: AbortSignal) => Promise<T> | T, options: GuardOptions): Promise<Guarded<T>> {
  const { signal } = options;
  if (signal.aborted) return Promise.resolve({ ok: false, failure: abortFailure(signal.reason) });
  const inner = new AbortController();
  const graceMs = Math.min(Math.max(0, options.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS), MAX_TIMER_MS);
  return new Promise<Guarded<T>>((settle) => {
    let stopped: TaskFailure | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    // The first settle wins; later ones are no-ops, which is what makes the race safe.
    const end = (outcome: Guarded<T>) => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      signal.removeEventListener('abort', onAbort);
      settle(outcome);
    };
    const stop = (failure: TaskFailure) => {
      if (stopped) return;
      stopped = failure;
      clearTimeout(timer);
      inner.abort(new TaskAbort(failure));
      graceTimer = setTimeout(() => end({ ok: false, failure }), graceMs);
    };
    const onAbort = () => stop(abortFailure(signal.reason));
    const timer = setTimeout(
      () =>
        stop({
          code: FailureCodes.PLUGIN_TIMEOUT,
          message: `the plugin did not finish within ${options.timeoutMs} ms`,
          retryable: true,
        }),
      Math.min(Math.max(0, options.timeoutMs), MAX_TIMER_MS),
    );
    signal.addEventListener('abort', onAbort, { once: true });

    let pending: Promise<T>;
    try {
      pending = Promise.resolve(call(inner.signal));
    } catch (err) {
      return end({ ok: false, failure: stopped ?? failureOf(err) });
    }
    pending.then(
      // Once the agent stopped the call, its decision is the outcome, even if the plugin
      // finished anyway or rejected with an error of its own (usually an AbortError).
      (value) => end(stopped ? { ok: false, failure: stopped } : { ok: true, value }),
      (err: unknown) => end({ ok: false, failure: stopped ?? failureOf(err) }),
    );
  });
}
