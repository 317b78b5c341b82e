/**
 * @cairn/plugin-sdk/host: the plugin host — everything a program needs to host provider plugins
 * as the Cairn agent does: load a plugin package (its `"cairn"` field read before any of its
 * code runs), validate its manifest and negotiate the API version, run its operations on a
 * worker thread or inline, confined to the host paths it is granted, through one guard (cancel,
 * timeout, abort grace) that turns whatever a plugin throws into a failure, and check its results
 * and reports. The agent, the conformance kit and `@cairn/plugin-sdk/testing` all use it, so a
 * plugin's tests see exactly what the agent would make of it. Plugins never import this module.
 *
 * @example
 * import { loadPlugin, runOperation, checkResult } from '@cairn/plugin-sdk/host';
 * const plugin = await loadPlugin('cairn-plugin-acme');
 * const out = await runOperation({ plugin, operation: 'backup', connection, params, host, context, signal, timeoutMs });
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
  EVENT_PACE,
  normalizeEvent,
  PROGRESS_PACE,
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
export {
  inspectPlugin,
  loadPlugin,
  loadPlugins,
  PluginLoadError,
  type LoadedPlugin,
  type LoadOptions,
  type PluginFallback,
} from './loader.js';
export { checkManifest, SUPPORTED_API_VERSIONS, type ManifestCheck } from './manifest.js';
export { PLUGIN_ISOLATIONS, runOperation, type OperationCall, type PluginIsolation } from './operations.js';
export { DEFAULT_PLUGIN_HEAP_MB, PLUGIN_OUTPUT_LOGGED_BYTES } from './worker-pool.js';
export { PluginRegistry } from './registry.js';
