/**
 * @cairn/plugin-sdk/host: the rules a host applies around plugin code — how a call is guarded
 * (cancel, timeout, abort grace), how whatever a plugin throws becomes a failure, and how its
 * results and reports are checked. The Cairn agent and `@cairn/plugin-sdk/testing` both use
 * them, so a plugin's tests see exactly what the agent would make of it. Plugins do not need
 * this module.
 *
 * @example
 * import { guard, invoke, checkResult } from '@cairn/plugin-sdk/host';
 * const out = await guard((signal) => invoke(provider, 'backup', params, { ...ctx, signal }), { signal, timeoutMs });
 * const checked = out.ok ? checkResult('backup', out.value, params.mode) : out;
 */
export {
  abortFailure,
  DEFAULT_ABORT_GRACE_MS,
  failureOf,
  guard,
  TaskAbort,
  type Guarded,
  type GuardOptions,
  type TaskFailure,
} from './guard.js';
export { invoke } from './invoke.js';
export {
  MAX_EVENT_DATA_JSON,
  MAX_EVENT_TYPE,
  MAX_REPORT_MESSAGE,
  normalizeEvent,
  normalizeProgress,
  type EventRecord,
  type ProgressRecord,
} from './reports.js';
export {
  checkPreflight,
  MAX_CHECK_NAME,
  MAX_CHECK_TEXT,
  MAX_PREFLIGHT_CHECKS,
  MAX_PREFLIGHT_JSON,
  secretStrings,
  SYNTHETIC_CHECK,
  type CheckedPreflight,
  type PreflightReport,
} from './preflight.js';
export { checkResult, INVALID_RESULT, toPlain, type BackupRecord, type CheckedResult } from './results.js';
