// Written as a third-party plugin's tests would be: the plugin from its source, the kit from the SDK package.
import { MockTaskEnvironment, PluginRefusedError } from '@cairn/plugin-sdk/testing';
import { describe, expect, it } from 'vitest';
import plugin from './index.js';

const instance = { instanceId: 'i-1', instanceName: 'web', locator: {} };
const fast = { durationMs: 0, steps: 4, sizeBytes: 4000 };

describe('dummy plugin', () => {
  it('loads as the agent would load it', () => {
    const env = new MockTaskEnvironment(plugin);
    expect(env.manifest.capabilities).toContain('backup');
    expect(env.apiVersion).toBe(1);
  });

  it('backs up with a progress report per step and the record the agent requires', async () => {
    const run = await new MockTaskEnvironment(plugin, { config: fast }).run('backup', { ...instance, mode: 'FULL' });
    if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
    expect(run.backup).toEqual({
      externalId: expect.stringMatching(/^dummy-/) as string,
      sizeBytes: 4000,
      addedBytes: 4000,
      mode: 'FULL',
      parentExternalId: '',
      extraJson: '',
    });
    expect(run.progress.map((p) => [p.percent, p.bytesDone, p.bytesTotal])).toEqual([
      [25, 1000, 4000],
      [50, 2000, 4000],
      [75, 3000, 4000],
      [100, 4000, 4000],
    ]);
    expect(run.events.map((e) => e.message)).toEqual(['dummy backup started']);
    expect(run.notes).toEqual([]);
  });

  it('chains an increment to its parent and counts a tenth of the size as added', async () => {
    const run = await new MockTaskEnvironment(plugin, { config: fast }).run('backup', {
      ...instance,
      mode: 'INCREMENT',
      parentExternalId: 'dummy-parent',
    });
    expect(run).toMatchObject({
      ok: true,
      backup: { mode: 'INCREMENT', parentExternalId: 'dummy-parent', sizeBytes: 4000, addedBytes: 400 },
    });
  });

  it('fails with the configured code after its steps, or before any with failAt=start', async () => {
    const atEnd = await new MockTaskEnvironment(plugin, {
      config: { ...fast, failCode: 'REPO_LOCKED', failMessage: 'locked' },
    }).run('backup', { ...instance, mode: 'FULL' });
    expect(atEnd).toMatchObject({ ok: false, failure: { code: 'REPO_LOCKED', message: 'locked', retryable: false } });
    expect(atEnd.progress).toHaveLength(4);

    const atStart = await new MockTaskEnvironment(plugin, {
      config: { ...fast, failCode: 'NO_SPACE', failAt: 'start' },
    }).run('backup', { ...instance, mode: 'FULL' });
    expect(atStart).toMatchObject({
      ok: false,
      failure: { code: 'NO_SPACE', message: 'dummy backup failed as configured' },
    });
    expect(atStart.progress).toEqual([]);
  });

  it("lets an instance's locator override the connection config", async () => {
    const run = await new MockTaskEnvironment(plugin, { config: { ...fast, failCode: 'X' } }).run('backup', {
      ...instance,
      locator: { dummy: { failCode: 'FROM_LOCATOR', steps: 1 } },
      mode: 'FULL',
    });
    expect(run).toMatchObject({ ok: false, failure: { code: 'FROM_LOCATOR' } });
    expect(run.progress).toHaveLength(1);
  });

  it('refuses a bad config with BAD_CONFIG', async () => {
    const run = await new MockTaskEnvironment(plugin, { config: { steps: 0 } }).run('backup', {
      ...instance,
      mode: 'FULL',
    });
    expect(run).toMatchObject({ ok: false, failure: { code: 'BAD_CONFIG', message: /steps must be an integer >= 1/ } });
  });

  it('stops at once when cancelled, with the cancel error, and says where it stopped', async () => {
    // Ten minutes of simulated work: only honouring the signal ends this test in time.
    const env: MockTaskEnvironment = new MockTaskEnvironment(plugin, {
      config: { durationMs: 600_000, steps: 3 },
      onEvent: (e) => e.message.endsWith('started') && env.cancel('cancelled through the API'),
    });
    const run = await env.run('backup', { ...instance, mode: 'FULL' });
    expect(run).toMatchObject({
      ok: false,
      failure: { code: 'CANCELLED', message: 'cancelled through the API', retryable: false },
      abandoned: false,
    });
    expect(run.progress).toEqual([]);
    expect(run.events.map((e) => e.message)).toEqual(['dummy backup started', 'dummy backup aborted at step 1/3']);
  });

  it('restores, in place and one volume elsewhere', async () => {
    const env = new MockTaskEnvironment(plugin, { config: fast });
    const restore = await env.run('restore', { ...instance, backupExternalId: 'dummy-b1' });
    expect(restore).toMatchObject({
      ok: true,
      value: { bytesRestored: 4000, extra: { backupExternalId: 'dummy-b1' } },
    });
    expect(restore.progress).toHaveLength(4);
    const volume = await env.run('restore-volume', {
      ...instance,
      backupExternalId: 'dummy-b1',
      volume: 'disk0',
      targetInstanceId: 'i-2',
      targetLocator: {},
    });
    expect(volume).toMatchObject({ ok: true, value: { extra: { volume: 'disk0', targetInstanceId: 'i-2' } } });
  });

  it('deletes a backup in one step', async () => {
    const run = await new MockTaskEnvironment(plugin, { config: fast }).run('delete-backup', {
      backupExternalId: 'dummy-b1',
      locator: {},
    });
    expect(run).toMatchObject({ ok: true, value: null });
    expect(run.progress).toHaveLength(1);
  });

  it('lists its offerings, or fails them as configured', async () => {
    const run = await new MockTaskEnvironment(plugin).run('list-offerings');
    expect(run).toMatchObject({ ok: true });
    if (run.ok) expect(run.value.map((o) => o.externalId)).toEqual(['dummy-gold', 'dummy-silver']);
    const failing = await new MockTaskEnvironment(plugin, { config: { failCode: 'DOWN' } }).run('list-offerings');
    expect(failing).toMatchObject({ ok: false, failure: { code: 'DOWN' } });
  });

  it('passes preflight, and lists no sync', async () => {
    const env = new MockTaskEnvironment(plugin);
    expect(await env.run('preflight', {})).toMatchObject({ ok: true, value: { ok: true } });
    await expect(env.run('sync', {})).rejects.toThrow(PluginRefusedError);
  });
});
