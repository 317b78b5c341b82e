import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { ENDED, offerDummy, waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const PER_TENANT = 2;
const ALL_TENANTS = 3;

describe.each(backends)('waiting rooms counted per tenant (%s)', (backend) => {
  const stack = withStack(backend, {
    env: { CAIRN_WAITERS_PER_TENANT: String(PER_TENANT), CAIRN_MAX_WAITERS: String(ALL_TENANTS) },
    agents: [{ name: 'wait-host', slots: 2 }],
  });
  let admin: Api;
  const tenants: Api[] = [];
  let backupId: string;

  const wait = (api: Api, timeoutS: number) => api.call('GET', `/v1/maintenance?wait=ready&timeoutS=${timeoutS}`);
  const tasksOf = async (kind: string) =>
    (await admin.expect(200, 'GET', `/v1/tasks?kind=${kind}&limit=500`)).items as { id: string; state: string }[];
  /**
   * Until `n` requests wait on the control plane. The long waits are sent together and race each
   * other over their connections: a probe sent before they all arrived could take a place first.
   */
  const waiting = (n: number) =>
    waitFor(async () => {
      const text = await (await fetch(`${stack.cp.url}/metrics`)).text();
      return Number(/^cairn_waiting_requests (\d+)$/m.exec(text)?.[1]) === n || undefined;
    }, `${n} requests waiting`);

  beforeAll(async () => {
    admin = stack.admin;
    const ids: string[] = [];
    for (const name of ['a', 'b', 'c']) {
      const t = await stack.tenant(`waiter-${name}`);
      ids.push(t.id);
      tenants.push(t.api);
    }
    const { offeringId } = await offerDummy(admin, 'zone-a', {
      provider: 'hypervisor',
      offering: 'vm-backup',
      config: { durationMs: 50, steps: 1, sizeBytes: 1000, storeDir: stack.tempDir('dummy-store') },
      grants: [ids[0]!],
    });
    const instance = async (vm: number, locator: object = {}) => {
      const row = await admin.expect(201, 'POST', '/v1/instances', {
        name: `vm-${vm}`,
        zone: 'zone-a',
        locator: { vm, ...locator },
        tenantId: ids[0],
      });
      await admin.expect(200, 'PUT', `/v1/instances/${row.id}/offering`, { offeringId });
      return row.id as string;
    };
    const a = tenants[0]!;
    const backup = await a.expect(202, 'POST', `/v1/instances/${await instance(1)}/backups`);
    expect((await waitForTask(a, backup.id, ENDED)).state).toBe('succeeded');
    backupId = (await a.expect(200, 'GET', `/v1/tasks/${backup.id}`)).backupId;
    // A backup running through the window keeps the service from being ready: waits last.
    const long = await a.expect(
      202,
      'POST',
      `/v1/instances/${await instance(2, { dummy: { durationMs: 120_000, steps: 60 } })}/backups`,
    );
    await waitForTask(a, long.id, ['running']);
    await admin.expect(200, 'PUT', '/v1/maintenance', { enabled: true, message: 'waiting-room test' });
  });

  it("a tenant at its cap gets 429 too_many_waiters for readiness and power-state waits, while the provider's and other tenants' waits are answered", async () => {
    const [a, b, c] = tenants as [Api, Api, Api];
    const held = [wait(a, 60), wait(a, 60)];
    await waiting(2);
    const refused = await wait(a, 1);
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(refused.body).toMatchObject({ status: 429, code: 'too_many_waiters', quota: 'waitersPerTenant' });
    expect(refused.body.detail).toContain(`${PER_TENANT} requests waiting`);

    // The in-place restore's power-state wait counts in the same room: refused, nothing queued.
    const restore = await a.call('POST', `/v1/backups/${backupId}/restore`);
    expect([restore.status, restore.body.code, restore.body.quota]).toEqual([
      429,
      'too_many_waiters',
      'waitersPerTenant',
    ]);
    expect(restore.headers.get('retry-after')).toBe('5');
    expect(await tasksOf('power-state')).toEqual([]);
    expect(await tasksOf('restore')).toEqual([]);

    // The provider's own wait and another tenant's are answered (not ready: the backup runs).
    for (const api of [admin, b]) {
      const r = await wait(api, 1);
      expect([r.status, r.body.ready]).toEqual([200, false]);
    }

    // All tenants together reach their ceiling: a third tenant is refused, the provider is not.
    held.push(wait(b, 60));
    await waiting(3);
    const ceiling = await wait(c, 1);
    expect(ceiling.status).toBe(429);
    expect(ceiling.body).toMatchObject({ code: 'too_many_waiters', quota: 'waiters' });
    expect(ceiling.body.detail).toContain(`${ALL_TENANTS} requests waiting`);
    const sp = await wait(admin, 1);
    expect([sp.status, sp.body.ready]).toEqual([200, false]);

    // The window ends: every wait is answered and gives its place back.
    await admin.expect(200, 'PUT', '/v1/maintenance', { enabled: false });
    for (const r of await Promise.all(held)) expect([r.status, r.body.enabled]).toEqual([200, false]);
    const started = await a.expect(202, 'POST', `/v1/backups/${backupId}/restore`);
    expect((await waitForTask(a, started.id, ENDED)).state).toBe('succeeded');
    expect(await tasksOf('power-state')).toMatchObject([{ state: 'succeeded' }]);
  });
});
