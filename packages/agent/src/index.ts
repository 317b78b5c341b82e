/**
 * @cairn/agent: the Cairn agent as a library (the `cairn-agent` bin is `main.ts`). It hosts
 * plugins through `@cairn/plugin-sdk/host` (loader, registry, guard, worker threads).
 *
 * @example
 * import { AGENT_PACKAGES, Agent, readCredential, createLogger, systemClock } from '@cairn/agent';
 * import { loadPlugins, PluginRegistry } from '@cairn/plugin-sdk/host';
 * const { plugins } = await loadPlugins(['@cairn/plugin-dummy'], { fallback: AGENT_PACKAGES });
 * const agent = new Agent({ stateDir, credential: readCredential(stateDir)!, plugins: new PluginRegistry(plugins),
 *   slots: 2, disconnectAbortMs: 600_000, taskTimeoutMs: 21_600_000, clock: systemClock, log: createLogger('info') });
 * agent.start();
 */
export { Agent, type AgentOptions } from './agent.js';
export { systemClock, type Clock } from './clock.js';
export { parseRunConfig, RUN_DEFAULTS, RUN_ENV, type RunConfig, type RunFlags } from './config.js';
export { enroll, EnrollError, type EnrollOptions } from './enroll.js';
export { createLogger, LOG_LEVELS, type Logger, type LogLevel } from './logger.js';
export { AGENT_PACKAGES } from './plugins.js';
export { AGENT_VERSION } from './version.js';

export { Executor, JOURNAL_RETENTION_MS, type ExecutorOptions } from './executor/executor.js';
export { decideAssign, type AssignDecision, type AssignFacts, type RejectReason } from './executor/rules.js';
export { fitResult, resultOutcome, type ResultOutcome } from './executor/results.js';

export {
  AgentConnection,
  type ConnectionHandlers,
  type ConnectionOptions,
  type ServerFrame,
} from './session/connection.js';
export { buildHello, checkServerFrame, CloseCodes, type FrameVerdict, type HelloFacts } from './session/handshake.js';
export { Heartbeat, peerSilent, SILENCE_INTERVALS, type HeartbeatOptions } from './session/heartbeat.js';
export { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './session/reconnect.js';
export { agentSocketUrl, AGENT_SOCKET_PATH } from './session/url.js';

export {
  recordEnvelope,
  Spool,
  type ReportBodies,
  type ReportKind,
  type SpoolOptions,
  type SpoolRecord,
} from './spool/spool.js';
export {
  CREDENTIAL_FILE,
  credentialPath,
  readCredential,
  writeCredential,
  type AgentCredential,
} from './state/credential.js';
export {
  DEFAULT_DRAIN_MESSAGE,
  DRAIN_FILE,
  DrainState,
  drainPath,
  effectiveDrain,
  readDrain,
  readServerDrain,
  SERVER_DRAIN_FILE,
  serverDrainPath,
  writeDrain,
  type DrainRecord,
} from './state/drain.js';
export { TaskJournal, type JournalEntry } from './state/journal.js';
export { AgentLog, type AgentLogOptions, type LogEntry } from './state/wal.js';
