import { beforeAll, describe, expect, it } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

interface TaskRow {
  id: string;
  tenantId: string;
  instanceId: string;
  jobId: string | null;
  state: string;
  priority: number;
  dispatchedAt: string | null;
  endedAt: string | null;
}

interface Tenant {
  id: string;
  api: Api;
}

// The two bands of task priority: the service provider's (50-99) runs first, strictly by
// priority; inside the tenants' band (0-49) tenants share the slots whatever priority they use.
describe.each(backends)('priority bands and the running-tasks quota (%s)', (backend) => {
  const stack = withStack(backend);
  let admin: Api;
  let n = 0;

  const tenant = async (name: string, offeringIds: string[]): Promise<Tenant> => {
    const id = (await admin.expect(201, 'POST', '/v1/tenants', { name })).id as string;
    for (const o of offeringIds) await admin.expect(201, 'POST', `/v1/offerings/${o}/grants`, { tenantId: id });
    const token = (await admin.expect(201, 'POST', `/v1/tenants/${id}/tokens`, { role: 'tenant-admin', name }))
      .token as string;
    return { id, api: stack.api(token) };
  };
  /** A zone with a dummy provider and an offering open to tenants. */
  const zone = async (zoneName: string, durationMs: number) => {
    const provider = await admin.expect(201, 'POST', `/v1/zones/${zoneName}/providers`, {
      name: `dummy-${zoneName}`,
      plugin: '@cairn/plugin-dummy',
      tenantLocators: 'any',
      config: { durationMs, steps: 1, sizeBytes: 1 },
    });
    const offering = await admin.expect(201, 'POST', '/v1/offerings', {
      name: `open-${zoneName}`,
      zone: zoneName,
      providerId: provider.id,
      allowAdhoc: true,
      allowUserSchedules: true,
    });
    return offering.id as string;
  };
  const instances = async (t: Tenant, zoneName: string, offeringId: string, count: number) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const row = await t.api.expect(201, 'POST', '/v1/instances', {
        name: `vm-${++n}`,
        zone: zoneName,
        locator: { vm: `vm-${n}` },
      });
      await t.api.expect(200, 'PUT', `/v1/instances/${row.id}/offering`, { offeringId });
      ids.push(row.id as string);
    }
    return ids;
  };
  const job = async (api: Api, body: Record<string, unknown>) =>
    api.expect(201, 'POST', '/v1/backup-jobs', { name: `job-${++n}`, mode: 'FULL', execution: 'PARALLEL', ...body });
  const tasks = async () => (await admin.expect(200, 'GET', '/v1/tasks?kind=backup&limit=500')).items as TaskRow[];
  const agent = async (zoneName: string, slots: number) =>
    (await stack.addAgent({ zone: zoneName, name: `host-${zoneName}`, slots })).proc;

  beforeAll(async () => {
    admin = stack.admin;
  });

  it('tenants flooding at 49 and at 0 share the slots; the provider’s band runs first', async () => {
    const offeringId = await zone('zone-p', 5);
    const high = await tenant('high', [offeringId]);
    const low = await tenant('low', [offeringId]);
    const perTenant = 150;
    const highJob = await job(high.api, {
      instanceIds: await instances(high, 'zone-p', offeringId, perTenant),
      priority: 49,
    });
    const lowJob = await job(low.api, {
      instanceIds: await instances(low, 'zone-p', offeringId, perTenant),
      priority: 0,
    });
    // The provider's job for the low tenant, in its band.
    const spJob = await job(admin, {
      tenantId: low.id,
      instanceIds: await instances(low, 'zone-p', offeringId, 3),
      priority: 90,
    });
    // Everything is queued before the agent comes: the order is the dispatcher's alone.
    await high.api.expect(202, 'POST', `/v1/backup-jobs/${highJob.id}/run`);
    await low.api.expect(202, 'POST', `/v1/backup-jobs/${lowJob.id}/run`);
    await admin.expect(202, 'POST', `/v1/backup-jobs/${spJob.id}/run`);
    const total = 2 * perTenant + 3;
    await waitFor(async () => (await tasks()).length === total, `${total} backups queued`);
    await agent('zone-p', 4);
    const all = await waitFor(
      async () => {
        const rows = await tasks();
        return rows.length === total && rows.every((t) => t.endedAt !== null) ? rows : undefined;
      },
      `all ${total} backups to end`,
      240_000,
    );
    expect(all.filter((t) => t.state !== 'succeeded')).toEqual([]);

    const at = (t: TaskRow) => Date.parse(t.dispatchedAt!);
    const sp = all.filter((t) => t.jobId === spJob.id);
    const band = all.filter((t) => t.jobId !== spJob.id);
    expect(sp.map((t) => t.priority)).toEqual([90, 90, 90]);
    // The provider's band first: its three were dispatched before any of the tenants' band.
    expect(Math.max(...sp.map(at))).toBeLessThanOrEqual(Math.min(...band.map(at)));

    // The first 200 dispatches of the tenants' band, while both tenants still had work queued.
    const first = [...band].sort((a, b) => at(a) - at(b) || (a.id < b.id ? -1 : 1)).slice(0, 200);
    const shares = {
      high: first.filter((t) => t.tenantId === high.id).length,
      low: first.filter((t) => t.tenantId === low.id).length,
    };
    console.log(`[${backend}] shares of the first 200 tenant-band dispatches: ${JSON.stringify(shares)}`);
    // Equal shares are 100 each; within 20 %.
    expect(shares.high).toBeGreaterThanOrEqual(80);
    expect(shares.high).toBeLessThanOrEqual(120);
    expect(shares.low).toBeGreaterThanOrEqual(80);
    expect(shares.low).toBeLessThanOrEqual(120);
  }, 600_000);
  it('a tenant that changes a job the provider gave priority 90 brings it down to 49', async () => {
    const offeringId = await zone('zone-j', 5);
    const t = await tenant('retarget', [offeringId]);
    const [i1, i2, i3] = await instances(t, 'zone-j', offeringId, 3);
    const spJob = await job(admin, { tenantId: t.id, instanceIds: [i1], priority: 90, execution: 'SEQUENTIAL' });
    // The provider's own change keeps its band.
    expect((await admin.expect(200, 'PATCH', `/v1/backup-jobs/${spJob.id}`, { name: 'renamed' })).priority).toBe(90);
    // A tenant's change of any field, without a priority, drops it to the top of the tenant's band.
    const changed = await t.api.expect(200, 'PATCH', `/v1/backup-jobs/${spJob.id}`, { instanceIds: [i1, i2] });
    expect(changed.priority).toBe(49);
    expect((await admin.expect(200, 'GET', `/v1/backup-jobs/${spJob.id}`)).priority).toBe(49);
    // Adding a schedule is a change too.
    const other = await job(admin, { tenantId: t.id, instanceIds: [i3], priority: 70, execution: 'SEQUENTIAL' });
    await t.api.expect(201, 'POST', `/v1/backup-jobs/${other.id}/schedules`, { cron: '0 3 * * *' });
    expect((await admin.expect(200, 'GET', `/v1/backup-jobs/${other.id}`)).priority).toBe(49);
    // A tenant still cannot ask for the provider's band itself.
    await t.api.expect(403, 'PATCH', `/v1/backup-jobs/${spJob.id}`, { priority: 90 });

    // The next run's tasks carry the tenant's band.
    await t.api.expect(202, 'POST', `/v1/backup-jobs/${spJob.id}/run`);
    await agent('zone-j', 2);
    const ran = await waitFor(
      async () => {
        const rows = (await tasks()).filter((x) => x.jobId === spJob.id);
        return rows.length === 2 && rows.every((x) => x.endedAt !== null) ? rows : undefined;
      },
      'the run of the changed job to end',
      60_000,
    );
    expect(ran.map((x) => x.priority)).toEqual([49, 49]);
  }, 120_000);

  it('a tenant with runningTasks 2 never holds more than 2 while another tenant’s task still dispatches', async () => {
    const offeringId = await zone('zone-q', 1500);
    const limited = await tenant('limited', [offeringId]);
    const other = await tenant('other', [offeringId]);
    // A bad value is refused naming the field, and changes nothing.
    for (const bad of [1001, -1, 1.5, 'two']) {
      const r = await admin.call('PUT', `/v1/tenants/${limited.id}/quotas`, { runningTasks: bad });
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.code).toBe('invalid_input');
      expect(r.body.detail).toContain('runningTasks');
    }
    const before = await admin.expect(200, 'GET', `/v1/tenants/${limited.id}/quotas`);
    expect(before.runningTasks).toEqual({ limit: 20, used: 0, default: 20 });
    await admin.expect(200, 'PUT', `/v1/tenants/${limited.id}/quotas`, { runningTasks: 2 });

    const many = await job(limited.api, { instanceIds: await instances(limited, 'zone-q', offeringId, 6) });
    const one = await job(other.api, { instanceIds: await instances(other, 'zone-q', offeringId, 1) });
    await limited.api.expect(202, 'POST', `/v1/backup-jobs/${many.id}/run`);
    await other.api.expect(202, 'POST', `/v1/backup-jobs/${one.id}/run`);
    await waitFor(async () => (await tasks()).filter((x) => x.jobId === many.id).length === 6, '6 backups queued');
    await agent('zone-q', 8);

    let mostHeld = 0;
    let mostUsed = 0;
    const all = await waitFor(
      async () => {
        const rows = (await tasks()).filter((x) => x.jobId === many.id || x.jobId === one.id);
        const held = rows.filter((x) => x.tenantId === limited.id && ['dispatched', 'running'].includes(x.state));
        mostHeld = Math.max(mostHeld, held.length);
        // The tenant sees its own usage beside the limit.
        const q = await limited.api.expect(200, 'GET', `/v1/tenants/${limited.id}/quotas`);
        expect(q.runningTasks.limit).toBe(2);
        mostUsed = Math.max(mostUsed, q.runningTasks.used as number);
        return rows.length === 7 && rows.every((x) => x.endedAt !== null) ? rows : undefined;
      },
      'all 7 backups to end',
      120_000,
    );
    expect(all.filter((x) => x.state !== 'succeeded')).toEqual([]);
    const mine = all.filter((x) => x.tenantId === limited.id);
    // Held from dispatch to end: never more than 2 of the limited tenant's at any moment.
    const overlap = Math.max(
      ...mine.map((x) => {
        const at = Date.parse(x.dispatchedAt!);
        return mine.filter((y) => Date.parse(y.dispatchedAt!) <= at && at < Date.parse(y.endedAt!)).length;
      }),
    );
    console.log(`[${backend}] limited tenant: most held seen ${mostHeld}, most used ${mostUsed}, overlap ${overlap}`);
    expect(overlap).toBeLessThanOrEqual(2);
    expect(mostHeld).toBeLessThanOrEqual(2);
    expect(mostUsed).toBeLessThanOrEqual(2);
    // The other tenant was not held up behind it: its backup went out before the limited one's last.
    const theirs = all.find((x) => x.tenantId === other.id)!;
    expect(Date.parse(theirs.dispatchedAt!)).toBeLessThan(Math.max(...mine.map((x) => Date.parse(x.dispatchedAt!))));
    expect((await admin.expect(200, 'GET', `/v1/tenants/${limited.id}/quotas`)).runningTasks.used).toBe(0);
  }, 180_000);
});
