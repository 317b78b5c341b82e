// Written as a third-party plugin's tests would be: the plugin from its source, the kit from the SDK package.
import { MockTaskEnvironment, PluginRefusedError } from '@cairn/plugin-sdk/testing';
import { mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import plugin from './index.js';

const instance = { instanceId: 'i-1', instanceName: 'web', locator: {} };
const fast = { durationMs: 0, steps: 4, sizeBytes: 4000 };

describe('dummy plugin', () => {
  it('loads as the agent would load it', () => {
    const env = new MockTaskEnvironment(plugin);
    expect(env.manifest.capabilities).toContain('backup');
    expect(env.apiVersion).toBe(1);
  });

  it('lists the same capabilities in package.json ("cairn".capabilities) as in its manifest', async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
      cairn: { capabilities: string[] };
    };
    expect(pkg.cairn.capabilities).toEqual(plugin.manifest.capabilities);
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

  it('refuses a syncHoldMs that is not a whole number of milliseconds with BAD_CONFIG', async () => {
    const run = await new MockTaskEnvironment(plugin, { config: { syncHoldMs: -1 } }).run('backup', {
      ...instance,
      mode: 'FULL',
    });
    expect(run).toMatchObject({
      ok: false,
      failure: { code: 'BAD_CONFIG', message: /syncHoldMs must be an integer >= 0/ },
    });
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

  it('passes preflight, and lists nothing without a store', async () => {
    const env = new MockTaskEnvironment(plugin, { config: { durationMs: 0 } });
    expect(await env.run('preflight', {})).toMatchObject({
      ok: true,
      value: {
        ok: true,
        checks: [
          { name: 'config-valid', ok: true, message: 'the config is valid' },
          { name: 'store-writable', ok: true, message: 'no storeDir is set: restore points are not kept' },
        ],
      },
    });
    expect(await env.run('sync', {})).toMatchObject({ ok: false, failure: { code: 'NO_STORE' } });
    await expect(env.run('teleport' as 'sync', {})).rejects.toThrow(PluginRefusedError);
  });
});

describe('dummy preflight', () => {
  const run = (config: Record<string, unknown>, locator?: unknown, credentials?: Record<string, unknown>) =>
    new MockTaskEnvironment(plugin, {
      config: { durationMs: 0, ...config },
      ...(credentials ? { credentials } : {}),
    }).run('preflight', locator === undefined ? {} : { locator });

  it('fails the check failPreflight names, with advice, from the config or the locator', async () => {
    const failed = {
      name: 'store-writable',
      ok: false,
      message: 'dummy: store-writable fails as configured (failPreflight)',
      advice: 'remove failPreflight from the provider connection config or the locator',
    };
    const fromConfig = await run({ failPreflight: 'store-writable' });
    expect(fromConfig).toMatchObject({
      ok: true,
      value: { ok: false, checks: [{ name: 'config-valid', ok: true }, failed] },
    });
    const fromLocator = await run({}, { dummy: { failPreflight: 'store-writable' } });
    expect(fromLocator).toMatchObject({ ok: true, value: { ok: false, checks: [{ ok: true }, failed] } });
  });

  it('answers a config it cannot take as a failed config-valid check', async () => {
    const out = await run({ steps: 0 });
    expect(out).toMatchObject({
      ok: true,
      value: {
        ok: false,
        checks: [{ name: 'config-valid', ok: false, message: 'dummy: steps must be an integer >= 1, got 0' }],
      },
    });
    expect(await run({ failPreflight: 'moon-phase' })).toMatchObject({
      value: {
        ok: false,
        checks: [{ name: 'config-valid', message: expect.stringMatching(/failPreflight must be one of/) as string }],
      },
    });
  });

  it('finds a store it cannot write to, and leaves a writable one as it was', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dummy-preflight-'));
    try {
      const good = await run({ storeDir: dir });
      expect(good).toMatchObject({
        value: { ok: true, checks: [{}, { name: 'store-writable', message: `${dir} is writable` }] },
      });
      expect(await readdir(dir)).toEqual([]);
      // A file where the store directory should be.
      await writeFile(join(dir, 'file'), 'x');
      const bad = await run({ storeDir: join(dir, 'file', 'store') });
      expect(bad).toMatchObject({
        value: {
          ok: false,
          checks: [
            { ok: true },
            { name: 'store-writable', ok: false, advice: expect.stringMatching(/^create /) as string },
          ],
        },
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails as configured, and its leaked credentials arrive blanked', async () => {
    expect(await run({ failCode: 'DOWN' })).toMatchObject({ ok: false, failure: { code: 'DOWN' } });
    const leak = await run({ preflightLeak: true }, undefined, { password: 'hunter2-secret' });
    expect(leak).toMatchObject({ ok: true, value: { ok: true } });
    expect(JSON.stringify(leak.ok && leak.value)).not.toContain('hunter2-secret');
    expect(JSON.stringify(leak.ok && leak.value)).toContain('[redacted]');
  });
});

describe('dummy plugin with a store directory', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dummy-store-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));
  const files = async () => (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  const env = (extra: Record<string, unknown> = {}) =>
    new MockTaskEnvironment(plugin, { config: { ...fast, storeDir: dir, ...extra } });
  const backup = async (e: MockTaskEnvironment, mode: 'FULL' | 'INCREMENT', parentExternalId?: string) => {
    const run = await e.run('backup', { ...instance, mode, ...(parentExternalId ? { parentExternalId } : {}) });
    if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
    return run.backup;
  };

  it('keeps one JSON file per restore point, increments chained to their parent', async () => {
    const e = env();
    const full = await backup(e, 'FULL');
    const inc = await backup(e, 'INCREMENT', full.externalId);
    expect(inc).toMatchObject({ mode: 'INCREMENT', parentExternalId: full.externalId, addedBytes: 400 });
    expect(await files()).toEqual([`${full.externalId}.json`, `${inc.externalId}.json`].sort());
    const point = JSON.parse(await readFile(join(dir, `${inc.externalId}.json`), 'utf8')) as unknown;
    expect(point).toEqual({
      id: inc.externalId,
      instance: 'i-1',
      mode: 'INCREMENT',
      parent: full.externalId,
      size: 4000,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as string,
    });
  });

  it('takes a full backup when the base of an increment was deleted behind its back', async () => {
    const e = env();
    const full = await backup(e, 'FULL');
    await unlink(join(dir, `${full.externalId}.json`));
    const next = await backup(e, 'INCREMENT', full.externalId);
    expect(next).toMatchObject({ mode: 'FULL', parentExternalId: '' });
  });

  it('lists what is in the directory, including a point added behind its back', async () => {
    const e = env();
    const full = await backup(e, 'FULL');
    const foreign = {
      id: 'dummy-foreign',
      instance: 'i-9',
      mode: 'FULL',
      parent: null,
      size: 7,
      createdAt: '2030-01-01T00:00:00.000Z',
    };
    await writeFile(join(dir, 'dummy-foreign.json'), JSON.stringify(foreign));
    const run = await e.run('sync', {});
    if (!run.ok) throw new Error(run.failure.message);
    expect(run.value).toEqual([
      expect.objectContaining({
        externalId: full.externalId,
        locator: { instanceId: 'i-1' },
        mode: 'FULL',
        sizeBytes: 4000,
      }),
      {
        externalId: 'dummy-foreign',
        createdAt: foreign.createdAt,
        sizeBytes: 7,
        locator: { instanceId: 'i-9' },
        mode: 'FULL',
        parentExternalId: null,
      },
    ]);
  });

  it('lists, finds and deletes the points of its catalogue file (many to a file) with the others', async () => {
    const e = env();
    const full = await backup(e, 'FULL');
    const seeded = ['c-1', 'c-2', 'c-3'].map((id, i) => ({
      id,
      instance: 'i-1',
      mode: 'FULL',
      parent: null,
      size: 7,
      createdAt: `2020-01-0${i + 1}T00:00:00.000Z`,
    }));
    await writeFile(join(dir, 'catalogue.jsonl'), seeded.map((p) => `${JSON.stringify(p)}\n`).join(''));
    const listed = async () => {
      const run = await e.run('sync', {});
      if (!run.ok) throw new Error(run.failure.message);
      return (run.value as { externalId: string }[]).map((p) => p.externalId);
    };
    expect(await listed()).toEqual(['c-1', 'c-2', 'c-3', full.externalId]);
    expect(await e.run('delete-backup', { ...instance, backupExternalId: 'c-2' })).toMatchObject({ ok: true });
    expect(await listed()).toEqual(['c-1', 'c-3', full.externalId]);
    expect(await e.run('delete-backup', { ...instance, backupExternalId: 'c-2' })).toMatchObject({
      ok: false,
      failure: { code: 'BACKUP_NOT_FOUND' },
    });
  });

  it('deletes a point, refuses a missing one, a parent still needed, and every delete with failDeletes', async () => {
    const e = env();
    const full = await backup(e, 'FULL');
    const inc = await backup(e, 'INCREMENT', full.externalId);
    const del = (id: string, x = e) => x.run('delete-backup', { backupExternalId: id, locator: {} });
    expect(await del(full.externalId)).toMatchObject({ ok: false, failure: { code: 'BACKUP_HAS_DEPENDENTS' } });
    expect(
      await env({ failDeletes: true }).run('delete-backup', { backupExternalId: inc.externalId, locator: {} }),
    ).toMatchObject({
      ok: false,
      failure: { code: 'DELETE_REFUSED' },
    });
    expect(await files()).toHaveLength(2);
    expect(await del(inc.externalId)).toMatchObject({ ok: true });
    expect(await del(full.externalId)).toMatchObject({ ok: true });
    expect(await files()).toEqual([]);
    expect(await del(full.externalId)).toMatchObject({ ok: false, failure: { code: 'BACKUP_NOT_FOUND' } });
    // An id is a name inside the store, never a path out of it.
    expect(await del('../etc/passwd')).toMatchObject({ ok: false, failure: { code: 'BACKUP_NOT_FOUND' } });
  });

  it('passes an expiry written behind its back on, and answers garbage with syncGarbage (test only)', async () => {
    const point = {
      id: 'dummy-x',
      instance: 'i-1',
      mode: 'FULL',
      parent: null,
      size: 1,
      createdAt: '2030-01-01T00:00:00.000Z',
    };
    await writeFile(join(dir, 'dummy-x.json'), JSON.stringify({ ...point, expiresAt: '2030-02-01T00:00:00.000Z' }));
    const run = await env().run('sync', {});
    expect(run).toMatchObject({ ok: true, value: [{ externalId: 'dummy-x', expiresAt: '2030-02-01T00:00:00.000Z' }] });
    const garbage = await env({ syncGarbage: true }).run('sync', {});
    expect(garbage).toMatchObject({ ok: true });
    if (garbage.ok) expect(garbage.value).toContain('not a point');
  });

  describe('schedules', () => {
    const sla = { cron: '0 3 * * *', timezone: 'Europe/Berlin', keepLast: 3 };
    const configure = (x: MockTaskEnvironment, cron = sla.cron) =>
      x.run('configure-schedule', { ...instance, offeringExternalId: 'gold', sla: { ...sla, cron } });
    const scheduleFile = async (id = instance.instanceId) => {
      try {
        return JSON.parse(await readFile(join(dir, 'schedules', `${id}.json`), 'utf8')) as Record<string, unknown>;
      } catch {
        return undefined;
      }
    };

    it('with providerSchedules keeps the SLA in the store and takes the clock over; deconfigure removes it', async () => {
      const e = env({ providerSchedules: true });
      expect(await configure(e)).toMatchObject({ ok: true, value: { managed: true } });
      expect(await scheduleFile()).toMatchObject({ instanceId: 'i-1', offeringExternalId: 'gold', sla });
      // Configuring again is how an SLA change reaches the backup system.
      expect(await configure(e, '0 4 * * *')).toMatchObject({ ok: true, value: { managed: true } });
      expect(await scheduleFile()).toMatchObject({ sla: { ...sla, cron: '0 4 * * *' } });
      // A schedule is not a restore point: sync does not list it.
      expect(await e.run('sync', {})).toMatchObject({ ok: true, value: [] });
      expect(await e.run('deconfigure-schedule', { instanceId: 'i-1', locator: {} })).toMatchObject({ ok: true });
      expect(await scheduleFile()).toBeUndefined();
      // Already gone is fine.
      expect(await e.run('deconfigure-schedule', { instanceId: 'i-1', locator: {} })).toMatchObject({ ok: true });
    });

    it('without providerSchedules leaves the clock to Cairn and writes nothing', async () => {
      expect(await configure(env())).toMatchObject({ ok: true, value: { managed: false } });
      expect(await scheduleFile()).toBeUndefined();
    });

    it('with failSchedules refuses both, with SCHEDULE_REFUSED and a message naming the instance', async () => {
      const e = env({ providerSchedules: true, failSchedules: true });
      expect(await configure(e)).toMatchObject({
        ok: false,
        failure: {
          code: 'SCHEDULE_REFUSED',
          message: 'dummy: the backup system refuses to configure the schedule of i-1 (failSchedules is set)',
        },
      });
      expect(await e.run('deconfigure-schedule', { instanceId: 'i-1', locator: {} })).toMatchObject({
        ok: false,
        failure: { code: 'SCHEDULE_REFUSED' },
      });
      expect(await scheduleFile()).toBeUndefined();
    });

    it('refuses an instance id that would name a path outside the store', async () => {
      const run = await env({ providerSchedules: true }).run('configure-schedule', {
        ...instance,
        instanceId: '../x',
        sla,
      });
      expect(run).toMatchObject({ ok: false, failure: { code: 'BAD_INSTANCE' } });
    });
  });

  it('refuses a storeDir that is not a path', async () => {
    expect(await env({ storeDir: 3 }).run('backup', { ...instance, mode: 'FULL' })).toMatchObject({
      ok: false,
      failure: { code: 'BAD_CONFIG', message: /storeDir/ },
    });
  });

  it('tells the power state from <storeDir>/power/<instanceId>, else from config (default stopped)', async () => {
    const ask = async (e: MockTaskEnvironment, instanceId = 'i-1') => {
      const run = await e.run('power-state', { instanceId, locator: {} });
      if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
      return run.value.state;
    };
    expect(await ask(env())).toBe('stopped');
    expect(await ask(env({ powerState: 'running' }))).toBe('running');
    await mkdir(join(dir, 'power'));
    await writeFile(join(dir, 'power', 'i-1'), 'running\n');
    expect(await ask(env())).toBe('running');
    expect(await ask(env(), 'i-2')).toBe('stopped');
    await writeFile(join(dir, 'power', 'i-1'), 'stopped');
    expect(await ask(env({ powerState: 'running' }))).toBe('stopped');
    // An instance id never names a path outside the store: the default answers.
    expect(await ask(env({ powerState: 'running' }), '../i-1')).toBe('running');
  });

  it('refuses an in-place restore that requires a stopped instance while it runs', async () => {
    const restore = (e: MockTaskEnvironment, requireStopped?: boolean) =>
      e.run('restore', { ...instance, backupExternalId: 'dummy-b1', ...(requireStopped ? { requireStopped } : {}) });
    await mkdir(join(dir, 'power'));
    await writeFile(join(dir, 'power', 'i-1'), 'running');
    const refused = await restore(env(), true);
    expect(refused).toMatchObject({ ok: false, failure: { code: 'INSTANCE_RUNNING', message: /i-1 is running/ } });
    // Refused before any work: no progress was reported.
    expect(refused.progress).toEqual([]);
    // Without the flag the dummy restores whatever the power state.
    expect(await restore(env())).toMatchObject({ ok: true });
    await writeFile(join(dir, 'power', 'i-1'), 'stopped');
    expect(await restore(env(), true)).toMatchObject({ ok: true });
  });
});
