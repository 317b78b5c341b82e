import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_PLUGIN_HEAP_MB, PLUGIN_ISOLATIONS, type PluginIsolation } from '@cairn/plugin-sdk/host';
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { LOG_LEVELS, type LogLevel } from './logger.js';

/** Settings of `cairn-agent run`, after flags and environment are merged and checked. */
export interface RunConfig {
  stateDir: string;
  /** Plugin package names or absolute paths, in load order. */
  plugins: string[];
  slots: number;
  /**
   * Control plane URLs that override the one stored at enrollment: one, or several replicas of one
   * control plane, tried in turn when a session cannot be had or is lost. Undefined: the enrollment URL.
   */
  servers: string[] | undefined;
  logLevel: LogLevel;
  disconnectAbortMs: number;
  taskTimeoutMs: number;
  /** Where plugin code runs: its own worker thread per operation, or the agent's thread. */
  pluginIsolation: PluginIsolation;
  /** The heap each plugin worker thread may use, in MB: a plugin that needs more fails its task. */
  pluginHeapMb: number;
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
  pluginHeapMb?: string;
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
  pluginHeapMb: DEFAULT_PLUGIN_HEAP_MB,
  maxFrameBytes: 1024 * 1024,
  shutdownGraceMs: 10 * 60_000,
} as const;

/** Environment variables `run` reads when the matching flag is absent. */
export const RUN_ENV = {
  stateDir: 'CAIRN_AGENT_STATE_DIR',
  plugins: 'CAIRN_AGENT_PLUGINS',
  slots: 'CAIRN_AGENT_SLOTS',
  pluginIsolation: 'CAIRN_AGENT_PLUGIN_ISOLATION',
  pluginHeapMb: 'CAIRN_AGENT_PLUGIN_HEAP_MB',
  shutdownGrace: 'CAIRN_AGENT_SHUTDOWN_GRACE',
  roots: 'CAIRN_AGENT_ROOTS',
} as const satisfies Partial<Record<keyof RunFlags, string>>;

/** The variable naming the agent's config file when `--config` is absent. */
export const CONFIG_ENV = 'CAIRN_AGENT_CONFIG';

const whole = z.int({ error: 'must be a whole number, written without quotes' });
const text = z.string({ error: 'must be text, in quotes' });
// A list becomes the comma-separated text its flag takes.
const list = z.array(text.regex(/^[^,]*$/, 'must not hold a comma'), {
  error: 'must be a list of texts, such as ["a", "b"]',
});

/**
 * The keys of an agent config file: each `run` flag, spelt with underscores (`--state-dir` is
 * `state_dir`), a list where the flag takes a comma-separated one. Only the types are checked
 * here; the values are checked by `parseRunConfig`, as the flags' are.
 */
const FILE_SCHEMA = z
  .strictObject({
    state_dir: text,
    plugins: list,
    slots: whole,
    server: z.union([text.regex(/^[^,]*$/, 'must not hold a comma'), list], {
      error: 'must be a URL in quotes, or a list of them such as ["https://cp-1:8443", "https://cp-2:8443"]',
    }),
    log_level: text,
    disconnect_abort_ms: whole,
    task_timeout_ms: whole,
    plugin_isolation: text,
    plugin_heap_mb: whole,
    max_frame_bytes: whole,
    shutdown_grace: z.union([text, whole], {
      error: 'must be a duration in quotes, such as "10m" or "90s", or a whole number of seconds',
    }),
    roots: list,
  })
  .partial();

/** The file key of a flag: `stateDir` is `state_dir`. */
const fileKey = (flag: keyof RunFlags) => flag.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
/** The command-line spelling of a flag: `stateDir` is `--state-dir`. */
const flagName = (flag: keyof RunFlags) => `--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** An agent config file, checked for its keys and their types, as the flags it stands for. */
export interface RunFile {
  path: string;
  flags: RunFlags;
}

/**
 * Checks a parsed config file: unknown keys and values of the wrong type are problems, one line
 * each naming the file and key; the rest becomes flags. Pure.
 *
 * @example runFileFlags('/etc/cairn/agent.toml', { slots: 4 }) // → { ok: true, file: { path, flags: { slots: '4' } } }
 */
export function runFileFlags(
  file: string,
  values: Record<string, unknown>,
): { ok: true; file: RunFile } | { ok: false; problems: string[] } {
  const parsed = FILE_SCHEMA.safeParse(values);
  if (!parsed.success) {
    const keys = Object.keys(FILE_SCHEMA.shape).join(', ');
    return {
      ok: false,
      problems: parsed.error.issues.flatMap((issue) =>
        issue.code === 'unrecognized_keys'
          ? issue.keys.map((key) => `${file}: unknown key "${key}" (the keys are ${keys})`)
          : [`${file}: ${issue.path.join('.')} ${issue.message}, got ${JSON.stringify(values[String(issue.path[0])])}`],
      ),
    };
  }
  const flags: RunFlags = {};
  for (const [key, value] of Object.entries(parsed.data)) {
    const flag = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof RunFlags;
    flags[flag] = Array.isArray(value) ? value.join(',') : String(value);
  }
  return { ok: true, file: { path: file, flags } };
}

/**
 * Reads and checks an agent config file (TOML); a file that cannot be read or parsed is one
 * problem naming it (and the line and column of a syntax error).
 */
export function readRunFile(file: string): { ok: true; file: RunFile } | { ok: false; problems: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, problems: [`${file}: cannot read the config file (${(err as Error).message})`] };
  }
  try {
    return runFileFlags(file, parseToml(text));
  } catch (err) {
    const where = err instanceof TomlError ? `${file}:${err.line}:${err.column}` : file;
    const reason = (err as Error).message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    return { ok: false, problems: [`${where}: not a valid TOML file: ${reason}`] };
  }
}

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

/**
 * The control plane URLs of `--server`: one, or a comma-separated list of the replicas of one
 * control plane. Each must be http(s), none twice, and all of one scheme (an agent enrolled over
 * https never falls back to plain http on another replica).
 */
function checkServers(set: { raw: string; label: string }, problems: string[]): string[] | undefined {
  const raw = set.raw.split(',').map((s) => s.trim());
  const before = problems.length;
  if (raw.every((s) => s === '')) {
    problems.push(`${set.label} must name at least one control plane URL`);
    return undefined;
  }
  const seen = new Set<string>();
  for (const s of raw) {
    if (s === '') {
      if (raw.length > 1) problems.push(`${set.label} has an empty entry in "${set.raw}"`);
      continue;
    }
    let url: URL;
    try {
      url = new URL(s);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      problems.push(`${set.label} must be an http:// or https:// URL, got "${s}"`);
      continue;
    }
    if (seen.has(url.href)) problems.push(`${set.label} names ${s} twice`);
    seen.add(url.href);
  }
  const schemes = new Set(raw.filter((s) => s !== '').map((s) => s.slice(0, s.indexOf(':'))));
  if (problems.length === before && schemes.size > 1)
    problems.push(`${set.label} mixes http:// and https:// URLs ("${set.raw}"); use https for every replica`);
  return problems.length === before ? raw : undefined;
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
 * Merges `run` flags, the environment and a config file (flags win over the environment, which
 * wins over the file) and checks every value; returns all problems at once, each one line naming
 * where the value was set: the flag, the variable, or the file and key. Pure.
 *
 * @example parseRunConfig({ slots: 'x' }, {}) // → { ok: false, problems: ['--state-dir ...', '--slots must be ...'] }
 */
export function parseRunConfig(
  flags: RunFlags,
  env: Record<string, string | undefined>,
  file?: RunFile,
): { ok: true; config: RunConfig } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  /** A setting's text and the name to blame for it, from the first source that sets it. */
  const pick = (flag: keyof RunFlags): { raw: string; label: string } | undefined => {
    const variable = (RUN_ENV as Partial<Record<keyof RunFlags, string>>)[flag];
    if (flags[flag] !== undefined) return { raw: flags[flag], label: flagName(flag) };
    if (variable !== undefined && env[variable] !== undefined) return { raw: env[variable], label: variable };
    const fromFile = file?.flags[flag];
    return file && fromFile !== undefined ? { raw: fromFile, label: `${file.path}: ${fileKey(flag)}` } : undefined;
  };
  const int = (flag: keyof RunFlags, fallback: number, min: number, max: number) => {
    const set = pick(flag);
    return set ? integer(set.label, set.raw, fallback, min, max, problems) : fallback;
  };

  const stateDirRaw = pick('stateDir')?.raw;
  if (stateDirRaw === undefined || stateDirRaw.trim() === '')
    problems.push(`--state-dir (or ${RUN_ENV.stateDir}${file ? `, or state_dir in ${file.path}` : ''}) is required`);

  const pluginsSet = pick('plugins');
  const plugins =
    pluginsSet === undefined
      ? [...RUN_DEFAULTS.plugins]
      : pluginsSet.raw
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
  if (plugins.length === 0) problems.push(`${pluginsSet?.label} must name at least one plugin package`);

  const slots = int('slots', RUN_DEFAULTS.slots, 1, 1000);

  const serverSet = pick('server');
  const servers = serverSet === undefined ? undefined : checkServers(serverSet, problems);

  const levelSet = pick('logLevel');
  const level = levelSet?.raw ?? RUN_DEFAULTS.logLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    problems.push(`${levelSet?.label} must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`);

  const disconnectAbortMs = int('disconnectAbortMs', RUN_DEFAULTS.disconnectAbortMs, 0, 2 ** 31 - 1);
  const taskTimeoutMs = int('taskTimeoutMs', RUN_DEFAULTS.taskTimeoutMs, 1, 2 ** 31 - 1);
  const pluginHeapMb = int('pluginHeapMb', RUN_DEFAULTS.pluginHeapMb, 16, 64 * 1024);
  const maxFrameBytes = int('maxFrameBytes', RUN_DEFAULTS.maxFrameBytes, 1024, 64 * 1024 * 1024);

  const graceSet = pick('shutdownGrace');
  let shutdownGraceMs: number = RUN_DEFAULTS.shutdownGraceMs;
  if (graceSet !== undefined) {
    const ms = parseDuration(graceSet.raw);
    // Timers cannot wait longer than 2^31-1 ms (about 24.8 days).
    if (ms === undefined || ms > 2 ** 31 - 1)
      problems.push(
        `${graceSet.label} must be a duration such as 10m, 90s or 500ms (at most 24 days), got "${graceSet.raw}"`,
      );
    else shutdownGraceMs = ms;
  }

  const isolationSet = pick('pluginIsolation');
  const isolation = isolationSet?.raw ?? RUN_DEFAULTS.pluginIsolation;
  if (!(PLUGIN_ISOLATIONS as readonly string[]).includes(isolation))
    problems.push(`${isolationSet?.label} must be one of ${PLUGIN_ISOLATIONS.join(', ')}, got "${isolation}"`);

  const rootsSet = pick('roots');
  const roots = (rootsSet?.raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const root of roots) {
    const bare = root.replaceAll(TENANT_PLACEHOLDER, 'x');
    if (!path.isAbsolute(root) || root.includes('\0') || /[{}]/.test(bare))
      problems.push(
        `${rootsSet?.label} must list absolute directories, where ${TENANT_PLACEHOLDER} stands for the task's tenant; got "${root}"`,
      );
    else if (path.normalize(bare) === path.parse(bare).root)
      problems.push(
        `${rootsSet?.label} must not allow the whole file system ("${root}"); name the directories tasks may use`,
      );
  }

  if (problems.length > 0 || stateDirRaw === undefined) return { ok: false, problems };
  return {
    ok: true,
    config: {
      stateDir: path.resolve(stateDirRaw),
      plugins,
      slots,
      servers,
      logLevel: level as LogLevel,
      disconnectAbortMs,
      taskTimeoutMs,
      pluginIsolation: isolation as PluginIsolation,
      pluginHeapMb,
      maxFrameBytes,
      shutdownGraceMs,
      roots: roots.map((r) => path.normalize(r)),
    },
  };
}
