import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDuration, parseRunConfig } from './config.js';

describe('run configuration', () => {
  it('uses defaults for everything but the state directory', () => {
    expect(parseRunConfig({ stateDir: 'state' }, {})).toEqual({
      ok: true,
      config: {
        stateDir: path.resolve('state'),
        plugins: ['@cairn/plugin-dummy'],
        slots: 2,
        server: undefined,
        logLevel: 'info',
        disconnectAbortMs: 600_000,
        taskTimeoutMs: 21_600_000,
        pluginIsolation: 'worker',
        maxFrameBytes: 1_048_576,
        shutdownGraceMs: 600_000,
        roots: [],
      },
    });
  });

  it('reads --roots (or CAIRN_AGENT_ROOTS), with {tenant} standing for the task tenant', () => {
    expect(parseRunConfig({ stateDir: 's', roots: '/srv/t/{tenant}, /backup/in/' }, {})).toMatchObject({
      ok: true,
      config: { roots: ['/srv/t/{tenant}', '/backup/in/'] },
    });
    expect(parseRunConfig({ stateDir: 's' }, { CAIRN_AGENT_ROOTS: '/srv/a' })).toMatchObject({
      config: { roots: ['/srv/a'] },
    });
  });

  it.each([
    ['a relative root', 'srv/a', /--roots must list absolute directories/],
    ['a brace that is not {tenant}', '/srv/{tenant_id}', /--roots must list absolute directories/],
    ['the whole file system', '/srv/a,/', /--roots must not allow the whole file system/],
    ['the whole file system, spelt otherwise', '//./', /--roots must not allow the whole file system/],
  ])('refuses %s', (_, roots, problem) => {
    const out = parseRunConfig({ stateDir: 's', roots }, {});
    expect(out.ok).toBe(false);
    expect(out.ok ? [] : out.problems).toEqual([expect.stringMatching(problem)]);
  });

  it('reads the environment when a flag is absent, and prefers the flag', () => {
    const env = { CAIRN_AGENT_STATE_DIR: '/var/lib/a', CAIRN_AGENT_PLUGINS: 'a, b,,c', CAIRN_AGENT_SLOTS: '4' };
    expect(parseRunConfig({}, env)).toMatchObject({
      ok: true,
      config: { stateDir: '/var/lib/a', plugins: ['a', 'b', 'c'], slots: 4 },
    });
    expect(parseRunConfig({ slots: '1', plugins: 'x' }, env)).toMatchObject({
      ok: true,
      config: { slots: 1, plugins: ['x'] },
    });
  });

  it('lists every bad value, naming its flag', () => {
    const out = parseRunConfig(
      {
        slots: '0',
        logLevel: 'loud',
        server: 'ftp://x',
        disconnectAbortMs: '-1',
        taskTimeoutMs: '1.5',
        plugins: ',',
        pluginIsolation: 'vm',
        shutdownGrace: '10 minutes',
      },
      {},
    );
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.problems).toEqual([
      '--state-dir (or CAIRN_AGENT_STATE_DIR) is required',
      '--plugins must name at least one plugin package',
      '--slots must be an integer from 1 to 1000, got "0"',
      '--server must be an http:// or https:// URL, got "ftp://x"',
      '--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
      '--disconnect-abort-ms must be an integer from 0 to 2147483647, got "-1"',
      '--task-timeout-ms must be an integer from 1 to 2147483647, got "1.5"',
      '--shutdown-grace must be a duration such as 10m, 90s or 500ms (at most 24 days), got "10 minutes"',
      '--plugin-isolation must be one of worker, inline, got "vm"',
    ]);
  });

  it('reads the shutdown grace as a duration, a bare number being seconds', () => {
    expect([parseDuration('10m'), parseDuration('90'), parseDuration('1500ms'), parseDuration('1h')]).toEqual([
      600_000, 90_000, 1500, 3_600_000,
    ]);
    expect([parseDuration('-1s'), parseDuration('1.5s'), parseDuration('')]).toEqual([undefined, undefined, undefined]);
    expect(parseRunConfig({ stateDir: 's' }, { CAIRN_AGENT_SHUTDOWN_GRACE: '30s' })).toMatchObject({
      ok: true,
      config: { shutdownGraceMs: 30_000 },
    });
  });
});
