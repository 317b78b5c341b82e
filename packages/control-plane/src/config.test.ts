import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

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

  it('makes cairn-control-plane exit 2 with the message, before touching any database', () => {
    const bin = fileURLToPath(new URL('../dist/main.js', import.meta.url));
    const run = spawnSync(process.execPath, [bin], { env: { ...process.env, CAIRN_PORT: 'eighty' }, encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/invalid configuration:\n\s+CAIRN_PORT: /);
  });
});
