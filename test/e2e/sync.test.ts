import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { tickedAt } from '@cairn/test-harness/clock';
import { backends } from '@cairn/test-harness/databases';
import { tempDir } from '@cairn/test-harness/processes';
import { dummyPoints, ENDED, protectInstance, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

// An SLA that fires only on 1 January at 02:00 UTC (a schedule must fire once a year): its keep-last
// applies, its fires never come.
const NEVER_DURING_A_TEST = '0 2 1 1 *';
const fast = { durationMs: 50, steps: 1, sizeBytes: 1000 };

interface BackupBody {
  id: string;
  externalId: string;
  taskId: string | null;
  createdAt: string;
  sizeBytes: number;
  mode: string;
  parentId: string | null;
  vanishedAt: string | null;
  deleteTaskId: string | null;
}

/** A restore point written behind Cairn's back, in the dummy's own file format. */
function writePoint(dir: string, id: string, instance: string, extra: Record<string, unknown> = {}): void {
  const point = { id, instance, mode: 'FULL', parent: null, size: 7, createdAt: '2026-01-01T00:00:00.000Z', ...extra };
  fs.writeFileSync(path.join(dir, `${id}.json`), JSON.stringify(point, null, 2));
}

const syncTasks = async (api: Api) =>
  (await api.expect(200, 'GET', '/v1/tasks?kind=sync&limit=500')).items as TaskBody[];

describe.each(backends)('provider sync and the drift report (%s)', (backend) => {
  const stack = withStack(backend, { agents: [{ name: 'host-1' }] });
  let api: Api;
  beforeAll(() => {
    api = stack.admin;
  });

  async function backup(instanceId: string): Promise<TaskBody> {
    const done = await stack.backup(instanceId, { body: { mode: 'FULL' } });
    expect(done.state).toBe('succeeded');
    return done;
  }

  async function sync(providerId: string, zone = 'zone-a'): Promise<TaskBody> {
    const r = await api.call('POST', `/v1/zones/${zone}/providers/${providerId}/sync`);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ kind: 'sync' });
    expect(r.headers.get('location')).toBe(`/v1/tasks/${r.body.id}`);
    return waitForTask(api, r.body.id as string, ENDED);
  }

  const drift = (providerId: string) => api.expect(200, 'GET', `/v1/zones/zone-a/providers/${providerId}/drift`);
  const records = async (instanceId: string) =>
    ((await api.expect(200, 'GET', `/v1/backups?instanceId=${instanceId}&limit=500`)).items as BackupBody[]).sort(
      (a, b) => (a.id < b.id ? -1 : 1),
    );
  const eventsOf = async (type: string, taskId: string) =>
    ((await api.expect(200, 'GET', '/v1/events?after=0&limit=500')).items as any[]).filter(
      (e) => e.type === type && e.taskId === taskId,
    );

  it('adopts a point added behind its back, marks one deleted behind its back vanished, names an orphan; the drift report counts them', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', { config: { ...fast, storeDir } });
    const none = await api.call('GET', `/v1/zones/zone-a/providers/${p.providerId}/drift`);
    expect(none.status).toBe(404);
    expect(none.body.detail).toMatch(/no drift report yet.*no sync of it has completed/);

    const kept = (await backup(p.instanceId)).backupId!;
    const gone = (await backup(p.instanceId)).backupId!;
    const goneExternal = (await records(p.instanceId)).find((r) => r.id === gone)!.externalId;
    const goneFile = path.join(storeDir, `${goneExternal}.json`);
    const goneText = fs.readFileSync(goneFile, 'utf8');
    fs.unlinkSync(goneFile);
    writePoint(storeDir, 'dummy-adopt-me', p.instanceId);
    writePoint(storeDir, 'dummy-orphan', 'ins_nosuchinstance');

    const task = await sync(p.providerId);
    expect(task.state).toBe('succeeded');
    const all = await records(p.instanceId);
    const adopted = all.find((r) => r.externalId === 'dummy-adopt-me')!;
    expect(adopted).toMatchObject({
      createdAt: '2026-01-01T00:00:00.000Z',
      sizeBytes: 7,
      mode: 'FULL',
      taskId: null,
      vanishedAt: null,
    });
    expect(all.map((r) => r.id).sort()).toEqual([kept, gone, adopted.id].sort());
    expect(all.find((r) => r.id === gone)!.vanishedAt).toMatch(/^\d{4}-/);
    expect(all.find((r) => r.id === kept)!.vanishedAt).toBeNull();

    const report = await drift(p.providerId);
    expect(report).toEqual({
      providerId: p.providerId,
      taskId: task.id,
      syncedAt: expect.stringMatching(/^\d{4}-/) as string,
      counts: { known: 1, adopted: 1, vanished: 1, expired: 0, orphaned: 1, removed: 0, deferred: 0 },
      adopted: [adopted.id],
      vanished: [gone],
      expired: [],
      orphaned: ['dummy-orphan'],
      removed: [],
      held: null,
      noRepository: null,
      truncated: false,
    });
    expect(await eventsOf('backup.adopted', task.id)).toHaveLength(1);
    expect(await eventsOf('backup.vanished', task.id)).toMatchObject([{ instanceId: p.instanceId }]);
    expect(await eventsOf('provider.synced', task.id)).toMatchObject([
      { data: { counts: { known: 1, adopted: 1, vanished: 1, orphaned: 1 } } },
    ]);

    // A vanished backup cannot be restored from; the adopted one can.
    const refused = await api.call('POST', `/v1/backups/${gone}/restore`);
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('backup_vanished');
    const other = await api.expect(201, 'POST', '/v1/instances', { name: 'sync-target', zone: 'zone-a', locator: {} });
    const volume = await api.call('POST', `/v1/backups/${gone}/restore-volume`, {
      volume: 'disk0',
      targetInstanceId: other.id,
    });
    expect(volume.status).toBe(409);
    expect(volume.body.code).toBe('backup_vanished');
    expect(
      (await waitForTask(api, (await api.expect(202, 'POST', `/v1/backups/${adopted.id}/restore`)).id, ENDED)).state,
    ).toBe('succeeded');

    // The point comes back: the next sync clears the mark and finds nothing new.
    fs.writeFileSync(goneFile, goneText);
    const again = await sync(p.providerId);
    expect((await drift(p.providerId)).counts).toEqual({
      known: 3,
      adopted: 0,
      vanished: 0,
      expired: 0,
      orphaned: 1,
      removed: 0,
      deferred: 0,
    });
    expect((await drift(p.providerId)).taskId).toBe(again.id);
    expect((await records(p.instanceId)).every((r) => r.vanishedAt === null)).toBe(true);
    expect(await eventsOf('backup.adopted', again.id)).toEqual([]);
  });

  it('never adopts by a locator equal to the instance locator, and chains an adopted increment to its adopted parent', async () => {
    const storeDir = tempDir('dummy-store');
    // The dummy lists `{instanceId: <its instance field>}`: `legacy-7` names no instance, and the
    // instance's locator equal to it is not a claim on it (a locator is what a tenant writes).
    const p = await protectInstance(api, 'zone-a', {
      config: { ...fast, storeDir },
      locator: { instanceId: 'legacy-7' },
    });
    writePoint(storeDir, 'dummy-legacy', 'legacy-7');
    writePoint(storeDir, 'dummy-base', p.instanceId, { createdAt: '2026-01-01T00:00:01.000Z' });
    writePoint(storeDir, 'dummy-inc', p.instanceId, {
      mode: 'INCREMENT',
      parent: 'dummy-base',
      createdAt: '2026-01-02T00:00:00.000Z',
    });
    const task = await sync(p.providerId);
    expect(task.state).toBe('succeeded');
    const all = await records(p.instanceId);
    expect(all.map((r) => r.externalId).sort()).toEqual(['dummy-base', 'dummy-inc']);
    const base = all.find((r) => r.externalId === 'dummy-base')!;
    expect(base).toMatchObject({ mode: 'FULL', parentId: null });
    expect(all.find((r) => r.externalId === 'dummy-inc')).toMatchObject({ mode: 'INCREMENT', parentId: base.id });
    const report = await drift(p.providerId);
    expect(report.counts).toMatchObject({ adopted: 2, orphaned: 1 });
    expect(report.orphaned).toEqual(['dummy-legacy']);
  });

  it('keep-last 3 with refused deletes keeps 5 records; once deletes work, the next sync removes exactly the 2 oldest through the provider', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', {
      config: { ...fast, storeDir, failDeletes: true },
      sla: { cron: NEVER_DURING_A_TEST, keepLast: 3 },
    });
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await backup(p.instanceId)).backupId!);
    const deleteTasks = async () =>
      (await api.expect(200, 'GET', `/v1/tasks?instanceId=${p.instanceId}&kind=delete-backup&limit=500`))
        .items as TaskBody[];
    const failed = await waitFor(async () => {
      const tasks = await deleteTasks();
      const ended = tasks.every((t) => ENDED.includes(t.state));
      const both = made.slice(0, 2).every((id) => tasks.some((t) => t.backupId === id));
      return ended && both ? tasks : undefined;
    }, 'the refused deletes of the two oldest to end');
    expect(failed.every((t) => t.state === 'failed')).toBe(true);
    expect(await records(p.instanceId)).toHaveLength(5);
    expect(dummyPoints(storeDir)).toHaveLength(5);

    await api.expect(200, 'PATCH', `/v1/zones/zone-a/providers/${p.providerId}`, {
      config: { ...fast, storeDir, failDeletes: false },
    });
    const task = await sync(p.providerId);
    expect(task.state).toBe('succeeded');
    const report = await drift(p.providerId);
    expect(report.counts).toMatchObject({ known: 5, expired: 2, vanished: 0, adopted: 0 });
    expect([...report.expired].sort()).toEqual(made.slice(0, 2).sort());
    await waitFor(async () => {
      const tasks = await deleteTasks();
      return tasks.length === failed.length + 2 && tasks.every((t) => ENDED.includes(t.state));
    }, 'the deletes the sync queued to end');
    const fresh = (await deleteTasks()).filter((t) => !failed.some((f) => f.id === t.id));
    expect(fresh.map((t) => [t.backupId, t.state]).sort()).toEqual(
      made
        .slice(0, 2)
        .map((id) => [id, 'succeeded'])
        .sort(),
    );
    const left = await records(p.instanceId);
    expect(left.map((r) => r.id)).toEqual(made.slice(2).sort());
    expect(dummyPoints(storeDir)).toEqual(left.map((r) => r.externalId).sort());
  });

  it('removes a record whose delete was asked for once the provider no longer lists it; deletes an expired point', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', { config: { ...fast, storeDir, failDeletes: true } });
    const doomed = (await backup(p.instanceId)).backupId!;
    const del = await api.expect(202, 'DELETE', `/v1/backups/${doomed}`);
    expect((await waitForTask(api, del.id, ENDED)).state).toBe('failed');
    // The operator removes it by hand, as the refused delete asked.
    fs.unlinkSync(path.join(storeDir, `${(await records(p.instanceId))[0]!.externalId}.json`));
    await api.expect(200, 'PATCH', `/v1/zones/zone-a/providers/${p.providerId}`, { config: { ...fast, storeDir } });
    writePoint(storeDir, 'dummy-expired', p.instanceId, {
      createdAt: '2000-01-01T00:00:00.000Z',
      expiresAt: '2001-01-01T00:00:00.000Z',
    });
    const task = await sync(p.providerId);
    const report = await drift(p.providerId);
    expect(report.counts).toMatchObject({ removed: 1, vanished: 0, adopted: 1, expired: 1 });
    expect(report.removed).toEqual([doomed]);
    expect(report.expired).toEqual(report.adopted);
    expect(await eventsOf('backup.deleted', task.id)).toHaveLength(1);
    await waitFor(async () => (await records(p.instanceId)).length === 0, 'the expired point to be deleted');
    expect(dummyPoints(storeDir)).toEqual([]);
  });

  it('does not adopt back a point deleted after its listing was taken (the listing still held it)', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', { config: { ...fast, storeDir } });
    const doomed = (await backup(p.instanceId)).backupId!;
    const kept = (await backup(p.instanceId)).backupId!;
    // The listing is taken at once and answered 3 s later; the delete ends in between.
    await api.expect(200, 'PATCH', `/v1/zones/zone-a/providers/${p.providerId}`, {
      config: { ...fast, storeDir, syncHoldMs: 3000 },
    });
    const started = await api.expect<TaskBody>(202, 'POST', `/v1/zones/zone-a/providers/${p.providerId}/sync`);
    await waitForTask(api, started.id, ['running']);
    const del = await api.expect<TaskBody>(202, 'DELETE', `/v1/backups/${doomed}`);
    expect((await waitForTask(api, del.id, ENDED)).state).toBe('succeeded');
    expect((await waitForTask(api, started.id, ENDED)).state).toBe('succeeded');
    expect((await records(p.instanceId)).map((r) => r.id)).toEqual([kept]);
    expect(await drift(p.providerId)).toMatchObject({ counts: { adopted: 0 } });
    expect(dummyPoints(storeDir)).toEqual((await records(p.instanceId)).map((r) => r.externalId));
  });

  it('a sync that would mark 9 of 10 points vanished marks none and waits; ?confirm=true marks them and ends the hold', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', { config: { ...fast, storeDir } });
    for (let i = 0; i < 10; i++) writePoint(storeDir, `dummy-many-${i}`, p.instanceId);
    expect((await sync(p.providerId)).state).toBe('succeeded');
    const all = await records(p.instanceId);
    expect(all).toHaveLength(10);
    const kept = all[0]!;
    const lost = all.slice(1);
    const lostFiles = lost.map((r) => {
      const file = path.join(storeDir, `${r.externalId}.json`);
      const text = fs.readFileSync(file, 'utf8');
      fs.unlinkSync(file);
      return { file, text };
    });
    const lostIds = lost.map((r) => r.id).sort();
    const confirm = `POST /v1/zones/zone-a/providers/${p.providerId}/sync?confirm=true`;

    // A sync holds: it succeeds, marks nothing, and says why and how to go on.
    const held = await sync(p.providerId);
    expect(held.state).toBe('succeeded');
    expect((await records(p.instanceId)).every((r) => r.vanishedAt === null)).toBe(true);
    const report = await drift(p.providerId);
    expect(report).toMatchObject({
      taskId: held.id,
      counts: { known: 1, vanished: 0, adopted: 0 },
      vanished: [],
      held: { vanishing: 9, of: 10, confirm, since: expect.stringMatching(/^\d{4}-/) as string },
    });
    expect([...report.held.ids].sort()).toEqual(lostIds);
    expect(await eventsOf('backup.vanished', held.id)).toEqual([]);
    // The SP's event (its own tenant's, like the sync task): it concerns every tenant of the provider.
    const spTenant = (await api.expect(200, 'GET', `/v1/instances/${p.instanceId}`)).tenantId as string;
    const [event] = await eventsOf('provider.sync_held', held.id);
    expect(event).toMatchObject({
      tenantId: spTenant,
      instanceId: null,
      data: { providerId: p.providerId, vanishing: 9, of: 10, confirm, since: report.held.since },
    });
    expect(event.message).toContain('9 of its 10 restore points');
    expect(event.message).toContain(confirm);
    // The record of a missing point is not marked: a restore is not refused as backup_vanished.
    expect((await api.expect(200, 'GET', `/v1/backups/${lost[0]!.id}`)).vanishedAt).toBeNull();

    // A plain sync still holds, since the first held one.
    const again = await sync(p.providerId);
    const still = await drift(p.providerId);
    expect(still).toMatchObject({ taskId: again.id, held: { vanishing: 9, of: 10, since: report.held.since } });
    expect(await eventsOf('provider.sync_held', again.id)).toHaveLength(1);

    // The points come back: the next sync is not held, and ends the hold.
    for (const { file, text } of lostFiles) fs.writeFileSync(file, text);
    await sync(p.providerId);
    expect((await drift(p.providerId)).held).toBeNull();
    for (const { file } of lostFiles) fs.unlinkSync(file);
    const heldAgain = await sync(p.providerId);
    expect((await drift(p.providerId)).held.since).not.toBe(report.held.since);

    // Bad confirmations are refused, naming the parameter, and queue nothing.
    const syncsBefore = (await syncTasks(api)).length;
    for (const bad of ['yes', 'TRUE', '1', '']) {
      const r = await api.call('POST', `/v1/zones/zone-a/providers/${p.providerId}/sync?confirm=${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.headers.get('content-type'), bad).toMatch(/application\/problem\+json/);
      expect(JSON.stringify(r.body), bad).toContain('confirm');
    }
    expect(await syncTasks(api)).toHaveLength(syncsBefore);
    expect((await drift(p.providerId)).taskId).toBe(heldAgain.id);

    // The operator confirms: the 9 are marked vanished and the hold ends.
    const confirmed = await api.call('POST', `/v1/zones/zone-a/providers/${p.providerId}/sync?confirm=true`);
    expect(confirmed.status).toBe(202);
    expect((await waitForTask(api, confirmed.body.id as string, ENDED)).state).toBe('succeeded');
    const after = await drift(p.providerId);
    expect(after).toMatchObject({ taskId: confirmed.body.id, held: null, counts: { known: 1, vanished: 9 } });
    expect([...after.vanished].sort()).toEqual(lostIds);
    const marked = await records(p.instanceId);
    expect(marked.filter((r) => r.vanishedAt !== null).map((r) => r.id)).toEqual(lostIds);
    expect(marked.find((r) => r.id === kept.id)!.vanishedAt).toBeNull();
    expect(await eventsOf('backup.vanished', confirmed.body.id as string)).toHaveLength(9);
    expect(await eventsOf('provider.sync_held', confirmed.body.id as string)).toEqual([]);
    const refused = await api.call('POST', `/v1/backups/${lost[0]!.id}/restore`);
    expect([refused.status, refused.body.code]).toEqual([409, 'backup_vanished']);

    // The confirmation was the one sync's: the next plain sync has nothing new to hold or mark.
    await sync(p.providerId);
    expect((await drift(p.providerId)).held).toBeNull();
    expect((await drift(p.providerId)).counts).toMatchObject({ known: 1, vanished: 9 });
  });

  it('?confirm=true while a sync is queued confirms that sync', async () => {
    // A zone of its own, so that its one agent can be stopped while the sync waits.
    const late = await stack.enroll('zone-late', 'host-late');
    let lateAgent = await stack.runAgent(late.stateDir);
    try {
      const storeDir = tempDir('dummy-store');
      const p = await protectInstance(api, 'zone-late', { config: { ...fast, storeDir } });
      for (let i = 0; i < 3; i++) writePoint(storeDir, `dummy-late-${i}`, p.instanceId);
      const url = `/v1/zones/zone-late/providers/${p.providerId}/sync`;
      expect((await waitForTask(api, (await api.expect(202, 'POST', url)).id, ENDED)).state).toBe('succeeded');
      expect(await records(p.instanceId)).toHaveLength(3);
      await lateAgent.stop();
      for (let i = 0; i < 3; i++) fs.unlinkSync(path.join(storeDir, `dummy-late-${i}.json`));

      const queued = await api.expect(202, 'POST', url);
      expect(queued.state).toBe('queued');
      const confirmed = await api.expect(202, 'POST', `${url}?confirm=true`);
      expect(confirmed.id).toBe(queued.id);
      lateAgent = await stack.runAgent(late.stateDir);
      expect((await waitForTask(api, queued.id as string, ENDED)).state).toBe('succeeded');
      const report = await api.expect(200, 'GET', `/v1/zones/zone-late/providers/${p.providerId}/drift`);
      expect(report).toMatchObject({ taskId: queued.id, held: null, counts: { vanished: 3 } });
      expect((await records(p.instanceId)).every((r) => r.vanishedAt !== null)).toBe(true);
    } finally {
      await lateAgent.stop();
    }
  });

  it('a sync already queued is answered again instead of a second one', async () => {
    // A zone without agents: the sync stays queued.
    const provider = await api.expect(201, 'POST', '/v1/zones/zone-idle/providers', {
      name: 'idle',
      plugin: '@cairn/plugin-dummy',
      tenantLocators: 'any',
      config: {},
    });
    const replies = await Promise.all(
      Array.from({ length: 6 }, () => api.call('POST', `/v1/zones/zone-idle/providers/${provider.id}/sync`)),
    );
    const queued = (await syncTasks(api)).filter((t) => t.state === 'queued');
    expect(queued).toHaveLength(1);
    for (const r of replies) {
      // The pending task again, or a lost race for the claim.
      if (r.status === 202) expect(r.body.id).toBe(queued[0]!.id);
      else expect([r.status, r.body.code]).toEqual([409, 'sync_pending']);
    }
    const again = await api.call('POST', `/v1/zones/zone-idle/providers/${provider.id}/sync`);
    expect([again.status, again.body.id]).toEqual([202, queued[0]!.id]);
  });

  it('a malformed listing fails the sync with the reason and changes nothing; bad requests are refused', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', { config: { ...fast, storeDir } });
    await backup(p.instanceId);
    const good = await sync(p.providerId);
    const before = await records(p.instanceId);
    fs.unlinkSync(path.join(storeDir, `${before[0]!.externalId}.json`));
    writePoint(storeDir, 'dummy-unseen', p.instanceId);
    await api.expect(200, 'PATCH', `/v1/zones/zone-a/providers/${p.providerId}`, {
      config: { ...fast, storeDir, syncGarbage: true },
    });
    const bad = await sync(p.providerId);
    expect(bad).toMatchObject({ state: 'failed', error: { code: 'INVALID_RESULT' } });
    expect(bad.error!.message).toMatch(/point 0: externalId must be a non-empty string/);
    expect(await eventsOf('provider.sync_failed', bad.id)).toMatchObject([{ data: { code: 'INVALID_RESULT' } }]);
    expect((await drift(p.providerId)).taskId).toBe(good.id);
    expect(await records(p.instanceId)).toEqual(before);

    const tenantApi = (await stack.tenant('sync-tenant', { tokenName: 'a' })).api;
    const refusals: [Api, string, string, number][] = [
      [api, 'POST', `/v1/zones/zone-b/providers/${p.providerId}/sync`, 404],
      [api, 'GET', `/v1/zones/zone-b/providers/${p.providerId}/drift`, 404],
      [api, 'POST', '/v1/zones/zone-a/providers/prv_nosuchprovider/sync', 404],
      [api, 'GET', '/v1/zones/zone-a/providers/prv_nosuchprovider/drift', 404],
      [api, 'POST', `/v1/zones/zone-a/providers/${p.providerId}/sync?now=1`, 400],
      [api, 'POST', `/v1/zones/Zone%20A/providers/${p.providerId}/sync`, 400],
      [tenantApi, 'POST', `/v1/zones/zone-a/providers/${p.providerId}/sync`, 403],
      [tenantApi, 'GET', `/v1/zones/zone-a/providers/${p.providerId}/drift`, 403],
    ];
    const syncsBefore = (await syncTasks(api)).length;
    for (const [who, method, url, status] of refusals) {
      const r = await who.call(method, url);
      expect(r.status, `${method} ${url}`).toBe(status);
      expect(r.headers.get('content-type'), url).toMatch(/application\/problem\+json/);
    }
    expect(await syncTasks(api)).toHaveLength(syncsBefore);
  });
});

/** Every sync task has ended, and there are `n` of them. */
async function syncsSettled(api: Api, n: number): Promise<void> {
  await waitFor(async () => {
    const tasks = await syncTasks(api);
    return tasks.length === n && tasks.every((t) => t.state === 'succeeded');
  }, `${n} sync tasks to succeed`);
}

describe.each(backends)('periodic sync under the test clock (%s)', (backend) => {
  const stack = withStack(backend, {
    clockAt: '2026-06-01T00:00:30Z',
    env: { CAIRN_SYNC_INTERVAL_S: '60' },
    agents: [{ name: 'host-1' }],
  });
  let api: Api;

  beforeAll(async () => {
    api = stack.admin;
    await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'synced',
      plugin: '@cairn/plugin-dummy',
      tenantLocators: 'any',
      config: { storeDir: tempDir('dummy-store') },
    });
  });

  it('syncs every provider once per interval, however often the scheduler ticks', async () => {
    const steps: [string, number][] = [
      ['2026-06-01T00:00:40Z', 1],
      ['2026-06-01T00:00:59Z', 1],
      ['2026-06-01T00:01:00Z', 2],
      ['2026-06-01T00:01:30Z', 2],
      ['2026-06-01T00:02:00Z', 3],
      // Intervals that passed unseen are one sync, not a burst of them.
      ['2026-06-01T00:09:10Z', 4],
      ['2026-06-01T00:09:50Z', 4],
    ];
    for (const [at, n] of steps) {
      await stack.step(at);
      await syncsSettled(api, n);
    }
    expect(await syncTasks(api)).toHaveLength(4);
  });
});

// Replicas share one MySQL database; SQLite is the single-process quick start.
describe.runIf(backends.includes('mysql'))('periodic sync with two control planes on one MySQL database', () => {
  const INTERVALS = 15;
  const stack = withStack('mysql', {
    clockAt: '2026-06-01T00:00:30Z',
    env: { CAIRN_SYNC_INTERVAL_S: '60' },
    replicas: 2,
    agents: [{ name: 'replica-host' }],
  });
  let api: Api;

  beforeAll(async () => {
    const [a, b] = stack.replicas;
    api = stack.adminOf(b!);
    await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'synced',
      plugin: '@cairn/plugin-dummy',
      tenantLocators: 'any',
      config: { storeDir: tempDir('dummy-store') },
    });
    await Promise.all([tickedAt(a!, '2026-06-01T00:00:30Z'), tickedAt(b!, '2026-06-01T00:00:30Z')]);
  });

  it(`queues exactly one sync per interval over ${INTERVALS} intervals`, async () => {
    // The first interval's sync may come from either replica's first tick after the provider existed.
    await syncsSettled(api, 1);
    for (let i = 1; i <= INTERVALS; i++) {
      const at = new Date(Date.parse('2026-06-01T00:00:00Z') + i * 60_000).toISOString();
      // Both replicas have seen the interval begin, so both have tried to claim it.
      await stack.step(at);
      await syncsSettled(api, i + 1);
    }
    expect(await syncTasks(api)).toHaveLength(INTERVALS + 1);
  });
});
