import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseDuration, parseRunConfig, readRunFile, runFileFlags, type RunFile } from './config.js';

describe('run configuration', () => {
  it('uses defaults for everything but the state directory', () => {
    expect(parseRunConfig({ stateDir: 'state' }, {})).toEqual({
      ok: true,
      config: {
        stateDir: path.resolve('state'),
        plugins: ['@cairn/plugin-dummy'],
        slots: 2,
        servers: undefined,
        logLevel: 'info',
        disconnectAbortMs: 600_000,
        taskTimeoutMs: 21_600_000,
        pluginIsolation: 'worker',
        pluginHeapMb: 512,
        maxFrameBytes: 1_048_576,
        shutdownGraceMs: 600_000,
        roots: [],
      },
    });
  });

  it('takes several control plane URLs (replicas) in --server or as a list in the file', () => {
    expect(parseRunConfig({ stateDir: 's', server: 'https://cp-1:8443, https://cp-2:8443' }, {})).toMatchObject({
      ok: true,
      config: { servers: ['https://cp-1:8443', 'https://cp-2:8443'] },
    });
    const f = runFileFlags('/etc/cairn/agent.toml', { server: ['https://cp-1:8443', 'https://cp-2:8443'] });
    if (!f.ok) throw new Error(f.problems.join('\n'));
    expect(parseRunConfig({ stateDir: 's' }, {}, f.file)).toMatchObject({
      ok: true,
      config: { servers: ['https://cp-1:8443', 'https://cp-2:8443'] },
    });
  });

  it.each([
    ['https://cp-1:8443,', '--server has an empty entry in "https://cp-1:8443,"'],
    [' , ', '--server must name at least one control plane URL'],
    ['https://cp-1:8443,ftp://cp-2', '--server must be an http:// or https:// URL, got "ftp://cp-2"'],
    ['https://cp-1:8443,https://cp-1:8443/', '--server names https://cp-1:8443/ twice'],
    [
      'https://cp-1:8443,http://cp-2:8080',
      '--server mixes http:// and https:// URLs ("https://cp-1:8443,http://cp-2:8080"); use https for every replica',
    ],
  ])('refuses --server %j', (server, problem) => {
    expect(parseRunConfig({ stateDir: 's', server }, {})).toEqual({ ok: false, problems: [problem] });
  });

  it('refuses a server in the file that is neither a URL nor a list of them', () => {
    const out = runFileFlags('/etc/cairn/agent.toml', { server: 3 });
    expect(out).toEqual({
      ok: false,
      problems: [
        '/etc/cairn/agent.toml: server must be a URL in quotes, or a list of them such as ["https://cp-1:8443", "https://cp-2:8443"], got 3',
      ],
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
        pluginHeapMb: '8',
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
      '--plugin-heap-mb must be an integer from 16 to 65536, got "8"',
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

  describe('from a config file', () => {
    const FILE = '/etc/cairn/agent.toml';
    const file = (values: Record<string, unknown>): RunFile => {
      const out = runFileFlags(FILE, values);
      if (!out.ok) throw new Error(out.problems.join('\n'));
      return out.file;
    };

    it('takes every run setting from the file, lists as lists', () => {
      const f = file({
        state_dir: '/var/lib/cairn-agent',
        plugins: ['@cairn/plugin-restic', '@cairn/plugin-dummy'],
        slots: 4,
        server: 'https://cp.example:8443',
        log_level: 'warn',
        disconnect_abort_ms: 1000,
        task_timeout_ms: 2000,
        plugin_isolation: 'inline',
        plugin_heap_mb: 1024,
        max_frame_bytes: 65536,
        shutdown_grace: '90s',
        roots: ['/srv/tenants/{tenant}', '/srv/shared'],
      });
      expect(parseRunConfig({}, {}, f)).toEqual({
        ok: true,
        config: {
          stateDir: '/var/lib/cairn-agent',
          plugins: ['@cairn/plugin-restic', '@cairn/plugin-dummy'],
          slots: 4,
          servers: ['https://cp.example:8443'],
          logLevel: 'warn',
          disconnectAbortMs: 1000,
          taskTimeoutMs: 2000,
          pluginIsolation: 'inline',
          pluginHeapMb: 1024,
          maxFrameBytes: 65536,
          shutdownGraceMs: 90_000,
          roots: ['/srv/tenants/{tenant}', '/srv/shared'],
        },
      });
      expect(parseRunConfig({}, {}, file({ state_dir: 's', shutdown_grace: 30 }))).toMatchObject({
        config: { shutdownGraceMs: 30_000 },
      });
    });

    it('accepts the example shipped for /etc/cairn (deploy/config/agent.toml)', () => {
      const example = readRunFile(fileURLToPath(new URL('../../../deploy/config/agent.toml', import.meta.url)));
      expect(example.ok && parseRunConfig({}, {}, example.file)).toMatchObject({
        ok: true,
        config: { stateDir: '/var/lib/cairn-agent', plugins: ['@cairn/plugin-restic'], shutdownGraceMs: 600_000 },
      });
    });

    it('lets the environment win over the file, and a flag over both', () => {
      const f = file({ state_dir: '/from/file', slots: 3, plugins: ['file-plugin'] });
      expect(parseRunConfig({}, { CAIRN_AGENT_SLOTS: '5' }, f)).toMatchObject({
        config: { stateDir: '/from/file', slots: 5, plugins: ['file-plugin'] },
      });
      expect(
        parseRunConfig({ slots: '6' }, { CAIRN_AGENT_SLOTS: '5', CAIRN_AGENT_STATE_DIR: '/from/env' }, f),
      ).toMatchObject({ config: { stateDir: '/from/env', slots: 6 } });
    });

    it('names the file and key of a bad value', () => {
      const out = parseRunConfig({}, {}, file({ state_dir: 's', slots: 0, plugin_isolation: 'vm', roots: ['srv'] }));
      expect(out.ok ? [] : out.problems).toEqual([
        '/etc/cairn/agent.toml: slots must be an integer from 1 to 1000, got "0"',
        '/etc/cairn/agent.toml: plugin_isolation must be one of worker, inline, got "vm"',
        `/etc/cairn/agent.toml: roots must list absolute directories, where {tenant} stands for the task's tenant; got "srv"`,
      ]);
      const noDir = parseRunConfig({}, {}, file({ slots: 2 }));
      expect(noDir.ok ? [] : noDir.problems).toEqual([
        '--state-dir (or CAIRN_AGENT_STATE_DIR, or state_dir in /etc/cairn/agent.toml) is required',
      ]);
    });

    it.each([
      [
        'an unknown key',
        { slot: 2 },
        '/etc/cairn/agent.toml: unknown key "slot" (the keys are state_dir, plugins, slots, server, log_level, disconnect_abort_ms, task_timeout_ms, plugin_isolation, plugin_heap_mb, max_frame_bytes, shutdown_grace, roots)',
      ],
      [
        'a number in quotes',
        { slots: '2' },
        '/etc/cairn/agent.toml: slots must be a whole number, written without quotes, got "2"',
      ],
      [
        'a fraction',
        { slots: 1.5 },
        '/etc/cairn/agent.toml: slots must be a whole number, written without quotes, got 1.5',
      ],
      ['text without quotes', { state_dir: 1 }, '/etc/cairn/agent.toml: state_dir must be text, in quotes, got 1'],
      [
        'one text for a list',
        { plugins: '@cairn/plugin-dummy' },
        '/etc/cairn/agent.toml: plugins must be a list of texts, such as ["a", "b"], got "@cairn/plugin-dummy"',
      ],
      [
        'a comma in a list item',
        { roots: ['/a,/b'] },
        '/etc/cairn/agent.toml: roots.0 must not hold a comma, got ["/a,/b"]',
      ],
      [
        'a grace of the wrong type',
        { shutdown_grace: true },
        '/etc/cairn/agent.toml: shutdown_grace must be a duration in quotes, such as "10m" or "90s", or a whole number of seconds, got true',
      ],
    ])('refuses %s in the file, naming it and the key', (_, values, problem) => {
      expect(runFileFlags(FILE, values)).toEqual({ ok: false, problems: [problem] });
    });
  });
});
