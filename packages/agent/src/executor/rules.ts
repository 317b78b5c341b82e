import path from 'node:path';
import type { HostAccess, ProviderConnection } from '@cairn/plugin-sdk';
import {
  HELD_BY_MAINTENANCE,
  isOperation,
  RejectReasons,
  type Operation,
  type RejectReason,
} from '@cairn/proto/vocabulary';

/** Reasons an agent rejects an assignment (TaskRejected.reason_code). */
export type { RejectReason } from '@cairn/proto/vocabulary';

/** Everything the assign rule looks at; gathered by the executor, decided here without I/O. */
export interface AssignFacts {
  taskId: string;
  attempt: number;
  operation: string;
  plugin: string;
  paramsJson: string;
  providerConfigJson: string;
  /** What the journal knows about this task's latest attempt. */
  journal: { attempt: number; state: 'running' | 'finished' | 'rejected' } | undefined;
  /** Capabilities of the named plugin; undefined when it is not loaded. */
  capabilities: readonly string[] | undefined;
  /** Slots not taken by running tasks. */
  freeSlots: number;
  drain: { enabled: boolean; message: string };
  /** The process is stopping (SIGTERM): every new attempt is refused, whatever its operation. */
  shuttingDown: boolean;
}

export type AssignDecision =
  | {
      action: 'run';
      operation: Operation;
      params: Record<string, unknown>;
      connection: ProviderConnection;
      /** An older attempt of the same task that is still running and must be stopped. */
      supersedes?: number;
    }
  /** The attempt is already running here: say `accepted` again, do not run it twice. */
  | { action: 're-acknowledge' }
  /** Nothing to send: a stale or finished attempt (its reports are spooled or acknowledged). */
  | { action: 'ignore'; why: string }
  | { action: 'reject'; reasonCode: RejectReason; message: string; supersedes?: number };

function parseObject(json: string, what: string): Record<string, unknown> | string {
  if (json.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    return `${what} is not valid JSON: ${(err as Error).message}`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${what} must be a JSON object`;
  return value as Record<string, unknown>;
}

function objectOr(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function connectionOf(config: Record<string, unknown>): ProviderConnection {
  return {
    endpoint: typeof config['endpoint'] === 'string' ? config['endpoint'] : null,
    config: objectOr(config['config']),
    credentials: objectOr(config['credentials']),
    // The repository the connection reached before, once the control plane recorded one.
    ...(typeof config['identity'] === 'string' && config['identity'] !== '' ? { identity: config['identity'] } : {}),
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The connection's export target, `exportTo: {plugin, endpoint, config, credentials, identity?}`:
 * undefined when absent, a message naming the field when its shape is wrong (one hop only: it
 * has no `exportTo` of its own). Its endpoint, when a host path, is judged with the task's own
 * before the plugin runs (`confineRepository`).
 */
function exportTarget(value: unknown): (ProviderConnection & { plugin: string }) | undefined | string {
  if (value === undefined || value === null) return undefined;
  const at = 'provider_config_json.exportTo';
  if (!isObject(value)) return `${at} must be a JSON object {plugin, endpoint, config, credentials, identity?}`;
  const allowed = ['plugin', 'endpoint', 'config', 'credentials', 'identity'];
  const unknown = Object.keys(value).find((k) => !allowed.includes(k));
  if (unknown !== undefined)
    return `${at}.${unknown} is not allowed (an export target names no export target of its own)`;
  const { plugin, endpoint, config, credentials, identity } = value;
  if (typeof plugin !== 'string' || plugin === '') return `${at}.plugin must be a plugin name`;
  if (endpoint !== null && typeof endpoint !== 'string') return `${at}.endpoint must be a string or null`;
  if (!isObject(config)) return `${at}.config must be a JSON object`;
  if (!isObject(credentials)) return `${at}.credentials must be a JSON object`;
  if (identity !== undefined && typeof identity !== 'string') return `${at}.identity must be a string`;
  return { plugin, ...connectionOf(value) };
}

/**
 * May this assignment run? Decides, in order: stale or repeated attempts (at most once per
 * attempt), then whether the agent is shutting down (it takes nothing new, so the control plane
 * gives the task to another agent or to this one after its restart), then what the agent can do
 * (plugin, operation, parameters), then what it is willing to do right now (drain, slots).
 *
 * @example decideAssign({ ...facts, journal: { attempt: 2, state: 'running' }, attempt: 2 }) // → { action: 're-acknowledge' }
 */
export function decideAssign(f: AssignFacts): AssignDecision {
  if (f.taskId === '' || !Number.isInteger(f.attempt) || f.attempt < 1) {
    return { action: 'ignore', why: 'the assignment has no task id or attempt' };
  }
  if (f.journal && f.attempt < f.journal.attempt) {
    return { action: 'ignore', why: `attempt ${f.attempt} is older than attempt ${f.journal.attempt} known here` };
  }
  if (f.journal && f.attempt === f.journal.attempt) {
    if (f.journal.state === 'running') return { action: 're-acknowledge' };
    return { action: 'ignore', why: `attempt ${f.attempt} is already ${f.journal.state} here` };
  }
  // A newer attempt of a task still running here: the control plane gave up on the old one.
  const supersedes = f.journal?.state === 'running' ? f.journal.attempt : undefined;
  const reject = (reasonCode: RejectReason, message: string): AssignDecision =>
    supersedes === undefined
      ? { action: 'reject', reasonCode, message }
      : { action: 'reject', reasonCode, message, supersedes };

  if (f.shuttingDown)
    return reject(RejectReasons.SHUTTING_DOWN, 'the agent is shutting down; the task goes back to the queue');
  if (f.capabilities === undefined)
    return reject(RejectReasons.NO_PLUGIN, `plugin ${f.plugin} is not loaded on this agent`);
  if (!isOperation(f.operation) || !f.capabilities.includes(f.operation)) {
    return reject(
      RejectReasons.UNSUPPORTED_OPERATION,
      `plugin ${f.plugin} does not support the operation "${f.operation}"`,
    );
  }
  const params = parseObject(f.paramsJson, 'params_json');
  if (typeof params === 'string') return reject(RejectReasons.BAD_PARAMS, params);
  const config = parseObject(f.providerConfigJson, 'provider_config_json');
  if (typeof config === 'string') return reject(RejectReasons.BAD_PARAMS, config);
  if (f.drain.enabled && HELD_BY_MAINTENANCE.includes(f.operation))
    return reject(RejectReasons.DRAINING, f.drain.message);
  // The superseded attempt's slot is about to be freed for this one.
  if (f.freeSlots + (supersedes === undefined ? 0 : 1) < 1)
    return reject(RejectReasons.NO_SLOT, 'all task slots of this agent are busy');

  const exportTo = exportTarget(config['exportTo']);
  if (typeof exportTo === 'string') return reject(RejectReasons.BAD_PARAMS, exportTo);
  const connection: ProviderConnection = {
    ...connectionOf(config),
    // The connection it exports into, as the control plane read it at dispatch.
    ...(exportTo ? { exportTo } : {}),
  };
  return supersedes === undefined
    ? { action: 'run', operation: f.operation, params, connection }
    : { action: 'run', operation: f.operation, params, connection, supersedes };
}

/** A tenant id fit to stand in a path: no separator, no dot-dot, nothing a shell or a glob reads. */
const TENANT_IN_PATH = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * What one task may touch on this host: the agent's roots with `{tenant}` replaced by the task's
 * tenant id (a root that names the tenant is dropped when the id is missing or unfit for a path),
 * and the agent's own state, always denied. Pure.
 *
 * @example hostAccessFor('ten_1', ['/srv/tenants/{tenant}'], ['/var/lib/cairn-agent']) // → { roots: ['/srv/tenants/ten_1'], denied: [...] }
 */
export function hostAccessFor(tenantId: string, roots: readonly string[], denied: readonly string[]): HostAccess {
  const fit = TENANT_IN_PATH.test(tenantId);
  return {
    roots: roots
      .filter((r) => fit || !r.includes('{tenant}'))
      .map((r) => path.normalize(r.replaceAll('{tenant}', tenantId))),
    denied: [...denied],
  };
}
