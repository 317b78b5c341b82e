import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';

/** Everything the control plane reads from its environment, validated once at start-up. */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string;
  adminToken: string | undefined;
  /** 64 hex chars: the key for provider credentials at rest (shared by all replicas). */
  secretKey: string | undefined;
  logLevel: string;
  /** How often agents heartbeat; leases are renewed by heartbeats. */
  heartbeatMs: number;
  /**
   * Heartbeats a second this control plane takes from its agents: a fleet beyond
   * heartbeatsPerSecond × heartbeatMs / 1000 agents is told a longer interval (at most a third
   * of the task lease). See domain/heartbeat-pace.ts.
   */
  heartbeatsPerSecond: number;
  /** A dispatched or running task whose agent has not heartbeated for this long becomes `lost`. */
  taskLeaseMs: number;
  /** How often the dispatcher looks for work even when nothing local woke it. */
  dispatchPollMs: number;
  /** Global limit of tasks dispatched or running at once, over all agents. */
  maxConcurrentTasks: number;
  /** Largest accepted agent frame. */
  maxFrameBytes: number;
  /** Each agent's frame budget, kept across its sessions: a token bucket of `burst` frames refilled at `perSecond`. */
  agentFrameRate: { perSecond: number; burst: number };
  /** Each agent's byte budget, kept across its sessions (burst at least 4 × maxFrameBytes). */
  agentByteRate: { perSecond: number; burst: number };
  /** One agent opens at most a few sessions at once, then one per this many ms (0: not paced). */
  agentReconnectMs: number;
  /** Event streams one token, and one tenant, may hold open at once in this process. */
  streamLimits: { perToken: number; perTenant: number };
  /** An event stream whose client takes nothing for this long is cut off. */
  streamStallMs: number;
  /** Requests waiting at once in this process: per tenant, and all tenants but the provider's together. */
  waiterLimits: { perTenant: number; total: number };
  /** API requests one tenant may make on this process: `burst` at once, refilled at `perSecond` (the sp-admin is not counted). */
  tenantRequestRate: { perSecond: number; burst: number };
  /** An assignment sent this many times without the agent accepting it fails. */
  assignMaxSends: number;
  /** Largest accepted HTTP body. */
  maxBodyBytes: number;
  /** A client must have sent its whole request (headers and body) within this time. */
  requestTimeoutMs: number;
  /** An Idempotency-Key claim of a request that never answered (a crash) expires after this. */
  idempotencyLeaseMs: number;
  /** A bearer token revoked on any replica is refused by every replica within this (the principal cache's bound). */
  authCacheMs: number;
  /** At shutdown, /readyz answers 503 for this long before the listener closes. */
  shutdownDrainMs: number;
  /** How often the scheduler looks for due fires. */
  schedulerTickMs: number;
  /** A periodic duty's lease runs this long from each renewal: another replica takes it over after its holder died. */
  dutyLeaseMs: number;
  /**
   * The longest a scheduler goes without asking the store what is due while it knows of no change
   * (another replica's changes are seen within it); 0: it asks at every tick.
   */
  schedulerRefreshMs: number;
  /** Seconds between periodic syncs of every provider connection (on the scheduler's clock); 0: off. */
  syncIntervalS: number;
  /** How often each connection whose plugin declares `prune` is pruned (0: never by the clock). */
  pruneIntervalS: number;
  /** A sync that would mark more than this share of a provider's live records vanished at once (and more than one) is held for an operator; 1: never. */
  syncVanishShare: number;
  /** Runs of a backup job kept, with their members (the newest, and a run still going, always are). */
  jobRunsKeep: number;
  /** A finished run of a backup job older than this (by the scheduler's clock) is forgotten, unless it is the job's newest. */
  jobRunsMaxAgeDays: number;
  /** How long the history of the control plane's work is kept (by the scheduler's clock), in days. */
  history: { taskDays: number; progressDays: number; eventDays: number };
  /** How long an in-place restore waits for the plugin to tell the instance's power state. */
  powerStateWaitMs: number;
  /** `/metrics` reads the store's figures (tasks, oldest restore point, RPO breaches) at most this often; 0: at every scrape. */
  metricsStoreRefreshMs: number;
  /** How long POST .../providers/{id}/preflight waits for the checks before it answers 202. */
  preflightWaitMs: number;
  /** TEST ONLY: a file holding the scheduler's current time (needs NODE_ENV=test). */
  testClockFile: string | undefined;
  /**
   * Serve HTTPS (and wss:// for agents) with this PEM certificate chain and key; plain HTTP without.
   * The settings name where each file was set, for the errors of reading it.
   */
  tls: { certFile: string; keyFile: string; certSetting?: string; keySetting?: string } | undefined;
}

/** A whole number of at least `min` (and at most `max`), from a variable's text or a file's number. */
const int = (min: number, max?: number) => {
  const allowed = `must be a whole number ${max === undefined ? `of at least ${min}` : `from ${min} to ${max}`}`;
  const n = z.coerce.number({ message: allowed }).int(allowed).min(min, allowed);
  return max === undefined ? n : n.max(max, allowed);
};
/** A history limit in days (1-3650) with its default. */
const historyDays = (fallback: number) => int(1, 3650).default(fallback);
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const schema = z.object({
  CAIRN_HOST: z.string().min(1, 'must not be empty').default('127.0.0.1'),
  CAIRN_PORT: int(0, 65535).default(8080),
  CAIRN_DATA_DIR: z.string().min(1, 'must not be empty').default('./data'),
  CAIRN_DATABASE_URL: z
    .string()
    .regex(/^(sqlite:|mysql:\/\/)/, 'must start with sqlite: or mysql://')
    .optional(),
  CAIRN_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  CAIRN_SECRET_KEY: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex characters (32 bytes)')
    .optional(),
  CAIRN_LOG_LEVEL: z.enum(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(', ')}`).default('info'),
  CAIRN_HEARTBEAT_MS: int(100).default(5000),
  // An idle heartbeat costs the control plane about 0.2-0.25 ms of CPU (docs/performance.md):
  // 150 a second is 3-4 % of a core, whatever the fleet (Nomad's default is 50).
  CAIRN_HEARTBEATS_PER_S: int(1, 1_000_000).default(150),
  CAIRN_TASK_LEASE_MS: int(500).default(60_000),
  CAIRN_DISPATCH_POLL_MS: int(10).default(1000),
  CAIRN_MAX_RUNNING_TASKS: int(1).optional(),
  /** The former name of CAIRN_MAX_RUNNING_TASKS, still accepted. */
  CAIRN_MAX_CONCURRENT_TASKS: int(1).optional(),
  CAIRN_MAX_FRAME_BYTES: int(1024).default(1024 * 1024),
  CAIRN_MAX_BODY_BYTES: int(1024).default(1024 * 1024),
  CAIRN_REQUEST_TIMEOUT_MS: int(1000, 30_000).default(20_000),
  CAIRN_IDEMPOTENCY_LEASE_MS: int(1000, 600_000).default(30_000),
  CAIRN_AUTH_CACHE_MS: int(0, 60_000).default(1000),
  CAIRN_SHUTDOWN_DRAIN_MS: int(0, 600_000).default(3000),
  CAIRN_AGENT_FRAME_RATE: int(10).default(200),
  CAIRN_AGENT_FRAME_BURST: int(100).default(2000),
  CAIRN_AGENT_BYTE_RATE: int(1024).default(128 * 1024),
  CAIRN_AGENT_BYTE_BURST: int(4096).optional(),
  CAIRN_AGENT_RECONNECT_MS: int(0, 60_000).default(1000),
  CAIRN_STREAMS_PER_TOKEN: int(1, 100_000).default(5),
  CAIRN_STREAMS_PER_TENANT: int(1, 100_000).default(20),
  CAIRN_STREAM_STALL_MS: int(1000, 600_000).default(30_000),
  CAIRN_WAITERS_PER_TENANT: int(1, 10_000).default(10),
  CAIRN_MAX_WAITERS: int(1, 100_000).default(100),
  CAIRN_TENANT_REQUEST_RATE: int(1, 1_000_000).default(200),
  CAIRN_TENANT_REQUEST_BURST: int(1, 10_000_000).default(2000),
  CAIRN_ASSIGN_MAX_SENDS: int(1).default(5),
  CAIRN_SCHEDULER_TICK_MS: int(10, 60_000).default(1000),
  CAIRN_DUTY_LEASE_MS: int(1000, 600_000).default(15_000),
  CAIRN_SCHEDULER_REFRESH_MS: int(0, 600_000).default(5000),
  CAIRN_SYNC_INTERVAL_S: z.coerce
    .number({ message: 'must be a whole number of seconds (0: no periodic sync)' })
    .int('must be a whole number of seconds (0: no periodic sync)')
    .min(0, 'must be 0 (no periodic sync) or a number of seconds')
    .max(7 * 24 * 3600, 'must be at most 604800 seconds (a week)')
    .default(300),
  CAIRN_PRUNE_INTERVAL_S: z.coerce
    .number({ message: 'must be a whole number of seconds (0: no periodic prune)' })
    .int('must be a whole number of seconds (0: no periodic prune)')
    .min(0, 'must be 0 (no periodic prune) or a number of seconds')
    .max(30 * 24 * 3600, 'must be at most 2592000 seconds (30 days)')
    .default(24 * 3600),
  CAIRN_SYNC_VANISH_SHARE: z.coerce
    .number({ message: 'must be a number above 0 and at most 1 (1: never hold a sync)' })
    .gt(0, 'must be a number above 0 and at most 1 (1: never hold a sync)')
    .max(1, 'must be a number above 0 and at most 1 (1: never hold a sync)')
    .default(0.5),
  CAIRN_JOB_RUNS_KEEP: z.coerce
    .number({ message: 'must be a whole number of runs kept per backup job (1-10000)' })
    .int('must be a whole number of runs kept per backup job (1-10000)')
    .min(1, 'must be at least 1 (the newest run is always kept)')
    .max(10_000, 'must be at most 10000 runs per backup job')
    .default(100),
  CAIRN_JOB_RUNS_MAX_AGE_DAYS: z.coerce
    .number({ message: 'must be a whole number of days (1-3650)' })
    .int('must be a whole number of days (1-3650)')
    .min(1, 'must be at least 1 day')
    .max(3650, 'must be at most 3650 days (10 years)')
    .default(90),
  CAIRN_TASK_HISTORY_DAYS: historyDays(90),
  CAIRN_PROGRESS_HISTORY_DAYS: historyDays(7),
  CAIRN_EVENT_HISTORY_DAYS: historyDays(365),
  CAIRN_POWER_STATE_WAIT_MS: int(100, 120_000).default(30_000),
  CAIRN_METRICS_STORE_REFRESH_MS: int(0, 300_000).default(10_000),
  CAIRN_PREFLIGHT_WAIT_MS: int(100, 120_000).default(30_000),
  CAIRN_TEST_CLOCK_FILE: z.string().min(1, 'must not be empty').optional(),
  CAIRN_TLS_CERT: z.string().min(1, 'must be the path of a PEM certificate file').optional(),
  CAIRN_TLS_KEY: z.string().min(1, 'must be the path of a PEM private key file').optional(),
  NODE_ENV: z.string().optional(),
});

/** A configuration that cannot be used: one line per bad setting, each naming where it was set. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/** A config file as read from disk (`--config FILE` or `CAIRN_CONFIG`), before it is checked. */
export interface ConfigFile {
  path: string;
  /** The parsed TOML document. */
  values: Record<string, unknown>;
  /** Its permission bits: a file that holds a secret must not be readable by every user. */
  mode: number;
}

type Variable = keyof typeof schema.shape;

/**
 * The keys of a config file and the variables they set: `CAIRN_TASK_LEASE_MS` is `task_lease_ms`.
 * The former name CAIRN_MAX_CONCURRENT_TASKS has no key: a new file uses `max_running_tasks`.
 */
export const FILE_KEYS: ReadonlyMap<string, Variable> = new Map(
  (Object.keys(schema.shape) as Variable[])
    .filter((name) => name.startsWith('CAIRN_') && name !== 'CAIRN_MAX_CONCURRENT_TASKS')
    .map((name) => [name.slice('CAIRN_'.length).toLowerCase(), name]),
);
const keyOf = (name: Variable) => name.slice('CAIRN_'.length).toLowerCase();

/** Whether a variable holds a number (a TOML number in a file) rather than text (a TOML string). */
function holdsNumber(name: Variable): boolean {
  let type: z.ZodType = schema.shape[name];
  while (type instanceof z.ZodDefault || type instanceof z.ZodOptional) type = type.unwrap() as z.ZodType;
  return type instanceof z.ZodNumber;
}

/** The TOML types of a file's keys; the values themselves are checked by `schema`, as the environment's are. */
const fileTypes = z
  .strictObject(
    Object.fromEntries(
      [...FILE_KEYS].map(([key, name]) => [
        key,
        holdsNumber(name)
          ? z.number({ error: 'must be a number, written without quotes' })
          : z.string({ error: 'must be text, in quotes' }),
      ]),
    ),
  )
  .partial();

/** A database URL with a password in it is as secret as the tokens. */
const isSecret = (name: Variable | undefined, value: unknown): boolean =>
  name === 'CAIRN_ADMIN_TOKEN' ||
  name === 'CAIRN_SECRET_KEY' ||
  (name === 'CAIRN_DATABASE_URL' && /^[a-z]+:\/\/[^/@]*:[^/@]+@/i.test(String(value)));

/** Edit distance, for "did you mean" on a mistyped key. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length]!;
}

function unknownKey(key: string): string {
  const spelt = key
    .toLowerCase()
    .replace(/^cairn_/, '')
    .replaceAll('-', '_');
  const keys = [...FILE_KEYS.keys()];
  // `[tls]` with `cert = …` under it: the file has no tables, its keys are flat (`tls_cert`).
  const under = keys.filter((k) => k.startsWith(`${spelt}_`));
  const near = keys.sort((a, b) => distance(spelt, a) - distance(spelt, b))[0]!;
  if (under.length > 0) return `unknown key "${key}" (the keys are flat: ${under.join(', ')})`;
  return distance(spelt, near) <= 2
    ? `unknown key "${key}" (did you mean "${near}"?)`
    : `unknown key "${key}" (the keys are listed in docs/operations.md, "Control plane")`;
}

/**
 * Checks one source against `schema`: each issue becomes a line naming the setting (`label`) and,
 * unless it is a secret, the value given.
 */
function check(values: Record<string, unknown>, label: (name: Variable) => string, problems: string[]): void {
  const parsed = schema.safeParse(values);
  if (parsed.success) return;
  for (const issue of parsed.error.issues) {
    const name = issue.path[0] as Variable;
    const value = values[name];
    problems.push(`${label(name)}: ${issue.message}${isSecret(name, value) ? '' : `, got ${JSON.stringify(value)}`}`);
  }
}

/**
 * Reads the config from the environment and, when given, a config file; the environment wins
 * over the file. Every value is checked where it was set, the file's whole (even a value the
 * environment overrides), and each bad one is a line of the ConfigError naming the variable, or
 * the file and key. Pure: the file is read by `readConfigFile`.
 *
 * @example loadConfig({ CAIRN_PORT: '9090' }, readConfigFile('/etc/cairn/control-plane.toml'))
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, file?: ConfigFile): Config {
  const problems: string[] = [];
  const fromFile: Partial<Record<Variable, unknown>> = {};
  if (file) {
    const where = (key: string) => `${file.path}: ${key}`;
    const typed = fileTypes.safeParse(file.values);
    const mistyped = new Set<string>();
    for (const issue of typed.success ? [] : typed.error.issues) {
      if (issue.code === 'unrecognized_keys') problems.push(...issue.keys.map((k) => `${file.path}: ${unknownKey(k)}`));
      else {
        const key = String(issue.path[0]);
        const value = file.values[key];
        const got = Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'a table' : JSON.stringify(value);
        problems.push(`${where(key)}: ${issue.message}${isSecret(FILE_KEYS.get(key), value) ? '' : `, got ${got}`}`);
        mistyped.add(key);
      }
    }
    for (const [key, name] of FILE_KEYS)
      if (key in file.values && !mistyped.has(key)) fromFile[name] = file.values[key];
    check(fromFile, (name) => where(keyOf(name)), problems);
    const secrets = (Object.keys(fromFile) as Variable[]).filter((name) => isSecret(name, fromFile[name]));
    if (secrets.length > 0 && (file.mode & 0o004) !== 0)
      problems.push(
        `${file.path}: holds a secret (${secrets.map(keyOf).join(', ')}) but every user of the host may read it (mode ${(file.mode & 0o777).toString(8).padStart(4, '0')}); make it readable by its owner and group only (chmod 0640)`,
      );
  }
  const fromEnv = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined));
  check(fromEnv, (name) => name, problems);
  if (problems.length > 0) throw new ConfigError(problems);

  const e = schema.parse({ ...fromFile, ...fromEnv });
  /** Where a setting came from, for messages about two settings at once. */
  const label = (name: Variable) =>
    file && name in fromFile && !(name in fromEnv) ? `${keyOf(name)} (${file.path})` : name;
  if (e.CAIRN_TASK_LEASE_MS < 2 * e.CAIRN_HEARTBEAT_MS)
    problems.push(
      `${label('CAIRN_TASK_LEASE_MS')} (${e.CAIRN_TASK_LEASE_MS}) must be at least twice ${label('CAIRN_HEARTBEAT_MS')} (${e.CAIRN_HEARTBEAT_MS})`,
    );
  // The holder renews its leases once a tick: a lease shorter than two ticks runs out under it.
  if (e.CAIRN_DUTY_LEASE_MS < 2 * e.CAIRN_SCHEDULER_TICK_MS)
    problems.push(
      `${label('CAIRN_DUTY_LEASE_MS')} (${e.CAIRN_DUTY_LEASE_MS}) must be at least twice ${label('CAIRN_SCHEDULER_TICK_MS')} (${e.CAIRN_SCHEDULER_TICK_MS})`,
    );
  // A clock read from a file would let anyone who can write it fire every schedule: never in
  // production, so it is refused unless the process also runs under NODE_ENV=test.
  if (e.CAIRN_TEST_CLOCK_FILE !== undefined && e.NODE_ENV !== 'test')
    problems.push(`${label('CAIRN_TEST_CLOCK_FILE')}: a test-only clock; refused unless NODE_ENV=test`);
  // A paced agent keeps inside a quarter of the byte burst: its largest frame must fit there.
  const byteBurst = e.CAIRN_AGENT_BYTE_BURST ?? 4 * e.CAIRN_MAX_FRAME_BYTES;
  if (byteBurst < 4 * e.CAIRN_MAX_FRAME_BYTES)
    problems.push(
      `${label('CAIRN_AGENT_BYTE_BURST')} (${byteBurst}) must be at least 4 × ${label('CAIRN_MAX_FRAME_BYTES')} (${4 * e.CAIRN_MAX_FRAME_BYTES})`,
    );
  if (
    e.CAIRN_MAX_RUNNING_TASKS !== undefined &&
    e.CAIRN_MAX_CONCURRENT_TASKS !== undefined &&
    e.CAIRN_MAX_RUNNING_TASKS !== e.CAIRN_MAX_CONCURRENT_TASKS
  )
    problems.push(
      `${label('CAIRN_MAX_RUNNING_TASKS')} (${e.CAIRN_MAX_RUNNING_TASKS}) and its former name CAIRN_MAX_CONCURRENT_TASKS (${e.CAIRN_MAX_CONCURRENT_TASKS}) disagree; set only CAIRN_MAX_RUNNING_TASKS`,
    );
  // One without the other would quietly serve plain HTTP where the operator asked for TLS.
  if ((e.CAIRN_TLS_CERT === undefined) !== (e.CAIRN_TLS_KEY === undefined)) {
    const [set, missing] = e.CAIRN_TLS_CERT
      ? (['CAIRN_TLS_CERT', 'CAIRN_TLS_KEY'] as const)
      : (['CAIRN_TLS_KEY', 'CAIRN_TLS_CERT'] as const);
    problems.push(
      file && label(set) !== set
        ? `${file.path}: ${keyOf(missing)}: required when ${keyOf(set)} is set (HTTPS needs both)`
        : `${missing}: required when ${set} is set (HTTPS needs both)`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    host: e.CAIRN_HOST,
    port: e.CAIRN_PORT,
    dataDir: e.CAIRN_DATA_DIR,
    databaseUrl: e.CAIRN_DATABASE_URL ?? `sqlite:${path.join(e.CAIRN_DATA_DIR, 'cairn.db')}`,
    adminToken: e.CAIRN_ADMIN_TOKEN,
    secretKey: e.CAIRN_SECRET_KEY,
    logLevel: e.CAIRN_LOG_LEVEL,
    heartbeatMs: e.CAIRN_HEARTBEAT_MS,
    heartbeatsPerSecond: e.CAIRN_HEARTBEATS_PER_S,
    taskLeaseMs: e.CAIRN_TASK_LEASE_MS,
    dispatchPollMs: e.CAIRN_DISPATCH_POLL_MS,
    maxConcurrentTasks: e.CAIRN_MAX_RUNNING_TASKS ?? e.CAIRN_MAX_CONCURRENT_TASKS ?? 1000,
    maxFrameBytes: e.CAIRN_MAX_FRAME_BYTES,
    maxBodyBytes: e.CAIRN_MAX_BODY_BYTES,
    requestTimeoutMs: e.CAIRN_REQUEST_TIMEOUT_MS,
    idempotencyLeaseMs: e.CAIRN_IDEMPOTENCY_LEASE_MS,
    authCacheMs: e.CAIRN_AUTH_CACHE_MS,
    shutdownDrainMs: e.CAIRN_SHUTDOWN_DRAIN_MS,
    agentFrameRate: { perSecond: e.CAIRN_AGENT_FRAME_RATE, burst: e.CAIRN_AGENT_FRAME_BURST },
    agentByteRate: { perSecond: e.CAIRN_AGENT_BYTE_RATE, burst: byteBurst },
    agentReconnectMs: e.CAIRN_AGENT_RECONNECT_MS,
    streamLimits: { perToken: e.CAIRN_STREAMS_PER_TOKEN, perTenant: e.CAIRN_STREAMS_PER_TENANT },
    streamStallMs: e.CAIRN_STREAM_STALL_MS,
    waiterLimits: { perTenant: e.CAIRN_WAITERS_PER_TENANT, total: e.CAIRN_MAX_WAITERS },
    tenantRequestRate: { perSecond: e.CAIRN_TENANT_REQUEST_RATE, burst: e.CAIRN_TENANT_REQUEST_BURST },
    assignMaxSends: e.CAIRN_ASSIGN_MAX_SENDS,
    schedulerTickMs: e.CAIRN_SCHEDULER_TICK_MS,
    dutyLeaseMs: e.CAIRN_DUTY_LEASE_MS,
    schedulerRefreshMs: e.CAIRN_SCHEDULER_REFRESH_MS,
    syncIntervalS: e.CAIRN_SYNC_INTERVAL_S,
    pruneIntervalS: e.CAIRN_PRUNE_INTERVAL_S,
    syncVanishShare: e.CAIRN_SYNC_VANISH_SHARE,
    jobRunsKeep: e.CAIRN_JOB_RUNS_KEEP,
    jobRunsMaxAgeDays: e.CAIRN_JOB_RUNS_MAX_AGE_DAYS,
    history: {
      taskDays: e.CAIRN_TASK_HISTORY_DAYS,
      progressDays: e.CAIRN_PROGRESS_HISTORY_DAYS,
      eventDays: e.CAIRN_EVENT_HISTORY_DAYS,
    },
    powerStateWaitMs: e.CAIRN_POWER_STATE_WAIT_MS,
    metricsStoreRefreshMs: e.CAIRN_METRICS_STORE_REFRESH_MS,
    preflightWaitMs: e.CAIRN_PREFLIGHT_WAIT_MS,
    testClockFile: e.CAIRN_TEST_CLOCK_FILE,
    tls:
      e.CAIRN_TLS_CERT !== undefined && e.CAIRN_TLS_KEY !== undefined
        ? {
            certFile: e.CAIRN_TLS_CERT,
            keyFile: e.CAIRN_TLS_KEY,
            certSetting: label('CAIRN_TLS_CERT'),
            keySetting: label('CAIRN_TLS_KEY'),
          }
        : undefined,
  };
}

/**
 * Reads a config file (TOML). A file that cannot be read or parsed throws a ConfigError of one
 * line naming it (and the line and column of a syntax error); its values are checked by
 * `loadConfig`.
 */
export function readConfigFile(file: string): ConfigFile {
  let text: string;
  let mode: number;
  try {
    const fd = openSync(file, 'r');
    try {
      mode = fstatSync(fd).mode;
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new ConfigError([`${file}: cannot read the config file (${(err as Error).message})`]);
  }
  try {
    return { path: file, values: parseToml(text), mode };
  } catch (err) {
    const where = err instanceof TomlError ? `${file}:${err.line}:${err.column}` : file;
    const reason = (err as Error).message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    throw new ConfigError([`${where}: not a valid TOML file: ${reason}`]);
  }
}
