import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { tempDir } from '@cairn/test-harness/processes';
import {
  dummyPoints,
  ENDED,
  protectInstance,
  waitForTask,
  writeDummyPoint,
  type TaskBody,
} from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

// The scheduler runs on the real clock here: an SLA that fires only on 1 January at 02:00 UTC adds no
// backups of its own while a test counts them.
const NEVER_DURING_A_TEST = '0 2 1 1 *';

interface BackupBody {
  id: string;
  externalId: string;
  mode: string;
  parentId: string | null;
  deleteTaskId: string | null;
  createdAt: string;
  recordedAt: string;
  vanishedAt: string | null;
}

const fast = { durationMs: 50, steps: 1, sizeBytes: 1000 };

describe.each(backends)('retention and deletes through the provider (%s)', (backend) => {
  const stack = withStack(backend, { agents: [{ name: 'host-1' }] });
  let api: Api;
  beforeAll(() => {
    api = stack.admin;
  });

  async function backup(instanceId: string, mode: 'FULL' | 'INCREMENT' = 'FULL'): Promise<TaskBody> {
    const done = await stack.backup(instanceId, { body: { mode } });
    expect(done.state).toBe('succeeded');
    return done;
  }

  const deleteTasks = async (instanceId: string) =>
    (await api.expect(200, 'GET', `/v1/tasks?instanceId=${instanceId}&kind=delete-backup&limit=500`))
      .items as TaskBody[];

  /** The restore points the instance's tenant has counted against its quota in the offering. */
  async function pointsCounted(instanceId: string, offeringId: string): Promise<number> {
    const { tenantId } = await api.expect<{ tenantId: string }>(200, 'GET', `/v1/instances/${instanceId}`);
    const quotas = await api.expect<{ restorePointsPerOffering: { usage: { offeringId: string; used: number }[] } }>(
      200,
      'GET',
      `/v1/tenants/${tenantId}/quotas`,
    );
    return quotas.restorePointsPerOffering.usage.find((u) => u.offeringId === offeringId)?.used ?? 0;
  }

  /** Waits until every delete-backup task of the instance ended, and returns them. */
  async function deletesSettled(instanceId: string, count: number): Promise<TaskBody[]> {
    return waitFor(
      async () => {
        const tasks = await deleteTasks(instanceId);
        return tasks.length === count && tasks.every((t) => ENDED.includes(t.state)) ? tasks : undefined;
      },
      `${count} delete-backup tasks of ${instanceId} to end`,
      30_000,
    );
  }

  const records = async (instanceId: string) =>
    ((await api.expect(200, 'GET', `/v1/backups?instanceId=${instanceId}&limit=500`)).items as BackupBody[]).sort(
      (a, b) => (a.id < b.id ? -1 : 1),
    );

  const eventsOf = async (type: string) =>
    ((await api.expect(200, 'GET', '/v1/events?after=0&limit=500')).items as { type: string; taskId: string }[]).filter(
      (e) => e.type === type,
    );

  it('keep-last 3 after 5 backups leaves exactly 3 records and 3 restore points in the provider, the newest', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', {
      config: { ...fast, storeDir },
      sla: { cron: NEVER_DURING_A_TEST, keepLast: 3 },
    });
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await backup(p.instanceId)).backupId!);
    const deletes = await deletesSettled(p.instanceId, 2);
    expect(deletes.map((t) => t.state)).toEqual(['succeeded', 'succeeded']);
    // One delete per doomed record, never two: the two oldest.
    expect(deletes.map((t) => t.backupId).sort()).toEqual(made.slice(0, 2).sort());

    const kept = await records(p.instanceId);
    expect(kept.map((b) => b.id)).toEqual(made.slice(2).sort());
    expect(dummyPoints(storeDir)).toEqual(kept.map((b) => b.externalId).sort());
    const deleted = (await eventsOf('backup.deleted')).filter((e) => deletes.some((t) => t.id === e.taskId));
    expect(deleted).toHaveLength(2);
  });

  it('keep-last 1 keeps each fresh backup although a sync adopted a point dated 2099; the point is flagged future-dated', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', {
      config: { ...fast, storeDir },
      sla: { cron: NEVER_DURING_A_TEST, keepLast: 1 },
    });
    // A restic snapshot made on a host whose clock said 2099, tagged with the instance.
    writeDummyPoint(storeDir, 'dummy-from-2099', p.instanceId, { createdAt: '2099-01-01T00:00:00.000Z' });
    const started = await api.call('POST', `/v1/zones/zone-a/providers/${p.providerId}/sync`);
    expect(started.status).toBe(202);
    const sync = await waitForTask(api, started.body.id as string, ENDED);
    expect(sync.state).toBe('succeeded');
    const [adopted] = await records(p.instanceId);
    // Shown with the provider's time, ranked by the time the control plane recorded it.
    expect(adopted).toMatchObject({ externalId: 'dummy-from-2099', createdAt: '2099-01-01T00:00:00.000Z' });
    expect(Date.parse(adopted!.recordedAt)).toBeLessThanOrEqual(Date.now());
    const warnings = (await api.expect(200, 'GET', '/v1/events?after=0&limit=500')).items.filter(
      (e: { type: string; taskId: string }) => e.type === 'backup.future_dated' && e.taskId === sync.id,
    );
    expect(warnings).toMatchObject([
      {
        instanceId: p.instanceId,
        data: { backupId: adopted!.id, providerId: p.providerId, providerTime: '2099-01-01T00:00:00.000Z' },
      },
    ]);
    expect(warnings[0].message).toContain(adopted!.id);

    for (let i = 1; i <= 3; i++) {
      const made = (await backup(p.instanceId)).backupId!;
      // Its retention ran with it: the one before it (the 2099 point first) goes, it stays.
      await deletesSettled(p.instanceId, i);
      expect(
        (await records(p.instanceId)).map((r) => r.id),
        `backup ${i}`,
      ).toEqual([made]);
    }
    expect(dummyPoints(storeDir)).toHaveLength(1);
  });

  it('a future-dated point that later disappears from the provider is marked vanished like any other', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', { config: { ...fast, storeDir } });
    writeDummyPoint(storeDir, 'dummy-future', p.instanceId, { createdAt: '2099-01-01T00:00:00.000Z' });
    const sync = async () => {
      const started = await api.call('POST', `/v1/zones/zone-a/providers/${p.providerId}/sync`);
      expect(started.status).toBe(202);
      expect((await waitForTask(api, started.body.id as string, ENDED)).state).toBe('succeeded');
    };
    await sync();
    const [adopted] = await records(p.instanceId);
    expect(adopted).toMatchObject({ externalId: 'dummy-future', vanishedAt: null });
    fs.rmSync(path.join(storeDir, 'dummy-future.json'));
    await sync();
    // Written before this listing began, whatever the provider said its time was.
    expect((await records(p.instanceId))[0]!.vanishedAt).not.toBeNull();
  });

  it('never deletes the base of a kept increment; the whole old chain goes, children first, once no kept point needs it', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', {
      config: { ...fast, storeDir },
      sla: { cron: NEVER_DURING_A_TEST, keepLast: 2 },
    });
    const a = (await backup(p.instanceId, 'FULL')).backupId!;
    const b = (await backup(p.instanceId, 'INCREMENT')).backupId!;
    const c = (await backup(p.instanceId, 'INCREMENT')).backupId!;
    const d = (await backup(p.instanceId, 'FULL')).backupId!;
    // c (kept) builds on b, b on a: nothing may go yet, however far beyond keep-last.
    const chain = await records(p.instanceId);
    expect(chain.find((r) => r.id === c)).toMatchObject({ mode: 'INCREMENT', parentId: b });
    expect(chain.find((r) => r.id === b)).toMatchObject({ mode: 'INCREMENT', parentId: a });
    expect(chain.map((r) => r.id)).toEqual([a, b, c, d]);
    expect(await deleteTasks(p.instanceId)).toEqual([]);
    expect(dummyPoints(storeDir)).toHaveLength(4);

    const e = (await backup(p.instanceId, 'FULL')).backupId!;
    // The dummy refuses to delete a point an increment builds on: all three succeed only children first.
    const deletes = await deletesSettled(p.instanceId, 3);
    expect(deletes.map((t) => [t.backupId, t.state]).sort()).toEqual(
      [
        [a, 'succeeded'],
        [b, 'succeeded'],
        [c, 'succeeded'],
      ].sort(),
    );
    const kept = await records(p.instanceId);
    expect(kept.map((r) => r.id)).toEqual([d, e]);
    expect(dummyPoints(storeDir)).toEqual(kept.map((r) => r.externalId).sort());
  });

  it('a delete the provider refuses keeps the record and raises backup.delete_failed; the next backup asks again', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', {
      config: { ...fast, storeDir, failDeletes: true },
      sla: { cron: NEVER_DURING_A_TEST, keepLast: 1 },
    });
    const first = (await backup(p.instanceId)).backupId!;
    await backup(p.instanceId);
    const [failed] = await deletesSettled(p.instanceId, 1);
    expect(failed).toMatchObject({ state: 'failed', backupId: first, error: { code: 'DELETE_REFUSED' } });
    expect((await records(p.instanceId)).find((r) => r.id === first)).toMatchObject({ deleteTaskId: failed!.id });
    expect(dummyPoints(storeDir)).toHaveLength(2);
    const raised = (await eventsOf('backup.delete_failed')).filter((e) => e.taskId === failed!.id);
    expect(raised).toHaveLength(1);
    // The record that stays counts toward the tenant's restore-point quota again.
    expect(await pointsCounted(p.instanceId, p.offeringId)).toBe(2);

    // The failed delete no longer blocks: the next retention run queues one more for each doomed record.
    await backup(p.instanceId);
    const again = await deletesSettled(p.instanceId, 3);
    expect(again.filter((t) => t.backupId === first)).toHaveLength(2);
    expect(await records(p.instanceId)).toHaveLength(3);
    expect(await pointsCounted(p.instanceId, p.offeringId)).toBe(3);
  });

  it('DELETE /v1/backups/{id} answers 202 with the task, a second DELETE the same pending task; the record goes when the provider confirms', async () => {
    // A zone of its own, whose only agent is stopped while the delete is pending.
    const enrolled = await stack.enroll('zone-b', 'host-b');
    let agentB = await stack.runAgent(enrolled.stateDir);
    try {
      const storeDir = tempDir('dummy-store');
      const p = await protectInstance(api, 'zone-b', { config: { ...fast, storeDir } });
      const doomed = (await backup(p.instanceId)).backupId!;
      const other = (await backup(p.instanceId)).backupId!;
      await agentB.stop();

      const first = await api.call('DELETE', `/v1/backups/${doomed}`);
      expect(first.status).toBe(202);
      expect(first.body).toMatchObject({ kind: 'delete-backup', state: 'queued', backupId: doomed });
      expect(first.headers.get('location')).toBe(`/v1/tasks/${first.body.id}`);
      const second = await api.call('DELETE', `/v1/backups/${doomed}`);
      expect(second.status).toBe(202);
      expect(second.body.id).toBe(first.body.id);
      expect(await deleteTasks(p.instanceId)).toHaveLength(1);
      // Not confirmed yet: the record and the restore point are both still there.
      expect(await api.expect(200, 'GET', `/v1/backups/${doomed}`)).toMatchObject({ deleteTaskId: first.body.id });
      expect(dummyPoints(storeDir)).toHaveLength(2);

      agentB = await stack.runAgent(enrolled.stateDir);
      expect(await waitForTask(api, first.body.id, ENDED)).toMatchObject({ state: 'succeeded' });
      expect((await api.call('GET', `/v1/backups/${doomed}`)).status).toBe(404);
      const left = await records(p.instanceId);
      expect(left.map((r) => r.id)).toEqual([other]);
      expect(dummyPoints(storeDir)).toEqual([left[0]!.externalId]);
    } finally {
      await agentB.stop();
    }
  });

  it('concurrent DELETEs of one backup queue exactly one delete task', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', { config: { ...fast, storeDir } });
    const id = (await backup(p.instanceId)).backupId!;
    const replies = await Promise.all(Array.from({ length: 12 }, () => api.call('DELETE', `/v1/backups/${id}`)));
    const tasks = await deletesSettled(p.instanceId, 1);
    expect(tasks[0]).toMatchObject({ state: 'succeeded', backupId: id });
    for (const r of replies) {
      // The pending task again, a lost race for it, or (once confirmed) no such backup.
      if (r.status === 202) expect(r.body.id).toBe(tasks[0]!.id);
      else if (r.status === 409) expect(r.body.code).toBe('delete_pending');
      else expect(r.status).toBe(404);
    }
    expect(replies.filter((r) => r.status === 202).length).toBeGreaterThanOrEqual(1);
    expect(await records(p.instanceId)).toEqual([]);
    expect(dummyPoints(storeDir)).toEqual([]);
  });

  it('removing the offering with force=true deletes every restore point through the provider; without force they stay', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', { config: { ...fast, storeDir } });
    await backup(p.instanceId, 'FULL');
    await backup(p.instanceId, 'INCREMENT');
    expect(dummyPoints(storeDir)).toHaveLength(2);

    const removed = await api.call('DELETE', `/v1/instances/${p.instanceId}/offering?force=true`);
    expect(removed.status).toBe(202);
    expect(removed.body.items).toHaveLength(2);
    const deletes = await deletesSettled(p.instanceId, 2);
    expect(deletes.map((t) => t.state)).toEqual(['succeeded', 'succeeded']);
    expect(await records(p.instanceId)).toEqual([]);
    expect(dummyPoints(storeDir)).toEqual([]);
    expect((await api.expect(200, 'GET', `/v1/instances/${p.instanceId}`)).offeringId).toBeNull();
    // Nothing holds the instance any more.
    await api.expect(204, 'DELETE', `/v1/instances/${p.instanceId}`);

    const q = await protectInstance(api, 'zone-a', { config: { ...fast, storeDir: tempDir('dummy-store') } });
    await backup(q.instanceId);
    await api.expect(204, 'DELETE', `/v1/instances/${q.instanceId}/offering`);
    expect(await records(q.instanceId)).toHaveLength(1);
    expect(await deleteTasks(q.instanceId)).toEqual([]);
  });

  it('bad input (foreign or unknown ids, unknown query parameters) is refused and changes nothing', async () => {
    const storeDir = tempDir('dummy-store');
    const p = await protectInstance(api, 'zone-a', { config: { ...fast, storeDir } });
    const id = (await backup(p.instanceId)).backupId!;
    const foreign = (await stack.tenant('retention-foreign', { tokenName: 'a' })).api;

    const refusals: [Api, string, number][] = [
      [foreign, `/v1/backups/${id}`, 404],
      [api, '/v1/backups/bkp_nosuchbackup', 404],
      [api, '/v1/backups/..%2F..%2Fetc', 404],
      [api, `/v1/backups/${id}?force=true`, 400],
      [foreign, `/v1/instances/${p.instanceId}/offering?force=true`, 404],
      [api, `/v1/instances/${p.instanceId}/offering?force=yes`, 400],
      [api, `/v1/instances/${p.instanceId}/offering?forse=true`, 400],
    ];
    for (const [who, url, status] of refusals) {
      const r = await who.call('DELETE', url);
      expect(r.status, url).toBe(status);
      expect(r.headers.get('content-type'), url).toMatch(/application\/problem\+json/);
    }
    const bad = await api.call('DELETE', `/v1/instances/${p.instanceId}/offering?forse=true`);
    expect(JSON.stringify(bad.body)).toMatch(/forse/);

    expect(await deleteTasks(p.instanceId)).toEqual([]);
    expect((await records(p.instanceId)).map((r) => r.id)).toEqual([id]);
    expect((await api.expect(200, 'GET', `/v1/instances/${p.instanceId}`)).offeringId).toBe(p.offeringId);
    expect(dummyPoints(storeDir)).toHaveLength(1);
    expect(path.isAbsolute(storeDir)).toBe(true);
  });
});
