import path from 'node:path';
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
  /** An assignment sent this many times without the agent accepting it fails. */
  assignMaxSends: number;
  /** Largest accepted HTTP body. */
  maxBodyBytes: number;
  /** A client must have sent its whole request (headers and body) within this time. */
  requestTimeoutMs: number;
  /** An Idempotency-Key claim of a request that never answered (a crash) expires after this. */
  idempotencyLeaseMs: number;
  /** At shutdown, /readyz answers 503 for this long before the listener closes. */
  shutdownDrainMs: number;
  /** How often the scheduler looks for due fires. */
  schedulerTickMs: number;
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
  /** How long an in-place restore waits for the plugin to tell the instance's power state. */
  powerStateWaitMs: number;
  /** How long POST .../providers/{id}/preflight waits for the checks before it answers 202. */
  preflightWaitMs: number;
  /** TEST ONLY: a file holding the scheduler's current time (needs NODE_ENV=test). */
  testClockFile: string | undefined;
  /** Serve HTTPS (and wss:// for agents) with this PEM certificate chain and key; plain HTTP without. */
  tls: { certFile: string; keyFile: string } | undefined;
}

const int = (min: number) => z.coerce.number().int().min(min);

const schema = z.object({
  CAIRN_HOST: z.string().min(1).default('127.0.0.1'),
  CAIRN_PORT: int(0).max(65535).default(8080),
  CAIRN_DATA_DIR: z.string().min(1).default('./data'),
  CAIRN_DATABASE_URL: z
    .string()
    .regex(/^(sqlite:|mysql:\/\/)/, 'must start with sqlite: or mysql://')
    .optional(),
  CAIRN_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  CAIRN_SECRET_KEY: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex characters (32 bytes)')
    .optional(),
  CAIRN_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  CAIRN_HEARTBEAT_MS: int(100).default(5000),
  CAIRN_TASK_LEASE_MS: int(500).default(60_000),
  CAIRN_DISPATCH_POLL_MS: int(10).default(1000),
  CAIRN_MAX_RUNNING_TASKS: int(1).optional(),
  /** The former name of CAIRN_MAX_RUNNING_TASKS, still accepted. */
  CAIRN_MAX_CONCURRENT_TASKS: int(1).optional(),
  CAIRN_MAX_FRAME_BYTES: int(1024).default(1024 * 1024),
  CAIRN_MAX_BODY_BYTES: int(1024).default(1024 * 1024),
  CAIRN_REQUEST_TIMEOUT_MS: int(1000).max(30_000).default(20_000),
  CAIRN_IDEMPOTENCY_LEASE_MS: int(1000).max(600_000).default(30_000),
  CAIRN_SHUTDOWN_DRAIN_MS: int(0).max(600_000).default(3000),
  CAIRN_AGENT_FRAME_RATE: int(10).default(200),
  CAIRN_AGENT_FRAME_BURST: int(100).default(2000),
  CAIRN_AGENT_BYTE_RATE: int(1024).default(128 * 1024),
  CAIRN_AGENT_BYTE_BURST: int(4096).optional(),
  CAIRN_AGENT_RECONNECT_MS: int(0).max(60_000).default(1000),
  CAIRN_STREAMS_PER_TOKEN: int(1).max(100_000).default(5),
  CAIRN_STREAMS_PER_TENANT: int(1).max(100_000).default(20),
  CAIRN_STREAM_STALL_MS: int(1000).max(600_000).default(30_000),
  CAIRN_WAITERS_PER_TENANT: int(1).max(10_000).default(10),
  CAIRN_MAX_WAITERS: int(1).max(100_000).default(100),
  CAIRN_ASSIGN_MAX_SENDS: int(1).default(5),
  CAIRN_SCHEDULER_TICK_MS: int(10).max(60_000).default(1000),
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
  CAIRN_POWER_STATE_WAIT_MS: int(100).max(120_000).default(30_000),
  CAIRN_PREFLIGHT_WAIT_MS: int(100).max(120_000).default(30_000),
  CAIRN_TEST_CLOCK_FILE: z.string().min(1).optional(),
  CAIRN_TLS_CERT: z.string().min(1, 'must be the path of a PEM certificate file').optional(),
  CAIRN_TLS_KEY: z.string().min(1, 'must be the path of a PEM private key file').optional(),
  NODE_ENV: z.string().optional(),
});

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Reads the config; a bad variable throws ConfigError naming it. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  if (e.CAIRN_TASK_LEASE_MS < 2 * e.CAIRN_HEARTBEAT_MS) {
    throw new ConfigError(
      `invalid configuration:\n  CAIRN_TASK_LEASE_MS (${e.CAIRN_TASK_LEASE_MS}) must be at least twice CAIRN_HEARTBEAT_MS (${e.CAIRN_HEARTBEAT_MS})`,
    );
  }
  // A clock read from a file would let anyone who can write it fire every schedule: never in
  // production, so it is refused unless the process also runs under NODE_ENV=test.
  if (e.CAIRN_TEST_CLOCK_FILE !== undefined && e.NODE_ENV !== 'test') {
    throw new ConfigError(
      'invalid configuration:\n  CAIRN_TEST_CLOCK_FILE: a test-only clock; refused unless NODE_ENV=test',
    );
  }
  // A paced agent keeps inside a quarter of the byte burst: its largest frame must fit there.
  const byteBurst = e.CAIRN_AGENT_BYTE_BURST ?? 4 * e.CAIRN_MAX_FRAME_BYTES;
  if (byteBurst < 4 * e.CAIRN_MAX_FRAME_BYTES) {
    throw new ConfigError(
      `invalid configuration:\n  CAIRN_AGENT_BYTE_BURST (${byteBurst}) must be at least 4 × CAIRN_MAX_FRAME_BYTES (${4 * e.CAIRN_MAX_FRAME_BYTES})`,
    );
  }
  if (
    e.CAIRN_MAX_RUNNING_TASKS !== undefined &&
    e.CAIRN_MAX_CONCURRENT_TASKS !== undefined &&
    e.CAIRN_MAX_RUNNING_TASKS !== e.CAIRN_MAX_CONCURRENT_TASKS
  ) {
    throw new ConfigError(
      `invalid configuration:\n  CAIRN_MAX_RUNNING_TASKS (${e.CAIRN_MAX_RUNNING_TASKS}) and its former name CAIRN_MAX_CONCURRENT_TASKS (${e.CAIRN_MAX_CONCURRENT_TASKS}) disagree; set only CAIRN_MAX_RUNNING_TASKS`,
    );
  }
  // One without the other would quietly serve plain HTTP where the operator asked for TLS.
  if ((e.CAIRN_TLS_CERT === undefined) !== (e.CAIRN_TLS_KEY === undefined)) {
    const [set, missing] = e.CAIRN_TLS_CERT ? ['CAIRN_TLS_CERT', 'CAIRN_TLS_KEY'] : ['CAIRN_TLS_KEY', 'CAIRN_TLS_CERT'];
    throw new ConfigError(`invalid configuration:\n  ${missing}: required when ${set} is set (HTTPS needs both)`);
  }
  return {
    host: e.CAIRN_HOST,
    port: e.CAIRN_PORT,
    dataDir: e.CAIRN_DATA_DIR,
    databaseUrl: e.CAIRN_DATABASE_URL ?? `sqlite:${path.join(e.CAIRN_DATA_DIR, 'cairn.db')}`,
    adminToken: e.CAIRN_ADMIN_TOKEN,
    secretKey: e.CAIRN_SECRET_KEY,
    logLevel: e.CAIRN_LOG_LEVEL,
    heartbeatMs: e.CAIRN_HEARTBEAT_MS,
    taskLeaseMs: e.CAIRN_TASK_LEASE_MS,
    dispatchPollMs: e.CAIRN_DISPATCH_POLL_MS,
    maxConcurrentTasks: e.CAIRN_MAX_RUNNING_TASKS ?? e.CAIRN_MAX_CONCURRENT_TASKS ?? 1000,
    maxFrameBytes: e.CAIRN_MAX_FRAME_BYTES,
    maxBodyBytes: e.CAIRN_MAX_BODY_BYTES,
    requestTimeoutMs: e.CAIRN_REQUEST_TIMEOUT_MS,
    idempotencyLeaseMs: e.CAIRN_IDEMPOTENCY_LEASE_MS,
    shutdownDrainMs: e.CAIRN_SHUTDOWN_DRAIN_MS,
    agentFrameRate: { perSecond: e.CAIRN_AGENT_FRAME_RATE, burst: e.CAIRN_AGENT_FRAME_BURST },
    agentByteRate: { perSecond: e.CAIRN_AGENT_BYTE_RATE, burst: byteBurst },
    agentReconnectMs: e.CAIRN_AGENT_RECONNECT_MS,
    streamLimits: { perToken: e.CAIRN_STREAMS_PER_TOKEN, perTenant: e.CAIRN_STREAMS_PER_TENANT },
    streamStallMs: e.CAIRN_STREAM_STALL_MS,
    waiterLimits: { perTenant: e.CAIRN_WAITERS_PER_TENANT, total: e.CAIRN_MAX_WAITERS },
    assignMaxSends: e.CAIRN_ASSIGN_MAX_SENDS,
    schedulerTickMs: e.CAIRN_SCHEDULER_TICK_MS,
    syncIntervalS: e.CAIRN_SYNC_INTERVAL_S,
    pruneIntervalS: e.CAIRN_PRUNE_INTERVAL_S,
    syncVanishShare: e.CAIRN_SYNC_VANISH_SHARE,
    jobRunsKeep: e.CAIRN_JOB_RUNS_KEEP,
    jobRunsMaxAgeDays: e.CAIRN_JOB_RUNS_MAX_AGE_DAYS,
    powerStateWaitMs: e.CAIRN_POWER_STATE_WAIT_MS,
    preflightWaitMs: e.CAIRN_PREFLIGHT_WAIT_MS,
    testClockFile: e.CAIRN_TEST_CLOCK_FILE,
    tls:
      e.CAIRN_TLS_CERT !== undefined && e.CAIRN_TLS_KEY !== undefined
        ? { certFile: e.CAIRN_TLS_CERT, keyFile: e.CAIRN_TLS_KEY }
        : undefined,
  };
}
