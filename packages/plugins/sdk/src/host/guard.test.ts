import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PluginError } from '../errors.js';
import type { TaskContext } from '../provider.js';
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
