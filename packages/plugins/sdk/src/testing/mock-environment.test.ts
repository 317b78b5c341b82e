import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { PluginError } from '../errors.js';
import type { Operation } from '../manifest.js';
import { definePlugin, type Provider, type ProviderConnection } from '../provider.js';
import { SDK_API_VERSION } from '../version.js';
import { MockTaskEnvironment, PluginRefusedError } from './index.js';

const req = { instanceId: 'i-1', instanceName: 'web', locator: { path: '/srv' }, mode: 'FULL' as const };

function pluginOf(provider: (connection: ProviderConnection) => Provider, capabilities: Operation[] = ['backup']) {
  return definePlugin({
    manifest: { name: 'cairn-plugin-t', version: '1.0.0', apiVersion: SDK_API_VERSION, capabilities, configSchema: {} },
    createProvider: provider,
  });
}

/** A backup that reports three steps, waiting on its signal between them. */
const stepping = pluginOf(() => ({
  async backup(r, ctx) {
    ctx.event({ type: 'provider.message', message: 'started', data: { instance: r.instanceId } });
    for (let i = 1; i <= 3; i++) {
      await sleep(5, undefined, { signal: ctx.signal });
      ctx.progress({ percent: i * 33, bytesDone: i, bytesTotal: 3, message: `step ${i}` });
    }
    ctx.logger.info({ steps: 3 }, 'done');
    return { externalId: `snap-${r.instanceId}`, sizeBytes: 3, mode: r.mode };
  },
}));

describe('MockTaskEnvironment', () => {
  it("blanks the export target's secrets from a preflight's report, as the connection's own", async () => {
    const leaky = pluginOf(
      (c) => ({
        preflight: () =>
          Promise.resolve({
            ok: false,
            checks: [
              {
                name: 'leak',
                ok: false,
                message: `own ${String(c.credentials['password'])} target ${String(c.exportTo?.credentials['password'])}`,
              },
            ],
          }),
      }),
      ['preflight'],
    );
    const run = await new MockTaskEnvironment(leaky, {
      credentials: { password: 'own-secret-1' },
      exportTo: { plugin: 'p', endpoint: 'rest:https://r', config: {}, credentials: { password: 'target-secret-2' } },
    }).run('preflight', {});
    if (!run.ok) throw new Error(run.failure.message);
    const message = JSON.stringify(run.value);
    expect(message).not.toContain('own-secret-1');
    expect(message).not.toContain('target-secret-2');
    expect(message).toContain('own ');
  });

  it('records progress, events and logs in order, and gives the backup record the agent reports', async () => {
    const run = await new MockTaskEnvironment(stepping).run('backup', req);
    expect(run).toMatchObject({
      ok: true,
      value: { externalId: 'snap-i-1', sizeBytes: 3, mode: 'FULL' },
      backup: { externalId: 'snap-i-1', sizeBytes: 3, addedBytes: 3, mode: 'FULL', parentExternalId: '' },
      notes: [],
      abandoned: false,
    });
    expect(run.progress.map((p) => [p.percent, p.message])).toEqual([
      [33, 'step 1'],
      [66, 'step 2'],
      [99, 'step 3'],
    ]);
    expect(run.events).toMatchObject([{ type: 'provider.message', message: 'started', data: { instance: 'i-1' } }]);
    expect(run.logs).toMatchObject([{ level: 'info', message: 'done', fields: { steps: 3 } }]);
  });

  it('hands the plugin the connection and request as plain copies', async () => {
    let seen: unknown;
    const plugin = pluginOf((connection) => ({
      backup(r) {
        seen = structuredClone({ connection, r });
        (r.locator as Record<string, unknown>)['path'] = 'changed';
        return Promise.resolve({ externalId: 'b', sizeBytes: 0, mode: 'FULL' });
      },
    }));
    const env = new MockTaskEnvironment(plugin, { config: { repo: 'r' }, credentials: { key: 'k' }, endpoint: 'e' });
    await env.run('backup', req);
    expect(seen).toEqual({ connection: { endpoint: 'e', config: { repo: 'r' }, credentials: { key: 'k' } }, r: req });
    expect(req.locator.path).toBe('/srv');
  });

  it('fails a result the agent would refuse, saying why', async () => {
    const plugin = pluginOf(() => ({ backup: () => Promise.resolve({ sizeBytes: 1 } as never) }));
    const run = await new MockTaskEnvironment(plugin).run('backup', req);
    expect(run).toMatchObject({
      ok: false,
      failure: {
        code: 'PLUGIN_CRASHED',
        message: 'the plugin returned an invalid result: the backup has no externalId',
      },
    });
  });

  it('keeps a PluginError code and retryable flag; anything else thrown is PLUGIN_CRASHED', async () => {
    const typed = pluginOf(() => ({
      backup: () => Promise.reject(new PluginError('REPO_LOCKED', 'locked', { retryable: true })),
    }));
    expect(await new MockTaskEnvironment(typed).run('backup', req)).toMatchObject({
      ok: false,
      failure: { code: 'REPO_LOCKED', message: 'locked', retryable: true },
    });
    const sloppy = pluginOf(() => ({
      backup() {
        throw new TypeError('x is undefined');
      },
    }));
    expect(await new MockTaskEnvironment(sloppy).run('backup', req)).toMatchObject({
      ok: false,
      failure: { code: 'PLUGIN_CRASHED', message: 'x is undefined', retryable: false },
    });
  });

  it('cancels mid-operation: the plugin sees an AbortError with the reason, the run fails CANCELLED', async () => {
    let reason: unknown;
    const plugin = pluginOf(() => ({
      async backup(_r, ctx) {
        ctx.progress({ percent: 10 });
        try {
          await sleep(60_000, undefined, { signal: ctx.signal });
        } catch (err) {
          reason = ctx.signal.reason;
          throw err;
        }
        return { externalId: 'never', sizeBytes: 0, mode: 'FULL' };
      },
    }));
    const env: MockTaskEnvironment = new MockTaskEnvironment(plugin, { onProgress: () => env.cancel('user asked') });
    const run = await env.run('backup', req);
    expect(run).toMatchObject({
      ok: false,
      failure: { code: 'CANCELLED', message: 'user asked', retryable: false },
      abandoned: false,
    });
    expect(reason).toMatchObject({ name: 'AbortError', message: 'user asked' });
    expect(env.running).toBe(0);
    expect(env.cancel()).toBe(false);
  });

  it('abandons a plugin that ignores its signal after the abort grace, and drops its late reports', async () => {
    let finish: () => void = () => {};
    const plugin = pluginOf(() => ({
      async backup(_r, ctx) {
        await new Promise<void>((resolve) => (finish = resolve));
        ctx.progress({ percent: 100 });
        return { externalId: 'late', sizeBytes: 0, mode: 'FULL' };
      },
    }));
    const env = new MockTaskEnvironment(plugin, { abortGraceMs: 20 });
    const pending = env.run('backup', req);
    env.cancel();
    const run = await pending;
    expect(run).toMatchObject({ ok: false, failure: { code: 'CANCELLED' }, abandoned: true });
    finish();
    await sleep(5);
    expect(run.progress).toEqual([]);
    expect(run.notes).toEqual(['a progress report after the task ended was dropped']);
  });

  it('times out with PLUGIN_TIMEOUT, retryable', async () => {
    const plugin = pluginOf(() => ({ backup: (_r, ctx) => sleep(60_000, undefined, { signal: ctx.signal }) as never }));
    const run = await new MockTaskEnvironment(plugin, { timeoutMs: 10 }).run('backup', req);
    expect(run).toMatchObject({ ok: false, failure: { code: 'PLUGIN_TIMEOUT', retryable: true } });
  });

  it('notes the reports the agent would adjust or drop', async () => {
    const plugin = pluginOf(() => ({
      backup(_r, ctx) {
        ctx.progress({ percent: 140 });
        ctx.event({ type: 'warning', message: 'big', data: { blob: 'x'.repeat(70_000) } });
        return Promise.resolve({ externalId: 'b', sizeBytes: 0, mode: 'FULL' });
      },
    }));
    const run = await new MockTaskEnvironment(plugin).run('backup', req);
    expect(run.progress).toMatchObject([{ percent: 100 }]);
    expect(run.events).toEqual([{ type: 'warning', message: 'big', atMs: expect.any(Number) as number }]);
    expect(run.notes).toHaveLength(2);
  });

  it('fails output that cannot cross the worker boundary', async () => {
    const plugin = pluginOf(() => ({ sync: () => Promise.resolve([{ size: 1n }] as never) }), ['sync']);
    expect(await new MockTaskEnvironment(plugin).run('sync', {})).toMatchObject({
      ok: false,
      failure: { code: 'PLUGIN_CRASHED' },
    });
  });

  it('refuses a plugin the agent would refuse to load', () => {
    const bad = definePlugin({ ...stepping, manifest: { ...stepping.manifest, capabilities: [] } });
    expect(() => new MockTaskEnvironment(bad)).toThrow(
      new PluginRefusedError(
        'the agent would refuse this plugin: invalid manifest: capabilities: must list at least one operation',
      ),
    );
    expect(() => new MockTaskEnvironment(stepping, { hostApiVersions: [SDK_API_VERSION + 1] })).toThrow(
      /not supported by this agent/,
    );
  });

  it('rejects a task the agent would not run', async () => {
    const env = new MockTaskEnvironment(stepping);
    await expect(env.run('restore', { instanceId: 'i', locator: {}, backupExternalId: 'b' })).rejects.toThrow(
      /UNSUPPORTED_OPERATION.*restore/,
    );
    await expect(env.run('backup', [] as never)).rejects.toThrow(/BAD_PARAMS/);
  });
});
