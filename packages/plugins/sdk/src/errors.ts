import { FailureCodes } from '@cairn/proto/vocabulary';

/**
 * A failure with a stable code. Plugins throw it; the agent reports `code`, `message` and
 * `retryable` to the control plane. Recognise it with {@link isPluginError}, never `instanceof`:
 * each plugin may bring its own copy of the SDK.
 *
 * @example throw new PluginError('REPO_LOCKED', 'repository is locked by another process', { retryable: true });
 */
export class PluginError extends Error {
  override readonly name = 'PluginError';
  readonly code: string;
  readonly retryable: boolean;
  constructor(code: string, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/**
 * The codes Cairn itself ends a task with (`CANCELLED`, `PLUGIN_TIMEOUT`, `PLUGIN_CRASHED`,
 * `AGENT_INTERRUPTED`, …), and the reasons an agent refuses a task; the same words the agent and
 * the control plane use (docs/plugins.md lists them).
 */
export {
  FAILURE_CODES,
  FailureCodes,
  REJECT_REASONS,
  RejectReasons,
  type FailureCode,
  type RejectReason,
} from '@cairn/proto/vocabulary';

/** @deprecated Use {@link FailureCodes}, which names every code by its value. */
export const ErrorCodes = {
  CANCELLED: FailureCodes.CANCELLED,
  TIMEOUT: FailureCodes.PLUGIN_TIMEOUT,
  PLUGIN_CRASHED: FailureCodes.PLUGIN_CRASHED,
  UNSUPPORTED_OPERATION: FailureCodes.UNSUPPORTED_OPERATION,
  INTERRUPTED: FailureCodes.AGENT_INTERRUPTED,
} as const;

/** True for anything shaped like a PluginError, from whichever copy of the SDK. */
export function isPluginError(
  err: unknown,
): err is { name: string; code: string; message: string; retryable?: boolean } {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as Record<string, unknown>;
  return e['name'] === 'PluginError' && typeof e['code'] === 'string' && typeof e['message'] === 'string';
}

/** True when `err` is the rejection of an aborted operation (AbortSignal). */
export function isAbortError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const name = (err as { name?: unknown }).name;
  return name === 'AbortError' || (isPluginError(err) && err.code === FailureCodes.CANCELLED);
}
