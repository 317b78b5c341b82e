import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, FILE_KEYS, loadConfig, readConfigFile, type ConfigFile } from './config.js';

describe('control plane configuration', () => {
  it('has working defaults: SQLite under ./data on 127.0.0.1:8080', () => {
    expect(loadConfig({})).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      databaseUrl: 'sqlite:data/cairn.db',
      heartbeatMs: 5000,
      taskLeaseMs: 60_000,
    });
  });

  it('accepts the test-only clock file only under NODE_ENV=test', () => {
    expect(loadConfig({}).testClockFile).toBeUndefined();
    for (const NODE_ENV of [undefined, 'production', 'development', '']) {
      const env = { CAIRN_TEST_CLOCK_FILE: '/tmp/now', ...(NODE_ENV === undefined ? {} : { NODE_ENV }) };
      expect(() => loadConfig(env), String(NODE_ENV)).toThrow(/CAIRN_TEST_CLOCK_FILE.*NODE_ENV=test/);
    }
    expect(loadConfig({ CAIRN_TEST_CLOCK_FILE: '/tmp/now', NODE_ENV: 'test' }).testClockFile).toBe('/tmp/now');
  });

  it('names every bad variable at once', () => {
    let error: unknown;
    try {
      loadConfig({
        CAIRN_PORT: '70000',
        CAIRN_DATABASE_URL: 'postgres://x',
        CAIRN_ADMIN_TOKEN: 'short',
        CAIRN_SECRET_KEY: 'abc',
        CAIRN_LOG_LEVEL: 'loud',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of [
      'CAIRN_PORT',
      'CAIRN_DATABASE_URL',
      'CAIRN_ADMIN_TOKEN',
      'CAIRN_SECRET_KEY',
      'CAIRN_LOG_LEVEL',
    ]) {
      expect(message).toContain(name);
    }
  });

  it('cuts slow clients off within 30 s by default, and never allows more', () => {
    expect(loadConfig({}).requestTimeoutMs).toBeLessThanOrEqual(30_000);
    expect(() => loadConfig({ CAIRN_REQUEST_TIMEOUT_MS: '300000' })).toThrow(/CAIRN_REQUEST_TIMEOUT_MS/);
    // An unanswered Idempotency-Key claim holds for seconds, not for the 24 h replay window.
    expect(loadConfig({}).idempotencyLeaseMs).toBeLessThanOrEqual(60_000);
  });

  it('stores at most 150 heartbeats a second by default (what idle agents cost: 3-4 % of a core); a count, at least 1', () => {
    expect(loadConfig({}).heartbeatsPerSecond).toBe(150);
    expect(loadConfig({ CAIRN_HEARTBEATS_PER_S: '40' }).heartbeatsPerSecond).toBe(40);
    for (const bad of ['0', '-5', '2.5', 'fast'])
      expect(() => loadConfig({ CAIRN_HEARTBEATS_PER_S: bad }), bad).toThrow(/CAIRN_HEARTBEATS_PER_S/);
  });

  it('syncs providers every 300 s by default; 0 turns it off; anything else not a count of seconds is refused', () => {
    expect(loadConfig({}).syncIntervalS).toBe(300);
    expect(loadConfig({ CAIRN_SYNC_INTERVAL_S: '0' }).syncIntervalS).toBe(0);
    expect(loadConfig({ CAIRN_SYNC_INTERVAL_S: '60' }).syncIntervalS).toBe(60);
    for (const bad of ['-1', '1.5', 'often', '604801']) {
      expect(() => loadConfig({ CAIRN_SYNC_INTERVAL_S: bad }), bad).toThrow(/CAIRN_SYNC_INTERVAL_S: must be/);
    }
  });

  it('prunes connections daily by default; 0 turns it off; anything else not a count of seconds is refused', () => {
    expect(loadConfig({}).pruneIntervalS).toBe(86_400);
    expect(loadConfig({ CAIRN_PRUNE_INTERVAL_S: '0' }).pruneIntervalS).toBe(0);
    expect(loadConfig({ CAIRN_PRUNE_INTERVAL_S: '3600' }).pruneIntervalS).toBe(3600);
    for (const bad of ['-1', '1.5', 'nightly', '2592001']) {
      expect(() => loadConfig({ CAIRN_PRUNE_INTERVAL_S: bad }), bad).toThrow(/CAIRN_PRUNE_INTERVAL_S: must be/);
    }
  });

  it('keeps 100 runs of each backup job for 90 days by default; anything else not a count is refused', () => {
    expect(loadConfig({})).toMatchObject({ jobRunsKeep: 100, jobRunsMaxAgeDays: 90 });
    expect(loadConfig({ CAIRN_JOB_RUNS_KEEP: '5', CAIRN_JOB_RUNS_MAX_AGE_DAYS: '7' })).toMatchObject({
      jobRunsKeep: 5,
      jobRunsMaxAgeDays: 7,
    });
    for (const bad of ['0', '-1', '1.5', 'many', '10001']) {
      expect(() => loadConfig({ CAIRN_JOB_RUNS_KEEP: bad }), bad).toThrow(/CAIRN_JOB_RUNS_KEEP: must be/);
    }
    for (const bad of ['0', '2.5', 'forever', '3651']) {
      expect(() => loadConfig({ CAIRN_JOB_RUNS_MAX_AGE_DAYS: bad }), bad).toThrow(
        /CAIRN_JOB_RUNS_MAX_AGE_DAYS: must be/,
      );
    }
  });

  it('keeps ended tasks 90 days, progress reports 7 and events 365 by default; a limit not a number of days is refused', () => {
    expect(loadConfig({}).history).toEqual({ taskDays: 90, progressDays: 7, eventDays: 365 });
    expect(
      loadConfig({ CAIRN_TASK_HISTORY_DAYS: '30', CAIRN_PROGRESS_HISTORY_DAYS: '1', CAIRN_EVENT_HISTORY_DAYS: '3650' })
        .history,
    ).toEqual({ taskDays: 30, progressDays: 1, eventDays: 3650 });
    for (const name of ['CAIRN_TASK_HISTORY_DAYS', 'CAIRN_PROGRESS_HISTORY_DAYS', 'CAIRN_EVENT_HISTORY_DAYS']) {
      for (const bad of ['0', '-1', '1.5', 'forever', '3651', '']) {
        expect(() => loadConfig({ [name]: bad }), `${name}=${bad}`).toThrow(
          new RegExp(`${name}: must be a whole number from 1 to 3650`),
        );
      }
    }
  });

  it('holds a sync that would mark more than half of the live points vanished by default; the share is in (0, 1]', () => {
    expect(loadConfig({}).syncVanishShare).toBe(0.5);
    expect(loadConfig({ CAIRN_SYNC_VANISH_SHARE: '1' }).syncVanishShare).toBe(1);
    expect(loadConfig({ CAIRN_SYNC_VANISH_SHARE: '0.05' }).syncVanishShare).toBe(0.05);
    for (const bad of ['0', '-0.5', '1.01', '50%', 'half', '', 'Infinity']) {
      expect(() => loadConfig({ CAIRN_SYNC_VANISH_SHARE: bad }), bad).toThrow(
        /CAIRN_SYNC_VANISH_SHARE: must be a number above 0 and at most 1/,
      );
    }
  });

  it('takes the global task limit from CAIRN_MAX_RUNNING_TASKS, or its former name; two different values are an error', () => {
    expect(loadConfig({}).maxConcurrentTasks).toBe(1000);
    expect(loadConfig({ CAIRN_MAX_RUNNING_TASKS: '7' }).maxConcurrentTasks).toBe(7);
    expect(loadConfig({ CAIRN_MAX_CONCURRENT_TASKS: '8' }).maxConcurrentTasks).toBe(8);
    expect(loadConfig({ CAIRN_MAX_RUNNING_TASKS: '9', CAIRN_MAX_CONCURRENT_TASKS: '9' }).maxConcurrentTasks).toBe(9);
    expect(() => loadConfig({ CAIRN_MAX_RUNNING_TASKS: '3', CAIRN_MAX_CONCURRENT_TASKS: '4' })).toThrow(
      /CAIRN_MAX_RUNNING_TASKS \(3\).*CAIRN_MAX_CONCURRENT_TASKS \(4\) disagree/,
    );
  });

  it("bounds each agent's bytes, with a burst of at least four of its largest frames, and paces its reconnects", () => {
    expect(loadConfig({})).toMatchObject({
      agentByteRate: { perSecond: 131_072, burst: 4 * 1024 * 1024 },
      agentReconnectMs: 1000,
    });
    expect(loadConfig({ CAIRN_MAX_FRAME_BYTES: '65536' }).agentByteRate.burst).toBe(262_144);
    expect(() => loadConfig({ CAIRN_MAX_FRAME_BYTES: '65536', CAIRN_AGENT_BYTE_BURST: '200000' })).toThrow(
      /CAIRN_AGENT_BYTE_BURST \(200000\) must be at least 4 × CAIRN_MAX_FRAME_BYTES \(262144\)/,
    );
    expect(() => loadConfig({ CAIRN_AGENT_BYTE_RATE: '10' })).toThrow(/CAIRN_AGENT_BYTE_RATE/);
    expect(() => loadConfig({ CAIRN_AGENT_RECONNECT_MS: '-1' })).toThrow(/CAIRN_AGENT_RECONNECT_MS/);
    expect(loadConfig({ CAIRN_AGENT_RECONNECT_MS: '0' }).agentReconnectMs).toBe(0);
  });

  it('caps event streams per token and per tenant, and cuts a stream that is not read after 30 s, by default', () => {
    expect(loadConfig({})).toMatchObject({ streamLimits: { perToken: 5, perTenant: 20 }, streamStallMs: 30_000 });
    expect(
      loadConfig({ CAIRN_STREAMS_PER_TOKEN: '2', CAIRN_STREAMS_PER_TENANT: '8', CAIRN_STREAM_STALL_MS: '5000' }),
    ).toMatchObject({ streamLimits: { perToken: 2, perTenant: 8 }, streamStallMs: 5000 });
    for (const [name, value] of [
      ['CAIRN_STREAMS_PER_TOKEN', '0'],
      ['CAIRN_STREAMS_PER_TENANT', 'many'],
      ['CAIRN_STREAM_STALL_MS', '999'],
      ['CAIRN_STREAM_STALL_MS', '600001'],
    ] as const)
      expect(() => loadConfig({ [name]: value }), `${name}=${value}`).toThrow(new RegExp(name));
  });

  it("limits each tenant's API requests to bursts of 2,000 refilled at 200 a second by default", () => {
    expect(loadConfig({}).tenantRequestRate).toEqual({ perSecond: 200, burst: 2000 });
    expect(loadConfig({ CAIRN_TENANT_REQUEST_RATE: '5', CAIRN_TENANT_REQUEST_BURST: '50' }).tenantRequestRate).toEqual({
      perSecond: 5,
      burst: 50,
    });
    for (const [name, value] of [
      ['CAIRN_TENANT_REQUEST_RATE', '0'],
      ['CAIRN_TENANT_REQUEST_RATE', '1.5'],
      ['CAIRN_TENANT_REQUEST_BURST', '0'],
      ['CAIRN_TENANT_REQUEST_BURST', 'lots'],
    ] as const)
      expect(() => loadConfig({ [name]: value }), `${name}=${value}`).toThrow(new RegExp(name));
  });

  it('caps waiting requests per tenant (10) and for all tenants together (100) by default', () => {
    expect(loadConfig({}).waiterLimits).toEqual({ perTenant: 10, total: 100 });
    expect(loadConfig({ CAIRN_WAITERS_PER_TENANT: '3', CAIRN_MAX_WAITERS: '30' }).waiterLimits).toEqual({
      perTenant: 3,
      total: 30,
    });
    for (const [name, value] of [
      ['CAIRN_WAITERS_PER_TENANT', '0'],
      ['CAIRN_WAITERS_PER_TENANT', 'ten'],
      ['CAIRN_MAX_WAITERS', '0'],
    ] as const)
      expect(() => loadConfig({ [name]: value }), `${name}=${value}`).toThrow(new RegExp(name));
  });

  it('refuses a lease shorter than two heartbeats', () => {
    expect(() => loadConfig({ CAIRN_HEARTBEAT_MS: '5000', CAIRN_TASK_LEASE_MS: '6000' })).toThrow(
      /CAIRN_TASK_LEASE_MS \(6000\) must be at least twice CAIRN_HEARTBEAT_MS \(5000\)/,
    );
  });

  it('refuses a duty lease shorter than two scheduler ticks, or out of its range', () => {
    expect(() => loadConfig({ CAIRN_SCHEDULER_TICK_MS: '1000', CAIRN_DUTY_LEASE_MS: '1500' })).toThrow(
      /CAIRN_DUTY_LEASE_MS \(1500\) must be at least twice CAIRN_SCHEDULER_TICK_MS \(1000\)/,
    );
    expect(() => loadConfig({ CAIRN_DUTY_LEASE_MS: '999' })).toThrow(/CAIRN_DUTY_LEASE_MS/);
    expect(() => loadConfig({ CAIRN_DUTY_LEASE_MS: 'soon' })).toThrow(/CAIRN_DUTY_LEASE_MS/);
    expect(loadConfig({}).dutyLeaseMs).toBe(15_000);
    expect(loadConfig({ CAIRN_DUTY_LEASE_MS: '4000', CAIRN_SCHEDULER_TICK_MS: '2000' }).dutyLeaseMs).toBe(4000);
  });

  it('reads how long the scheduler may go without asking the store, 0 to 10 minutes', () => {
    expect(loadConfig({}).schedulerRefreshMs).toBe(5000);
    expect(loadConfig({ CAIRN_SCHEDULER_REFRESH_MS: '0' }).schedulerRefreshMs).toBe(0);
    expect(() => loadConfig({ CAIRN_SCHEDULER_REFRESH_MS: '600001' })).toThrow(/CAIRN_SCHEDULER_REFRESH_MS/);
    expect(() => loadConfig({ CAIRN_SCHEDULER_REFRESH_MS: '-1' })).toThrow(/CAIRN_SCHEDULER_REFRESH_MS/);
    expect(() => loadConfig({ CAIRN_SCHEDULER_REFRESH_MS: 'often' })).toThrow(/CAIRN_SCHEDULER_REFRESH_MS/);
  });

  it('makes cairn-control-plane exit 2 with one line per bad setting, before touching any database', () => {
    const bin = fileURLToPath(new URL('../dist/main.js', import.meta.url));
    const run = spawnSync(process.execPath, [bin], { env: { ...process.env, CAIRN_PORT: 'eighty' }, encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe('cairn-control-plane: CAIRN_PORT: must be a whole number from 0 to 65535, got "eighty"\n');
  });
});

describe('control plane config file', () => {
  const file = (values: Record<string, unknown>, mode = 0o640): ConfigFile => ({
    path: '/etc/cairn/control-plane.toml',
    values,
    mode,
  });
  /** The problems loadConfig finds, or [] when it accepts. */
  const problems = (env: NodeJS.ProcessEnv, f?: ConfigFile): string[] => {
    try {
      loadConfig(env, f);
      return [];
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems;
    }
  };

  it('has a key for every variable: CAIRN_TASK_LEASE_MS is task_lease_ms (the former name excepted)', () => {
    expect(FILE_KEYS.get('task_lease_ms')).toBe('CAIRN_TASK_LEASE_MS');
    expect(FILE_KEYS.get('tls_cert')).toBe('CAIRN_TLS_CERT');
    expect(FILE_KEYS.get('max_running_tasks')).toBe('CAIRN_MAX_RUNNING_TASKS');
    expect([...FILE_KEYS.values()]).not.toContain('CAIRN_MAX_CONCURRENT_TASKS');
    const documented = readFileSync(fileURLToPath(new URL('../../../docs/operations.md', import.meta.url)), 'utf8');
    for (const [key, name] of FILE_KEYS)
      expect(documented, key).toMatch(new RegExp(`\\| \`${name}\` +\\| \`${key}\` +\\|`));
  });

  it("takes the file's values, and the environment's over them", () => {
    const f = file({ port: 9443, data_dir: '/var/lib/cairn', sync_vanish_share: 0.25, log_level: 'warn' });
    expect(loadConfig({}, f)).toMatchObject({
      port: 9443,
      dataDir: '/var/lib/cairn',
      databaseUrl: 'sqlite:/var/lib/cairn/cairn.db',
      syncVanishShare: 0.25,
      logLevel: 'warn',
    });
    expect(loadConfig({ CAIRN_PORT: '8081', CAIRN_LOG_LEVEL: 'debug' }, f)).toMatchObject({
      port: 8081,
      dataDir: '/var/lib/cairn',
      logLevel: 'debug',
    });
  });

  it.each([
    ['an unknown key', { prot: 80 }, '/etc/cairn/control-plane.toml: unknown key "prot" (did you mean "port"?)'],
    [
      'a variable name for a key',
      { CAIRN_DATA_DIR: '/x' },
      '/etc/cairn/control-plane.toml: unknown key "CAIRN_DATA_DIR" (did you mean "data_dir"?)',
    ],
    [
      'a table',
      { tls: { cert: 'a' } },
      '/etc/cairn/control-plane.toml: unknown key "tls" (the keys are flat: tls_cert, tls_key)',
    ],
    [
      'a key far from any',
      { colour: 'blue' },
      '/etc/cairn/control-plane.toml: unknown key "colour" (the keys are listed in docs/operations.md, "Control plane")',
    ],
    [
      'a number in quotes',
      { port: '8080' },
      '/etc/cairn/control-plane.toml: port: must be a number, written without quotes, got "8080"',
    ],
    ['text without quotes', { host: 10 }, '/etc/cairn/control-plane.toml: host: must be text, in quotes, got 10'],
    ['a list', { host: ['a'] }, '/etc/cairn/control-plane.toml: host: must be text, in quotes, got a list'],
    [
      'a value out of range',
      { port: 70000 },
      '/etc/cairn/control-plane.toml: port: must be a whole number from 0 to 65535, got 70000',
    ],
    [
      'a fraction',
      { heartbeat_ms: 1.5 },
      '/etc/cairn/control-plane.toml: heartbeat_ms: must be a whole number of at least 100, got 1.5',
    ],
    [
      'a value not allowed',
      { log_level: 'loud' },
      '/etc/cairn/control-plane.toml: log_level: must be one of trace, debug, info, warn, error, fatal, silent, got "loud"',
    ],
  ])('refuses %s, in one line naming the file and the key', (_, values, problem) => {
    expect(problems({}, file(values))).toEqual([problem]);
  });

  it('checks the whole file, even a value the environment overrides, and never echoes a secret', () => {
    expect(problems({ CAIRN_PORT: '8080' }, file({ port: -1, admin_token: 'short', secret_key: 'abc' }))).toEqual([
      '/etc/cairn/control-plane.toml: port: must be a whole number from 0 to 65535, got -1',
      '/etc/cairn/control-plane.toml: admin_token: must be at least 16 characters',
      '/etc/cairn/control-plane.toml: secret_key: must be 64 hex characters (32 bytes)',
    ]);
    expect(problems({}, file({ admin_token: 1234567890123456 }))).toEqual([
      '/etc/cairn/control-plane.toml: admin_token: must be text, in quotes',
    ]);
    expect(problems({ CAIRN_ADMIN_TOKEN: 'short' })).toEqual(['CAIRN_ADMIN_TOKEN: must be at least 16 characters']);
  });

  it('names the file and its key when two settings disagree', () => {
    expect(problems({ CAIRN_HEARTBEAT_MS: '5000' }, file({ task_lease_ms: 6000 }))).toEqual([
      'task_lease_ms (/etc/cairn/control-plane.toml) (6000) must be at least twice CAIRN_HEARTBEAT_MS (5000)',
    ]);
    expect(problems({}, file({ tls_cert: '/etc/cairn/tls.crt' }))).toEqual([
      '/etc/cairn/control-plane.toml: tls_key: required when tls_cert is set (HTTPS needs both)',
    ]);
  });

  it('refuses a file that every user may read when it holds a secret; without one, any mode will do', () => {
    const token = { admin_token: 'a-long-enough-admin-token' };
    const refusal =
      '/etc/cairn/control-plane.toml: holds a secret (admin_token) but every user of the host may read it (mode 0644); make it readable by its owner and group only (chmod 0640)';
    expect(problems({}, file(token, 0o100644))).toEqual([refusal]);
    expect(problems({}, file(token, 0o100640))).toEqual([]);
    expect(problems({}, file({ database_url: 'mysql://cairn:pw@db:3306/cairn' }, 0o644))).toEqual([
      refusal.replace('admin_token', 'database_url'),
    ]);
    expect(problems({}, file({ database_url: 'mysql://cairn@db:3306/cairn', port: 1 }, 0o644))).toEqual([]);
  });

  it('accepts the example shipped for /etc/cairn (deploy/config/control-plane.toml)', () => {
    const example = readConfigFile(
      fileURLToPath(new URL('../../../deploy/config/control-plane.toml', import.meta.url)),
    );
    expect(loadConfig({}, example)).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      dataDir: '/var/lib/cairn',
      databaseUrl: 'sqlite:/var/lib/cairn/cairn.db',
      tls: undefined,
    });
  });

  it('reads TOML, and names the file (and where in it) when it cannot', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cairn-config-'));
    try {
      const good = path.join(dir, 'good.toml');
      writeFileSync(good, '# the control plane\nport = 8443\nhost = "0.0.0.0"\n', { mode: 0o640 });
      expect(readConfigFile(good)).toMatchObject({ path: good, values: { port: 8443, host: '0.0.0.0' } });
      expect(readConfigFile(good).mode & 0o777).toBe(0o640);
      const bad = path.join(dir, 'bad.toml');
      writeFileSync(bad, 'port = 8443\nhost = 0.0.0.0\n');
      expect(() => readConfigFile(bad)).toThrow(new RegExp(`^${bad}:2:\\d+: not a valid TOML file: `));
      expect(() => readConfigFile(path.join(dir, 'missing.toml'))).toThrow(
        /missing\.toml: cannot read the config file \(ENOENT: no such file or directory/,
      );
      expect(() => readConfigFile(dir)).toThrow(/cannot read the config file \(EISDIR/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
