import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { offerDummy, waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];

describe.each(backends)('in-place restore of an instance that must be stopped (%s)', (backend) => {
  const stack = withStack(backend, { env: { CAIRN_POWER_STATE_WAIT_MS: '1500' }, agents: [{ name: 'power-host' }] });
  let admin: Api;
  let tenant: Api;
  let other: Api;
  let storeDir: string;
  let instanceId: string;
  let backupId: string;

  /** Powers the instance on or off behind Cairn's back, as an operator would. */
  const power = (state: 'running' | 'stopped') => {
    fs.mkdirSync(path.join(storeDir, 'power'), { recursive: true });
    fs.writeFileSync(path.join(storeDir, 'power', instanceId), state);
  };
  const tasksOf = async (kind: string) =>
    (await admin.expect(200, 'GET', `/v1/tasks?kind=${kind}&limit=500`)).items as {
      id: string;
      state: string;
      tenantId: string;
      error: { code: string } | null;
    }[];

  beforeAll(async () => {
    storeDir = stack.tempDir('dummy-store');
    admin = stack.admin;
    const token = async (tenantId: string) =>
      (await admin.expect(201, 'POST', `/v1/tenants/${tenantId}/tokens`, { role: 'tenant-admin', name: 't' })).token;
    const tenantId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'vm-owner' })).id;
    tenant = stack.api(await token(tenantId));
    other = stack.api(await token((await admin.expect(201, 'POST', '/v1/tenants', { name: 'prober' })).id));
    const { offeringId } = await offerDummy(admin, 'zone-a', {
      provider: 'hypervisor',
      offering: 'vm-backup',
      config: { durationMs: 1500, steps: 3, sizeBytes: 1000, storeDir },
      grants: [tenantId],
    });
    instanceId = (
      await admin.expect(201, 'POST', '/v1/instances', { name: 'vm-7', zone: 'zone-a', locator: { vm: 7 }, tenantId })
    ).id;
    await tenant.expect(200, 'PUT', `/v1/instances/${instanceId}/offering`, { offeringId });
    const backup = await tenant.expect(202, 'POST', `/v1/instances/${instanceId}/backups`);
    expect((await waitForTask(tenant, backup.id, ENDED)).state).toBe('succeeded');
    backupId = (await tenant.expect(200, 'GET', `/v1/tasks/${backup.id}`)).backupId;
  });

  it('refuses a running instance with 409 instance_running and makes no restore task', async () => {
    power('running');
    const refused = await tenant.post(`/v1/backups/${backupId}/restore`);
    expect(refused.status).toBe(409);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ status: 409, code: 'instance_running' });
    expect(refused.body.detail).toContain(`vm-7 (${instanceId}) is running`);
    expect(await tasksOf('restore')).toEqual([]);
    // The question went to the plugin as the tenant's own task.
    expect(await tasksOf('power-state')).toMatchObject([{ state: 'succeeded' }]);
  });

  it('restores a running instance to another path (targetPath) without asking its power state', async () => {
    power('running');
    for (const [body, field] of [
      [{ targetPath: 'relative/dir' }, 'targetPath'],
      [{ targetPath: '' }, 'targetPath'],
      [{ targetPath: '/srv/x', inPlace: false }, 'inPlace'],
    ] as const) {
      const bad = await tenant.post(`/v1/backups/${backupId}/restore`, body);
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toContain(field);
    }
    const started = await tenant.expect(202, 'POST', `/v1/backups/${backupId}/restore`, { targetPath: '/srv/copy' });
    expect((await waitForTask(tenant, started.id, ENDED)).state).toBe('succeeded');
    expect(await tasksOf('restore')).toHaveLength(1);
    expect(await tasksOf('power-state')).toHaveLength(1);
  });

  it('does not let another tenant probe the backup (404), nor ask the plugin for it', async () => {
    const probe = await other.post(`/v1/backups/${backupId}/restore`);
    expect(probe.status).toBe(404);
    expect(probe.body).toMatchObject({ code: 'not_found' });
    expect(await tasksOf('power-state')).toHaveLength(1);
  });

  it('restores once the instance is stopped', async () => {
    power('stopped');
    const started = await tenant.expect(202, 'POST', `/v1/backups/${backupId}/restore`);
    expect(started).toMatchObject({ kind: 'restore', backupId, instanceId });
    expect((await waitForTask(tenant, started.id, ENDED)).state).toBe('succeeded');
  });

  it('replays an accepted restore for its Idempotency-Key without asking again, even once the instance runs', async () => {
    const key = { 'idempotency-key': 'restore-once' };
    const first = await tenant.call('POST', `/v1/backups/${backupId}/restore`, undefined, key);
    expect(first.status).toBe(202);
    expect((await waitForTask(tenant, first.body.id, ENDED)).state).toBe('succeeded');
    const asked = (await tasksOf('power-state')).length;
    power('running');
    const again = await tenant.call('POST', `/v1/backups/${backupId}/restore`, undefined, key);
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.id).toBe(first.body.id);
    expect(await tasksOf('power-state')).toHaveLength(asked);
    power('stopped');
  });

  it('a restore checked while stopped fails INSTANCE_RUNNING when the instance was started before it ran', async () => {
    // A backup holds the instance: the power check is answered meanwhile, the restore waits.
    const backup = await tenant.expect(202, 'POST', `/v1/instances/${instanceId}/backups`);
    await waitForTask(tenant, backup.id, ['running']);
    const restore = await tenant.expect(202, 'POST', `/v1/backups/${backupId}/restore`);
    expect((await tenant.expect(200, 'GET', `/v1/tasks/${restore.id}`)).state).toBe('queued');
    power('running');
    expect((await waitForTask(tenant, backup.id, ENDED)).state).toBe('succeeded');
    const ended = await waitForTask(tenant, restore.id, ENDED);
    expect(ended).toMatchObject({ state: 'failed', error: { code: 'INSTANCE_RUNNING' } });
  });

  it('answers 504 provider_timeout with the task id when no agent of the zone answers', async () => {
    power('stopped');
    await stack.agent.proc.stop();
    const restoresBefore = (await tasksOf('restore')).length;
    const timedOut = await tenant.post(`/v1/backups/${backupId}/restore`);
    expect(timedOut.status).toBe(504);
    expect(timedOut.body).toMatchObject({ code: 'provider_timeout' });
    const taskId = /task (tsk_\w+)/.exec(timedOut.body.detail as string)?.[1];
    expect(taskId).toBeDefined();
    expect(await tenant.expect(200, 'GET', `/v1/tasks/${taskId}`)).toMatchObject({
      kind: 'power-state',
      state: 'cancelled',
    });
    expect(await tasksOf('restore')).toHaveLength(restoresBefore);
  });
});

describe.each(backends)('an in-place restore whose power-state check loses its agent (%s)', (backend) => {
  const stack = withStack(backend, { agents: [{ name: 'power-host' }] });

  it('asks again when the agent is killed under the question, and restores', async () => {
    const { admin } = stack;
    const storeDir = stack.tempDir('dummy-store');
    const tenantId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'vm-owner' })).id;
    const tenant = stack.api(
      (await admin.expect(201, 'POST', `/v1/tenants/${tenantId}/tokens`, { role: 'tenant-admin', name: 't' })).token,
    );
    const { offeringId } = await offerDummy(admin, 'zone-a', {
      provider: 'hypervisor',
      offering: 'vm-backup',
      config: { durationMs: 0, steps: 1, sizeBytes: 1000, storeDir },
      grants: [tenantId],
    });
    const instanceId = (
      await admin.expect(201, 'POST', '/v1/instances', { name: 'vm-8', zone: 'zone-a', locator: { vm: 8 }, tenantId })
    ).id;
    await tenant.expect(200, 'PUT', `/v1/instances/${instanceId}/offering`, { offeringId });
    const backup = await tenant.expect(202, 'POST', `/v1/instances/${instanceId}/backups`);
    expect((await waitForTask(tenant, backup.id, ENDED)).state).toBe('succeeded');
    const backupId = (await tenant.expect(200, 'GET', `/v1/tasks/${backup.id}`)).backupId;

    // The plugin's read of the power state blocks on a pipe nobody writes: the question is running.
    fs.mkdirSync(path.join(storeDir, 'power'));
    const powerFile = path.join(storeDir, 'power', instanceId);
    execFileSync('mkfifo', [powerFile]);
    const restore = tenant.post(`/v1/backups/${backupId}/restore`);
    const asked = await waitFor(async () => {
      const items = (await admin.expect(200, 'GET', '/v1/tasks?kind=power-state&limit=50')).items as {
        id: string;
        state: string;
      }[];
      return items.find((t) => t.state === 'running');
    }, 'the power-state task running');

    // The agent dies under it; the instance is stopped by the time it is back.
    const { stateDir } = stack.agent;
    stack.agent.proc.child.kill('SIGKILL');
    fs.rmSync(powerFile);
    fs.writeFileSync(powerFile, 'stopped');
    await stack.runAgent(stateDir);

    const answer = await restore;
    expect(answer.status, JSON.stringify(answer.body)).toBe(202);
    expect((await waitForTask(tenant, answer.body.id, ENDED)).state).toBe('succeeded');
    const asks = (await admin.expect(200, 'GET', '/v1/tasks?kind=power-state&limit=50')).items as {
      id: string;
      state: string;
      error: { code: string } | null;
    }[];
    // The first ask ended interrupted with its agent; a second one answered.
    expect(asks.find((t) => t.id === asked.id)).toMatchObject({
      state: 'failed',
      error: { code: 'AGENT_INTERRUPTED' },
    });
    expect(asks.filter((t) => t.state === 'succeeded')).toHaveLength(1);
    expect(asks).toHaveLength(2);
  }, 120_000);
});
