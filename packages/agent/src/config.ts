import path from 'node:path';
import { PLUGIN_ISOLATIONS, type PluginIsolation } from '@cairn/plugin-sdk/host';
import { LOG_LEVELS, type LogLevel } from './logger.js';

/** Settings of `cairn-agent run`, after flags and environment are merged and checked. */
export interface RunConfig {
  stateDir: string;
  /** Plugin package names or absolute paths, in load order. */
  plugins: string[];
  slots: number;
  /** Overrides the control plane URL stored at enrollment. */
  server: string | undefined;
  logLevel: LogLevel;
  disconnectAbortMs: number;
  taskTimeoutMs: number;
  /** Where plugin code runs: its own worker thread per operation, or the agent's thread. */
  pluginIsolation: PluginIsolation;
  /** Largest frame the agent accepts (announced in its hello). */
  maxFrameBytes: number;
  /** On SIGTERM, how long running tasks may take to finish before they are interrupted. */
  shutdownGraceMs: number;
  /**
   * The host directories tasks of `host-paths` plugins may read and write; `{tenant}` in one
   * stands for the task's tenant id. Empty: no host path at all.
   */
  roots: string[];
}

/** Flags as commander hands them over: strings, each maybe absent. */
export interface RunFlags {
  stateDir?: string;
  plugins?: string;
  slots?: string;
  server?: string;
  logLevel?: string;
  disconnectAbortMs?: string;
  taskTimeoutMs?: string;
  pluginIsolation?: string;
  maxFrameBytes?: string;
  shutdownGrace?: string;
  roots?: string;
}

export const RUN_DEFAULTS = {
  plugins: ['@cairn/plugin-dummy'],
  slots: 2,
  logLevel: 'info' as LogLevel,
  disconnectAbortMs: 10 * 60_000,
  taskTimeoutMs: 6 * 60 * 60_000,
  pluginIsolation: 'worker' as PluginIsolation,
  maxFrameBytes: 1024 * 1024,
  shutdownGraceMs: 10 * 60_000,
} as const;

/** Environment variables `run` reads when the matching flag is absent. */
export const RUN_ENV = {
  stateDir: 'CAIRN_AGENT_STATE_DIR',
  plugins: 'CAIRN_AGENT_PLUGINS',
  slots: 'CAIRN_AGENT_SLOTS',
  pluginIsolation: 'CAIRN_AGENT_PLUGIN_ISOLATION',
  shutdownGrace: 'CAIRN_AGENT_SHUTDOWN_GRACE',
  roots: 'CAIRN_AGENT_ROOTS',
} as const;

/** The placeholder in a root that stands for the task's tenant id. */
export const TENANT_PLACEHOLDER = '{tenant}';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration such as `10m`, `90s`, `1500ms` or `1h`; a bare number is seconds, as in systemd's
 * `TimeoutStopSec=`. Undefined when it is none.
 *
 * @example parseDuration('10m') // → 600000
 */
export function parseDuration(raw: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * UNIT_MS[m[2] ?? 's']!;
  return Number.isSafeInteger(ms) ? ms : undefined;
}

function integer(
  label: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
  problems: string[],
): number {
  if (raw === undefined) return fallback;
  const text = raw.trim();
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    problems.push(`${label} must be an integer from ${min} to ${max}, got "${raw}"`);
    return fallback;
  }
  return value;
}

/**
 * Merges `run` flags with the environment (flags win) and checks every value; returns all
 * problems at once, each one line naming the flag. Pure.
 *
 * @example parseRunConfig({ slots: 'x' }, {}) // → { ok: false, problems: ['--state-dir ...', '--slots must be ...'] }
 */
export function parseRunConfig(
  flags: RunFlags,
  env: Record<string, string | undefined>,
): { ok: true; config: RunConfig } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const stateDirRaw = flags.stateDir ?? env[RUN_ENV.stateDir];
  if (stateDirRaw === undefined || stateDirRaw.trim() === '')
    problems.push(`--state-dir (or ${RUN_ENV.stateDir}) is required`);

  const pluginsRaw = flags.plugins ?? env[RUN_ENV.plugins];
  const plugins =
    pluginsRaw === undefined
      ? [...RUN_DEFAULTS.plugins]
      : pluginsRaw
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
  if (plugins.length === 0) problems.push('--plugins must name at least one plugin package');

  const slotsLabel = flags.slots !== undefined ? '--slots' : RUN_ENV.slots;
  const slots = integer(slotsLabel, flags.slots ?? env[RUN_ENV.slots], RUN_DEFAULTS.slots, 1, 1000, problems);

  let server: string | undefined;
  if (flags.server !== undefined) {
    try {
      const url = new URL(flags.server);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
      server = flags.server;
    } catch {
      problems.push(`--server must be an http:// or https:// URL, got "${flags.server}"`);
    }
  }

  const level = flags.logLevel ?? RUN_DEFAULTS.logLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    problems.push(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`);

  const disconnectAbortMs = integer(
    '--disconnect-abort-ms',
    flags.disconnectAbortMs,
    RUN_DEFAULTS.disconnectAbortMs,
    0,
    2 ** 31 - 1,
    problems,
  );
  const taskTimeoutMs = integer(
    '--task-timeout-ms',
    flags.taskTimeoutMs,
    RUN_DEFAULTS.taskTimeoutMs,
    1,
    2 ** 31 - 1,
    problems,
  );

  const maxFrameBytes = integer(
    '--max-frame-bytes',
    flags.maxFrameBytes,
    RUN_DEFAULTS.maxFrameBytes,
    1024,
    64 * 1024 * 1024,
    problems,
  );

  const graceLabel = flags.shutdownGrace !== undefined ? '--shutdown-grace' : RUN_ENV.shutdownGrace;
  const graceRaw = flags.shutdownGrace ?? env[RUN_ENV.shutdownGrace];
  let shutdownGraceMs: number = RUN_DEFAULTS.shutdownGraceMs;
  if (graceRaw !== undefined) {
    const ms = parseDuration(graceRaw);
    // Timers cannot wait longer than 2^31-1 ms (about 24.8 days).
    if (ms === undefined || ms > 2 ** 31 - 1)
      problems.push(`${graceLabel} must be a duration such as 10m, 90s or 500ms (at most 24 days), got "${graceRaw}"`);
    else shutdownGraceMs = ms;
  }

  const isolation = flags.pluginIsolation ?? env[RUN_ENV.pluginIsolation] ?? RUN_DEFAULTS.pluginIsolation;
  if (!(PLUGIN_ISOLATIONS as readonly string[]).includes(isolation))
    problems.push(`--plugin-isolation must be one of ${PLUGIN_ISOLATIONS.join(', ')}, got "${isolation}"`);

  const rootsLabel = flags.roots !== undefined ? '--roots' : RUN_ENV.roots;
  const roots = (flags.roots ?? env[RUN_ENV.roots] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const root of roots) {
    const bare = root.replaceAll(TENANT_PLACEHOLDER, 'x');
    if (!path.isAbsolute(root) || root.includes('\0') || /[{}]/.test(bare))
      problems.push(
        `${rootsLabel} must list absolute directories, separated by commas, where ${TENANT_PLACEHOLDER} stands for the task's tenant; got "${root}"`,
      );
    else if (path.normalize(bare) === path.parse(bare).root)
      problems.push(
        `${rootsLabel} must not allow the whole file system ("${root}"); name the directories tasks may use`,
      );
  }

  if (problems.length > 0 || stateDirRaw === undefined) return { ok: false, problems };
  return {
    ok: true,
    config: {
      stateDir: path.resolve(stateDirRaw),
      plugins,
      slots,
      server,
      logLevel: level as LogLevel,
      disconnectAbortMs,
      taskTimeoutMs,
      pluginIsolation: isolation as PluginIsolation,
      maxFrameBytes,
      shutdownGraceMs,
      roots: roots.map((r) => path.normalize(r)),
    },
  };
}
