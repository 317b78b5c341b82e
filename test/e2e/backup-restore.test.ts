import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import type { ControlPlaneProc } from '@cairn/test-harness/processes';
import { protectInstance, waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';

describe.each(backends)('backup and restore end to end (%s)', (backend) => {
  const stack = withStack(backend, { agents: [{ name: 'host-1' }] });
  let cp: ControlPlaneProc;
  let api: Api;
  let agentId: string;

  beforeAll(() => {
    ({ cp, admin: api } = stack);
    agentId = stack.agent.agentId;
  });

  it('reports the enrolled agent with its plugin and capabilities', async () => {
    const a = await api.expect(200, 'GET', `/v1/agents/${agentId}`);
    expect(a).toMatchObject({ id: agentId, zone: 'zone-a', state: 'connected', slots: 2 });
    const dummy = a.plugins.find((p: { name: string }) => p.name === '@cairn/plugin-dummy');
    expect(dummy).toMatchObject({ apiVersion: 1 });
    expect(dummy.capabilities).toEqual(expect.arrayContaining(['backup', 'restore']));
    const plugins = await api.expect(200, 'GET', '/v1/plugins');
    expect(plugins.items).toContainEqual(expect.objectContaining({ zone: 'zone-a', name: '@cairn/plugin-dummy' }));
  });

  it('runs an ad-hoc backup through queued → running → succeeded, stores progress and a backup, then restores it', async () => {
    const p = await protectInstance(api, 'zone-a', { config: { durationMs: 600, steps: 4, sizeBytes: 4096 } });
    const started = await api.post(`/v1/instances/${p.instanceId}/backups`);
    expect(started.status).toBe(202);
    expect(started.headers.get('location')).toBe(`/v1/tasks/${started.body.id}`);
    expect(started.body).toMatchObject({ kind: 'backup', state: 'queued', attempt: 0, instanceId: p.instanceId });

    const done = await waitForTask(api, started.body.id, ['succeeded', 'failed', 'cancelled', 'lost']);
    expect(done).toMatchObject({ state: 'succeeded', attempt: 1, error: null });
    expect(done.progress).toMatchObject({ percent: 100, bytesTotal: 4096 });

    const progress = await api.expect(200, 'GET', `/v1/tasks/${done.id}/progress`);
    expect(progress.items.length).toBeGreaterThanOrEqual(3);
    const percents = progress.items.map((r: { percent: number }) => r.percent);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));

    const events = await api.expect(200, 'GET', '/v1/events?after=0&limit=500');
    const types = events.items
      .filter((e: { taskId: string }) => e.taskId === done.id)
      .map((e: { type: string }) => e.type);
    expect(types).toEqual(expect.arrayContaining(['task.queued', 'task.started', 'task.succeeded']));

    const backups = await api.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`);
    expect(backups.items).toHaveLength(1);
    const backup = backups.items[0];
    expect(backup).toMatchObject({
      instanceId: p.instanceId,
      offeringId: p.offeringId,
      mode: 'FULL',
      sizeBytes: 4096,
      taskId: done.id,
    });
    expect(backup.externalId).toMatch(/^dummy-/);
    expect(backup.name).toMatch(/^vm-\d+\.\d{2}-[A-Z][a-z]{2} \d{2}\.\d{2}\.\d{2}$/);
    expect(done.backupId).toBe(backup.id);

    const restore = await api.post(`/v1/backups/${backup.id}/restore`);
    expect(restore.status).toBe(202);
    expect(restore.body).toMatchObject({ kind: 'restore', backupId: backup.id });
    const restored = await waitForTask(api, restore.body.id, ['succeeded', 'failed', 'cancelled', 'lost']);
    expect(restored.state).toBe('succeeded');
    expect((await api.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`)).items).toHaveLength(1);
  });

  it('restores one volume of a backup onto another instance of the same tenant', async () => {
    const p = await protectInstance(api, 'zone-a', { config: { durationMs: 200, steps: 3 } });
    const task = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    expect((await waitForTask(api, task.id, ['succeeded', 'failed', 'cancelled', 'lost'])).state).toBe('succeeded');
    const [backup] = (await api.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`)).items;
    const target = await api.expect(201, 'POST', '/v1/instances', {
      name: 'vm-target',
      zone: 'zone-a',
      locator: { vm: 't' },
    });

    const bad = await api.post(`/v1/backups/${backup.id}/restore-volume`, { volume: '', targetInstanceId: 'nope' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { path: string }) => e.path)).toEqual(['volume', 'targetInstanceId']);

    const started = await api.post(`/v1/backups/${backup.id}/restore-volume`, {
      volume: 'disk-1',
      targetInstanceId: target.id,
    });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ kind: 'restore-volume', instanceId: target.id, backupId: backup.id });
    const done = (await waitForTask(api, started.body.id, ['succeeded', 'failed', 'cancelled', 'lost'])) as unknown as {
      state: string;
      output: { extra: { volume: string; targetInstanceId: string } };
    };
    expect(done.state).toBe('succeeded');
    expect(done.output.extra).toEqual({ volume: 'disk-1', targetInstanceId: target.id });
  });

  it('surfaces a dummy failure as a failed task with the plugin error code and message', async () => {
    const p = await protectInstance(api, 'zone-a', {
      config: { durationMs: 200, steps: 2, failCode: 'DISK_FULL', failMessage: 'datastore ds-1 is full' },
    });
    const task = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    const failed = await waitForTask(api, task.id, ['succeeded', 'failed', 'cancelled', 'lost']);
    expect(failed.state).toBe('failed');
    expect(failed.error).toEqual({ code: 'DISK_FULL', message: 'datastore ds-1 is full' });
    expect((await api.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`)).items).toHaveLength(0);
  });

  it('cancels a running backup: the plugin sees its AbortSignal and the task ends cancelled', async () => {
    const p = await protectInstance(api, 'zone-a', { config: { durationMs: 60_000, steps: 60 } });
    const task = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    await waitForTask(api, task.id, ['running']);
    const cancel = await api.post(`/v1/tasks/${task.id}/cancel`);
    expect(cancel.status).toBe(202);
    expect(cancel.body.cancelRequested).toBe(true);
    const ended = await waitForTask(api, task.id, ['succeeded', 'failed', 'cancelled', 'lost']);
    expect(ended.state).toBe('cancelled');
    expect(ended.error?.code).toBe('CANCELLED');
    const events = await api.expect(200, 'GET', '/v1/events?after=0&limit=500');
    const aborted = events.items.find(
      (e: { taskId: string; type: string; message: string }) => e.taskId === task.id && /aborted/.test(e.message),
    );
    expect(aborted, 'the dummy plugin reports that its AbortSignal fired').toBeDefined();
    expect((await api.post(`/v1/tasks/${task.id}/cancel`)).status).toBe(409);
  });

  it('cancels a queued task at once', async () => {
    const p = await protectInstance(api, 'zone-a', { config: { durationMs: 60_000, steps: 10 } });
    const first = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    await waitForTask(api, first.id, ['running']);
    // The instance is busy, so the second backup of it waits in the queue.
    const second = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    expect((await api.expect(200, 'GET', `/v1/tasks/${second.id}`)).state).toBe('queued');
    const cancelled = await api.expect(202, 'POST', `/v1/tasks/${second.id}/cancel`);
    expect(cancelled.state).toBe('cancelled');
    await api.expect(202, 'POST', `/v1/tasks/${first.id}/cancel`);
    await waitForTask(api, first.id, ['cancelled']);
  });

  it('lists a provider’s offerings live through its plugin, and says clearly when it cannot', async () => {
    const provider = await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'catalog',
      plugin: '@cairn/plugin-dummy',
    });
    const listed = await api.expect(200, 'GET', `/v1/zones/zone-a/providers/${provider.id}/offerings`);
    expect(listed.items.map((o: { externalId: string }) => o.externalId)).toEqual(['dummy-gold', 'dummy-silver']);
    expect(await api.expect(200, 'GET', `/v1/tasks/${listed.taskId}`)).toMatchObject({
      kind: 'list-offerings',
      state: 'succeeded',
    });

    const broken = await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'broken',
      plugin: '@cairn/plugin-dummy',
      config: { failCode: 'AUTH_FAILED', failMessage: 'backup manager refused the credentials' },
    });
    const failed = await api.get(`/v1/zones/zone-a/providers/${broken.id}/offerings`);
    expect(failed.status).toBe(502);
    expect(failed.body.code).toBe('provider_failed');
    expect(failed.body.detail).toMatch(/AUTH_FAILED: backup manager refused the credentials/);

    // No agent serves this zone: the caller hears so after the wait it asked for.
    const lonely = await api.expect(201, 'POST', '/v1/zones/zone-empty/providers', {
      name: 'far',
      plugin: '@cairn/plugin-dummy',
    });
    const timedOut = await api.get(`/v1/zones/zone-empty/providers/${lonely.id}/offerings?waitMs=300`);
    expect(timedOut.status).toBe(504);
    expect(timedOut.body.code).toBe('provider_timeout');
    const stuck = /task (tsk_[0-9a-z]+)/.exec(timedOut.body.detail)?.[1];
    expect((await api.expect(200, 'GET', `/v1/tasks/${stuck}`)).state).toBe('queued');
    await api.expect(202, 'POST', `/v1/tasks/${stuck}/cancel`);
  });

  it('exposes Prometheus metrics of tasks, agent reports, sessions and HTTP routes', async () => {
    const res = await fetch(`${cp.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
    expect(value(/^cairn_tasks\{state="succeeded",kind="backup"\} (\d+)/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^cairn_agent_reports_total\{kind="progress"\} (\d+)/m)).toBeGreaterThanOrEqual(3);
    expect(value(/^cairn_agent_sessions (\d+)/m)).toBe(1);
    expect(text).toMatch(/^cairn_http_requests_total\{method="GET",route="\/v1\/tasks\/:id",status="200"\} \d+/m);
    expect(text).not.toMatch(/route="\/v1\/tasks\/tsk_/);
    // Every statement the store ran, by verb, transactions' begin and commit included.
    for (const verb of ['select', 'insert', 'update', 'begin', 'commit'])
      expect(value(new RegExp(`^cairn_store_statements_total\\{verb="${verb}"\\} (\\d+)`, 'm')), verb).toBeGreaterThan(
        0,
      );
    expect(value(/^cairn_store_statement_seconds_total\{verb="select"\} ([\d.e-]+)/m)).toBeGreaterThan(0);
  });

  it('reports usage per tenant that adds up to the backups the API lists', async () => {
    const backups = (await api.expect(200, 'GET', '/v1/backups?limit=500')).items as {
      tenantId: string;
      instanceId: string;
      sizeBytes: number;
      addedBytes: number | null;
    }[];
    expect(backups.length).toBeGreaterThan(0);
    const tenantId = backups[0]!.tenantId;
    const usage = await api.expect(200, 'GET', '/v1/usage');
    const mine = usage.items.find((u: { tenantId: string }) => u.tenantId === tenantId);
    const newest = new Map<string, number>();
    for (const b of backups) if (!newest.has(b.instanceId)) newest.set(b.instanceId, b.sizeBytes); // newest first
    const instances = (await api.expect(200, 'GET', `/v1/instances?limit=500`)).items.filter(
      (i: { tenantId: string }) => i.tenantId === tenantId,
    ) as { offeringId: string | null }[];
    expect(mine).toEqual({
      tenantId,
      protectedInstances: instances.filter((i) => i.offeringId !== null).length,
      unprotectedInstances: instances.filter((i) => i.offeringId === null).length,
      // No offering here has an rpoMinutes: nothing is watched, nothing in breach.
      rpoBreachedInstances: 0,
      backups: backups.length,
      storedBytes: backups.reduce((n, b) => n + (b.addedBytes ?? b.sizeBytes), 0),
      protectedBytes: [...newest.values()].reduce((n, v) => n + v, 0),
    });
  });
});
