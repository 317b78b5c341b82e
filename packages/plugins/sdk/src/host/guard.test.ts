import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PluginError } from '../errors.js';
import type { ProviderConnection, TaskContext } from '../provider.js';
import { guard, TaskAbort } from './guard.js';
import { loadPlugin, type LoadedPlugin } from './loader.js';
import { runOperation } from './operations.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../test-fixtures/${name}`, import.meta.url));

function ctxFor(signal: AbortSignal): TaskContext {
  const noop = () => {};
  return {
    taskId: 't',
    attempt: 1,
    signal,
    progress: noop,
    event: noop,
    logger: { debug: noop, info: noop, warn: noop, error: noop },
    host: NO_HOST,
  };
}

const NO_HOST = { roots: [], denied: [] };

function backup(
  plugin: LoadedPlugin,
  signal: AbortSignal,
  timeoutMs = 30_000,
  config: Record<string, unknown> = {},
  context: (signal: AbortSignal) => TaskContext = ctxFor,
  abortGraceMs = 100,
) {
  return runOperation({
    plugin,
    operation: 'backup',
    connection: { endpoint: null, config, credentials: {} },
    params: { instanceId: 'i', instanceName: 'vm', locator: {}, mode: 'FULL' },
    host: NO_HOST,
    context,
    signal,
    timeoutMs,
    abortGraceMs,
  });
}

describe('guard', () => {
  it('keeps the code of a PluginError', async () => {
    const cooperative = await loadPlugin(fixture('cooperative'));
    const out = await backup(cooperative, new AbortController().signal, 30_000, {
      failCode: 'REPO_LOCKED',
      failMessage: 'locked',
    });
    expect(out).toEqual({ ok: false, failure: { code: 'REPO_LOCKED', message: 'locked', retryable: false } });
  });

  it('keeps retryable from a PluginError', async () => {
    const out = await guard(() => Promise.reject(new PluginError('BUSY', 'try later', { retryable: true })), {
      signal: new AbortController().signal,
      timeoutMs: 10_000,
    });
    expect(out).toEqual({ ok: false, failure: { code: 'BUSY', message: 'try later', retryable: true } });
  });

  it('ends a cancelled task as CANCELLED even when the plugin ignores its signal', async () => {
    const hangs = await loadPlugin(fixture('hangs'));
    const controller = new AbortController();
    const running = backup(hangs, controller.signal);
    controller.abort(new TaskAbort({ code: 'CANCELLED', message: 'cancelled through the API', retryable: false }));
    expect(await running).toEqual({
      ok: false,
      failure: { code: 'CANCELLED', message: 'cancelled through the API', retryable: false },
    });
  });

  it('treats a bare abort as a cancel', async () => {
    const controller = new AbortController();
    const running = guard(() => new Promise<never>(() => {}), {
      signal: controller.signal,
      timeoutMs: 10_000,
      abortGraceMs: 50,
    });
    controller.abort();
    expect(await running).toMatchObject({ ok: false, failure: { code: 'CANCELLED' } });
  });

  it('ends a hung plugin with PLUGIN_TIMEOUT and aborts its signal', async () => {
    const hangs = await loadPlugin(fixture('hangs'));
    const out = await backup(hangs, new AbortController().signal, 200);
    expect(out).toMatchObject({ ok: false, failure: { code: 'PLUGIN_TIMEOUT', retryable: true } });

    let seen: AbortSignal | undefined;
    await guard(
      (signal) => {
        seen = signal;
        return new Promise<never>(() => {});
      },
      { signal: new AbortController().signal, timeoutMs: 50, abortGraceMs: 50 },
    );
    expect(seen?.aborted).toBe(true);
  });

  it('turns a rejection with a plain error into PLUGIN_CRASHED with its message', async () => {
    const rejects = await loadPlugin(fixture('rejects'));
    expect(await backup(rejects, new AbortController().signal)).toEqual({
      ok: false,
      failure: {
        code: 'PLUGIN_CRASHED',
        message: "Cannot read properties of undefined (reading 'snapshotId')",
        retryable: false,
      },
    });
  });

  it('turns a synchronous throw into PLUGIN_CRASHED', async () => {
    const throwsSync = await loadPlugin(fixture('throws-sync'));
    expect(await backup(throwsSync, new AbortController().signal)).toEqual({
      ok: false,
      failure: { code: 'PLUGIN_CRASHED', message: 'boom: thrown synchronously', retryable: false },
    });
  });

  it('turns a thrown non-error value into PLUGIN_CRASHED', async () => {
    const out = await guard(
      () => {
        throw 'a string';
      },
      { signal: new AbortController().signal, timeoutMs: 1_000 },
    );
    expect(out).toEqual({ ok: false, failure: { code: 'PLUGIN_CRASHED', message: 'a string', retryable: false } });
  });

  it('reports the abort reason the agent chose, not the error the plugin rejects with', async () => {
    const cooperative = await loadPlugin(fixture('cooperative'));
    const controller = new AbortController();
    const running = backup(cooperative, controller.signal, 30_000, { hold: true });
    controller.abort(new TaskAbort({ code: 'AGENT_DISCONNECTED', message: 'cut off', retryable: true }));
    expect(await running).toEqual({
      ok: false,
      failure: { code: 'AGENT_DISCONNECTED', message: 'cut off', retryable: true },
    });
  });

  it('returns the value of a call that succeeds', async () => {
    expect(await guard(() => 42, { signal: new AbortController().signal, timeoutMs: 1_000 })).toEqual({
      ok: true,
      value: 42,
    });
  });

  it('lets a stopped plugin report and wind down within the grace period', async () => {
    const cooperative = await loadPlugin(fixture('cooperative'));
    const events: string[] = [];
    const controller = new AbortController();
    // The production grace: the plugin's worker thread may still be starting when the abort comes.
    const running = backup(
      cooperative,
      controller.signal,
      30_000,
      { hold: true },
      (signal) => ({ ...ctxFor(signal), event: (e) => events.push(e.message) }),
      5_000,
    );
    controller.abort();
    expect(await running).toMatchObject({ ok: false, failure: { code: 'CANCELLED' } });
    expect(events).toContain('cooperative backup aborted, cleaned up');
  });

  it("keeps the agent's decision when the plugin finishes successfully during the grace period", async () => {
    const controller = new AbortController();
    const running = guard(
      (signal) =>
        new Promise<string>((resolve) => signal.addEventListener('abort', () => setTimeout(() => resolve('done'), 10))),
      { signal: controller.signal, timeoutMs: 10_000, abortGraceMs: 5_000 },
    );
    controller.abort();
    expect(await running).toMatchObject({ ok: false, failure: { code: 'CANCELLED' } });
  });

  it('does not call the plugin for a task aborted before it started', async () => {
    const controller = new AbortController();
    controller.abort();
    let called = false;
    const out = await guard(
      () => {
        called = true;
        return 1;
      },
      { signal: controller.signal, timeoutMs: 1_000 },
    );
    expect(out).toMatchObject({ ok: false, failure: { code: 'CANCELLED' } });
    expect(called).toBe(false);
  });

  it('fails the task, not the agent, when a plugin calls process.exit()', async () => {
    const exits = await loadPlugin(fixture('exits'));
    const progress: number[] = [];
    const out = await backup(exits, new AbortController().signal, 30_000, {}, (signal) => ({
      ...ctxFor(signal),
      progress: (p) => progress.push(p.percent),
    }));
    expect(out).toMatchObject({ ok: false, failure: { code: 'PLUGIN_CRASHED' } });
    expect(out.ok ? '' : out.failure.message).toMatch(/exit code 3/);
    expect(progress).toEqual([10]);
  });

  it("logs a bounded part of a plugin's output and says what was dropped, even when the plugin returns at once", async () => {
    const misbehaves = await loadPlugin(fixture('misbehaves'));
    const lines: { stream?: string; droppedBytes?: number; msg: string }[] = [];
    const warn = (obj: object | string, msg?: string) =>
      lines.push({ ...(typeof obj === 'string' ? {} : obj), msg: msg ?? String(obj) });
    const out = await runOperation({
      plugin: misbehaves,
      operation: 'backup',
      connection: { endpoint: null, config: {}, credentials: {} },
      params: { instanceId: 'i', instanceName: 'vm', locator: { behaviour: 'stdout' }, mode: 'FULL' },
      host: NO_HOST,
      context: (signal) => ({ ...ctxFor(signal), logger: { ...ctxFor(signal).logger, warn } }),
      signal: new AbortController().signal,
      timeoutMs: 60_000,
    });
    expect(out).toMatchObject({ ok: true });
    // 4 MiB to each stream: 16 KiB of it logged line by line, the rest counted in one line per stream.
    const dropped = lines.filter((l) => l.droppedBytes !== undefined);
    expect(dropped.map((l) => [l.stream, l.droppedBytes])).toEqual([
      ['stdout', 4 * 1024 * 1024 - 16 * 1024],
      ['stderr', 4 * 1024 * 1024 - 16 * 1024],
    ]);
    const logged = lines.filter((l) => l.droppedBytes === undefined);
    expect(logged.filter((l) => l.stream === 'stdout')).toHaveLength(16);
    expect(logged.filter((l) => l.stream === 'stderr')).toHaveLength(16);
  });

  it('fails the task when a plugin throws from a stray timer, instead of leaving it hanging', async () => {
    const stray = await loadPlugin(fixture('stray-throw'));
    const out = await backup(stray, new AbortController().signal, 60_000);
    expect(out).toMatchObject({ ok: false, failure: { code: 'PLUGIN_CRASHED' } });
    expect(out.ok ? '' : out.failure.message).toMatch(/stray timer blew up/);
  });

  it('runs a plugin on the agent thread when isolation is inline', async () => {
    const cooperative = await loadPlugin(fixture('cooperative'));
    const out = await runOperation({
      plugin: cooperative,
      operation: 'backup',
      connection: { endpoint: null, config: {}, credentials: {} },
      params: { instanceId: 'i', instanceName: 'vm', locator: {}, mode: 'FULL' },
      host: NO_HOST,
      context: ctxFor,
      signal: new AbortController().signal,
      timeoutMs: 30_000,
      isolation: 'inline',
    });
    expect(out).toMatchObject({ ok: true, value: { mode: 'FULL' } });
  });

  it('keeps a worker warm after a clean job, and replaces one whose plugin died', async () => {
    const counter = await loadPlugin(fixture('counter'));
    const externalId = async (config: Record<string, unknown> = {}) => {
      const out = await backup(counter, new AbortController().signal, 30_000, config);
      return out.ok ? (out.value as { externalId: string }).externalId : out.failure.code;
    };
    expect(await externalId()).toBe('call-1');
    expect(await externalId()).toBe('call-2');
    expect(await externalId({ exit: true })).toBe('PLUGIN_CRASHED');
    expect(await externalId()).toBe('call-1');
  });
});

describe('host paths', () => {
  const read = (
    plugin: LoadedPlugin,
    file: string,
    roots: string[],
    denied: string[],
    isolation: 'worker' | 'inline',
  ) =>
    runOperation({
      plugin,
      operation: 'backup',
      connection: { endpoint: null, config: {}, credentials: {} },
      params: { instanceId: 'i', instanceName: 'vm', locator: { paths: [file] }, mode: 'FULL' },
      host: { roots, denied },
      context: (signal) => ({ ...ctxFor(signal), host: { roots, denied } }),
      signal: new AbortController().signal,
      timeoutMs: 30_000,
      isolation,
    });

  it.each(['worker', 'inline'] as const)(
    "refuses a path outside the agent's roots or inside its state before the plugin runs (%s)",
    async (isolation) => {
      const naive = await loadPlugin(fixture('naive-paths'));
      const dir = await mkdtemp(path.join(os.tmpdir(), 'host-roots-'));
      try {
        const root = path.join(dir, 'tenant');
        const state = path.join(root, 'state');
        await mkdir(state, { recursive: true });
        await writeFile(path.join(root, 'data.txt'), 'tenant data');
        await writeFile(path.join(state, 'credential.json'), '{"secret":"x"}');
        await writeFile(path.join(dir, 'shadow'), 'host secret');

        const ok = await read(naive, path.join(root, 'data.txt'), [root], [state], isolation);
        expect(ok).toMatchObject({ ok: true, value: { externalId: 'read-11-roots-1' } });
        for (const file of [
          path.join(dir, 'shadow'),
          path.join(root, '..', 'shadow'),
          path.join(state, 'credential.json'),
        ]) {
          const out = await read(naive, file, [root], [state], isolation);
          expect(out).toMatchObject({ ok: false, failure: { code: 'PATH_NOT_ALLOWED', retryable: false } });
        }
        const none = await read(naive, path.join(root, 'data.txt'), [], [state], isolation);
        expect(none.ok ? '' : none.failure.message).toMatch(/allows no host paths/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

describe("the agent's rule for repositories on its host", () => {
  // A repository is an SP's choice and lives outside the roots; it must never be, hold or lie in
  // the agent's state. The connection's own (for a host-paths plugin) and its export target's
  // (whatever the plugin) are judged alike, whatever the control plane sent.
  it('refuses an endpoint or export target at, in, above or linked to the state, before any plugin code; allows the rest alike', async () => {
    const dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'cairn-repo-rule-')));
    try {
      const root = path.join(dir, 'tenants', 'a');
      const state = path.join(dir, 'agent-state');
      await mkdir(root, { recursive: true });
      await mkdir(state);
      await writeFile(path.join(root, 'f'), 'x');
      await symlink(state, path.join(dir, 'innocent'));
      const host = { roots: [root], denied: [state] };
      const naive = await loadPlugin(fixture('naive-paths'));
      const cooperative = await loadPlugin(fixture('cooperative'));
      const run = async (plugin: LoadedPlugin, connection: ProviderConnection) => {
        const out = await runOperation({
          plugin,
          operation: 'backup',
          connection,
          params: { instanceId: 'i', instanceName: 'vm', locator: { paths: [path.join(root, 'f')] }, mode: 'FULL' },
          host,
          context: (signal) => ({ ...ctxFor(signal), host }),
          signal: new AbortController().signal,
          timeoutMs: 30_000,
          isolation: 'inline',
        });
        return out.ok ? 'ran' : `${out.failure.code}: ${out.failure.message}`;
      };
      const own = (endpoint: string) => run(naive, { endpoint, config: {}, credentials: {} });
      const target = (plugin: LoadedPlugin, endpoint: string) =>
        run(plugin, {
          endpoint: null,
          config: {},
          credentials: {},
          exportTo: { plugin: '@cairn/plugin-restic', endpoint, config: {}, credentials: { password: 'p' } },
        });
      const refused = [
        state,
        path.join(state, 'repo'),
        dir,
        path.join(dir, 'innocent', 'repo'),
        path.join(root, '..', '..', 'agent-state', 'x'),
      ];
      for (const endpoint of refused) {
        expect(await own(endpoint)).toMatch(/^PATH_NOT_ALLOWED: endpoint .* is or holds the agent's own state/);
        for (const plugin of [naive, cooperative])
          expect(await target(plugin, endpoint)).toMatch(
            /^PATH_NOT_ALLOWED: exportTo\.endpoint .* is or holds the agent's own state/,
          );
      }
      // Outside the roots, or a URL: a repository there is allowed, for the one as for the other.
      for (const endpoint of [path.join(dir, 'repos', 'r'), 'rest:https://backup.example/r', 's3:bucket/x']) {
        expect(await own(endpoint)).toBe('ran');
        expect(await target(naive, endpoint)).toBe('ran');
      }
      // A plugin without host paths: its own endpoint is not a host path, its export target's is.
      expect(await run(cooperative, { endpoint: state, config: {}, credentials: {} })).toBe('ran');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
