import { beforeAll, describe, expect, it } from 'vitest';
import { Api, type Reply } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { assignOffering, waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';
import { backupTasks, eventsOf, eventsWhere } from '@cairn/test-harness/clock';

interface PerOffering {
  limit: number;
  used: number;
  default: number;
  usage: { offeringId: string; used: number }[];
}

/** Each backup of the dummy provider here stores this many bytes. */
const SIZE = 1000;

/** A 403 quota_exceeded naming the per-offering quota, its limit, the usage and the offering. */
function expectQuotaExceeded(r: Reply, quota: string, limit: number, used: number, offeringId: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(403);
  expect(r.body).toMatchObject({ code: 'quota_exceeded', quota, limit, used, offeringId });
  expect(r.body.detail).toContain(quota);
  expect(r.body.detail).toContain(`limit is ${limit}`);
  expect(r.body.detail).toContain(`${used} in use`);
  expect(r.body.detail).toContain(offeringId);
}

describe.each(backends)('per-offering restore point and byte quotas (%s)', (backend) => {
  const stack = withStack(backend, { clockAt: '2026-05-04T12:00:00Z', agents: [{ name: 'rpq-host', slots: 4 }] });
  let admin: Api;
  let gold: string;
  let silver: string;
  let sla: string;
  let n = 0;

  const tenant = async () => {
    const id = (await admin.expect(201, 'POST', '/v1/tenants', { name: `rpq-${++n}` })).id as string;
    const token = (await admin.expect(201, 'POST', `/v1/tenants/${id}/tokens`, { role: 'tenant-admin', name: 't' }))
      .token as string;
    for (const o of [gold, silver, sla]) await admin.expect(201, 'POST', `/v1/offerings/${o}/grants`, { tenantId: id });
    return { id, api: stack.api(token) };
  };
  const instance = async (tenantId: string, offeringId: string) => {
    const row = await admin.expect(201, 'POST', '/v1/instances', {
      name: `vm-${++n}`,
      zone: 'zone-a',
      locator: { vm: `vm-${n}` },
      tenantId,
    });
    await assignOffering(admin, row.id, offeringId);
    return row.id as string;
  };
  const backup = (api: Api, instanceId: string) =>
    api.call('POST', `/v1/instances/${instanceId}/backups`, { mode: 'FULL' });
  /** A backup that must be admitted, awaited until its restore point is recorded. */
  const backedUp = async (api: Api, instanceId: string) => {
    const r = await backup(api, instanceId);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return waitForTask(api, r.body.id, ['succeeded']);
  };
  const quotasOf = async (tenantId: string) =>
    admin.expect<Record<'restorePointsPerOffering' | 'bytesPerOffering', PerOffering> & Record<string, unknown>>(
      200,
      'GET',
      `/v1/tenants/${tenantId}/quotas`,
    );
  const setQuotas = (tenantId: string, body: Record<string, number | null>) =>
    admin.expect(200, 'PUT', `/v1/tenants/${tenantId}/quotas`, body);
  const pointsOf = async (api: Api, instanceId: string) =>
    (await api.expect(200, 'GET', `/v1/backups?instanceId=${instanceId}&limit=500`)).items as { id: string }[];
  const settled = (instanceId: string) =>
    waitFor(
      async () => (await backupTasks(admin, instanceId)).every((t) => t.state === 'succeeded'),
      `backups of ${instanceId} to succeed`,
    );
  const step = (iso: string) => stack.step(iso);

  beforeAll(async () => {
    admin = stack.admin;
    const provider = (
      await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
        name: 'fast',
        plugin: '@cairn/plugin-dummy',
        tenantLocators: 'any',
        config: { durationMs: 0, steps: 1, sizeBytes: SIZE },
      })
    ).id as string;
    const offering = async (name: string, extra: Record<string, unknown> = {}) =>
      (
        await admin.expect(201, 'POST', '/v1/offerings', {
          name,
          zone: 'zone-a',
          providerId: provider,
          allowAdhoc: true,
          allowUserSchedules: true,
          ...extra,
        })
      ).id as string;
    gold = await offering('gold');
    silver = await offering('silver');
    sla = await offering('sla', { allowAdhoc: false, sla: { cron: '0 3 * * *', timezone: 'UTC', keepLast: 10 } });
  });

  it('refuses a manual backup at the restore-point limit with no task; other offerings and tenants go on; a delete frees room', async () => {
    const a = await tenant();
    const b = await tenant();
    const aGold = await instance(a.id, gold);
    const aSilver = await instance(a.id, silver);
    const bGold = await instance(b.id, gold);
    const fresh = await quotasOf(a.id);
    expect(fresh.restorePointsPerOffering).toEqual({
      limit: 10_000,
      used: 0,
      default: 10_000,
      usage: [
        { offeringId: gold, used: 0 },
        { offeringId: silver, used: 0 },
      ].sort((x, y) => (x.offeringId < y.offeringId ? -1 : 1)),
    });
    expect(fresh.bytesPerOffering).toMatchObject({ limit: 10 * 2 ** 40, used: 0, default: 10 * 2 ** 40 });
    // The quotas that were there before keep their shape.
    expect(fresh.instances).toEqual({ limit: 1000, used: 2, default: 1000 });

    await setQuotas(a.id, { restorePointsPerOffering: 2 });
    await backedUp(a.api, aGold);
    await backedUp(a.api, aGold);
    const tasksBefore = (await backupTasks(admin, aGold)).length;
    expectQuotaExceeded(await backup(a.api, aGold), 'restorePointsPerOffering', 2, 2, gold);
    expect(await backupTasks(admin, aGold)).toHaveLength(tasksBefore);
    expect(await pointsOf(a.api, aGold)).toHaveLength(2);

    // The same tenant's other offering, and another tenant in the same offering, are unaffected.
    await backedUp(a.api, aSilver);
    for (let i = 0; i < 3; i++) await backedUp(b.api, bGold);

    const usage = await quotasOf(a.id);
    expect(usage.restorePointsPerOffering.used).toBe(2);
    expect(usage.restorePointsPerOffering.usage).toEqual(
      expect.arrayContaining([
        { offeringId: gold, used: 2 },
        { offeringId: silver, used: 1 },
      ]),
    );
    expect(usage.bytesPerOffering.usage).toEqual(
      expect.arrayContaining([
        { offeringId: gold, used: 2 * SIZE },
        { offeringId: silver, used: SIZE },
      ]),
    );
    expect((await quotasOf(b.id)).restorePointsPerOffering.usage).toEqual([{ offeringId: gold, used: 3 }]);

    // Deleting one of the two makes room for one more, not two.
    const [oldest] = await pointsOf(a.api, aGold);
    const del = await a.api.expect(202, 'DELETE', `/v1/backups/${oldest!.id}`);
    await waitForTask(a.api, del.id, ['succeeded']);
    await backedUp(a.api, aGold);
    expectQuotaExceeded(await backup(a.api, aGold), 'restorePointsPerOffering', 2, 2, gold);
  });

  it('skips a user-schedule fire at the limit with an event naming the quota; keep-last frees room; an SLA fire is never refused but counts', async () => {
    const c = await tenant();
    const ins = await instance(c.id, gold);
    const slaIns = await instance(c.id, sla);
    await setQuotas(c.id, { restorePointsPerOffering: 1 });
    await c.api.expect(200, 'PUT', `/v1/instances/${ins}/schedule`, {
      cron: '0 1 * * *',
      timezone: 'UTC',
      keepLast: 1,
    });

    await step('2026-05-05T01:00:00Z');
    await settled(ins);
    expect(await backupTasks(admin, ins)).toHaveLength(1);
    expect(await eventsOf(admin, 'schedule.skipped', ins)).toHaveLength(0);

    // At the limit: the fire makes no task, and says which quota stopped it.
    await step('2026-05-06T01:00:00Z');
    // (That step also ran the SLA's fire of 05-05: let it end, or the next would be skipped as stacked.)
    await settled(slaIns);
    expect(await backupTasks(admin, ins)).toHaveLength(1);
    const skipped = await eventsOf(admin, 'schedule.skipped', ins);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({
      tenantId: c.id,
      data: { fireAt: '2026-05-06T01:00:00.000Z', quota: 'restorePointsPerOffering' },
    });
    expect(skipped[0].message).toContain('restorePointsPerOffering');
    // The tenant sees it too.
    expect(await eventsOf(c.api, 'schedule.skipped', ins)).toHaveLength(1);

    // One more than keep-last: each fire's backup is admitted, and keep-last deletes the older point.
    await setQuotas(c.id, { restorePointsPerOffering: 2 });
    for (const day of ['07', '08', '09']) {
      await step(`2026-05-${day}T01:00:00Z`);
      await settled(ins);
      await settled(slaIns);
      await waitFor(async () => (await pointsOf(c.api, ins)).length === 1, 'keep-last to delete the older point');
    }
    expect(await backupTasks(admin, ins)).toHaveLength(4);
    expect(await eventsOf(admin, 'schedule.skipped', ins)).toHaveLength(1);

    // The SLA is the provider's promise: at a limit of 0 its fire still backs up, and counts.
    await setQuotas(c.id, { restorePointsPerOffering: 0 });
    const slaBefore = (await backupTasks(admin, slaIns)).length;
    await step('2026-05-10T03:00:00Z');
    await settled(slaIns);
    expect(await backupTasks(admin, slaIns)).toHaveLength(slaBefore + 1);
    expect(await eventsOf(admin, 'schedule.skipped', slaIns)).toHaveLength(0);
    const slaUsed = (await quotasOf(c.id)).restorePointsPerOffering.usage.find((u) => u.offeringId === sla)?.used;
    expect(slaUsed).toBe(slaBefore + 1);
    // ... while the tenant's own backup there is refused.
    await admin.expect(200, 'PATCH', `/v1/offerings/${sla}`, { allowAdhoc: true });
    expectQuotaExceeded(await backup(c.api, slaIns), 'restorePointsPerOffering', 0, slaBefore + 1, sla);
    await admin.expect(200, 'PATCH', `/v1/offerings/${sla}`, { allowAdhoc: false });
  });

  it('skips a job member at the limit with a job event naming the quota, and backs up the others of the run', async () => {
    const d = await tenant();
    const full = await instance(d.id, gold);
    const free = await instance(d.id, silver);
    await setQuotas(d.id, { restorePointsPerOffering: 1 });
    await backedUp(d.api, full);
    const job = await d.api.expect(201, 'POST', '/v1/backup-jobs', {
      name: 'nightly',
      mode: 'FULL',
      execution: 'SEQUENTIAL',
      instanceIds: [full, free],
    });
    await d.api.expect(202, 'POST', `/v1/backup-jobs/${job.id}/run`);
    const run = await waitFor(async () => {
      const [r] = (await d.api.expect(200, 'GET', `/v1/backup-jobs/${job.id}/runs`)).items;
      return r?.endedAt ? r : undefined;
    }, 'the run to finish');
    expect(run.members).toEqual([
      expect.objectContaining({
        instanceId: full,
        set: 'ERROR',
        error: { code: 'QUOTA_EXCEEDED', message: expect.stringContaining('restorePointsPerOffering') },
      }),
      expect.objectContaining({ instanceId: free, set: 'UPDATED' }),
    ]);
    expect(await backupTasks(admin, full)).toHaveLength(1);
    const events = await eventsWhere(d.api, (e) => e.jobId === job.id && e.type === 'job.quota_exceeded');
    expect(events).toHaveLength(1);
    expect(events[0].data).toMatchObject({
      runId: run.id,
      instanceIds: [full],
      code: 'QUOTA_EXCEEDED',
      quota: 'restorePointsPerOffering',
    });
  });

  it('refuses the next backup once the stored bytes reached the limit', async () => {
    const e = await tenant();
    const ins = await instance(e.id, gold);
    await setQuotas(e.id, { bytesPerOffering: SIZE + SIZE / 2 });
    // Below the limit a backup starts, even one that ends above it: its size is known only then.
    await backedUp(e.api, ins);
    await backedUp(e.api, ins);
    expectQuotaExceeded(await backup(e.api, ins), 'bytesPerOffering', SIZE + SIZE / 2, 2 * SIZE, gold);
    expect(await backupTasks(admin, ins)).toHaveLength(2);
    expect((await quotasOf(e.id)).bytesPerOffering).toMatchObject({
      limit: SIZE + SIZE / 2,
      used: 2 * SIZE,
      usage: [{ offeringId: gold, used: 2 * SIZE }],
    });
  });

  it('admits exactly one of ten concurrent backups at one below the limit', async () => {
    const f = await tenant();
    const ins = await instance(f.id, gold);
    const other = await instance(f.id, gold);
    await backedUp(f.api, ins);
    await backedUp(f.api, ins);
    await setQuotas(f.id, { restorePointsPerOffering: 3 });
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => backup(f.api, i % 2 === 0 ? ins : other)));
    expect(replies.map((r) => r.status).sort()).toEqual([202, ...Array(9).fill(403)]);
    for (const r of replies.filter((x) => x.status === 403))
      expectQuotaExceeded(r, 'restorePointsPerOffering', 3, 3, gold);
    expect((await backupTasks(admin, ins)).length + (await backupTasks(admin, other)).length).toBe(3);
  });

  it("several of a tenant's schedules due at one fire time: the quota admits as many backups as it has room for, each other fire is skipped naming it", async () => {
    const h = await tenant();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await instance(h.id, gold));
    await setQuotas(h.id, { restorePointsPerOffering: 2 });
    for (const id of ids)
      await h.api.expect(200, 'PUT', `/v1/instances/${id}/schedule`, {
        cron: '0 2 * * *',
        timezone: 'UTC',
        keepLast: 1,
      });

    // The five fires are due together: claimed and judged in one batch, each backup counting toward the next.
    await step('2026-05-11T02:00:00Z');
    const made = (await Promise.all(ids.map((id) => backupTasks(admin, id)))).flat();
    expect(made).toHaveLength(2);
    const skipped = (await Promise.all(ids.map((id) => eventsOf(admin, 'schedule.skipped', id)))).flat();
    expect(skipped).toHaveLength(3);
    for (const e of skipped)
      expect(e).toMatchObject({
        tenantId: h.id,
        data: { fireAt: '2026-05-11T02:00:00.000Z', quota: 'restorePointsPerOffering' },
      });
    // Every instance had its fire: a backup or a skip, never both.
    const perInstance = await Promise.all(
      ids.map(
        async (id) => (await backupTasks(admin, id)).length + (await eventsOf(admin, 'schedule.skipped', id)).length,
      ),
    );
    expect(perInstance).toEqual([1, 1, 1, 1, 1]);
  });

  it('answers 400 naming the field to a bad value of a per-offering quota, and changes nothing', async () => {
    const g = await tenant();
    await setQuotas(g.id, { restorePointsPerOffering: 7, bytesPerOffering: 5000 });
    const before = await quotasOf(g.id);
    const bad: [unknown, string][] = [
      [{ restorePointsPerOffering: -1 }, 'restorePointsPerOffering'],
      [{ restorePointsPerOffering: 2.5 }, 'restorePointsPerOffering'],
      [{ restorePointsPerOffering: '5' }, 'restorePointsPerOffering'],
      [{ restorePointsPerOffering: 100_001 }, 'restorePointsPerOffering'],
      [{ bytesPerOffering: 2 ** 50 + 1 }, 'bytesPerOffering'],
      [{ bytesPerOffering: -5 }, 'bytesPerOffering'],
      [{ restorePointsPerOffering: 3, bytesPerOffering: true }, 'bytesPerOffering'],
      [{ restorePointsPerOffering: 3, perOffering: 1 }, 'perOffering'],
    ];
    for (const [body, field] of bad) {
      const r = await admin.call('PUT', `/v1/tenants/${g.id}/quotas`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('invalid_input');
      expect(r.body.detail, JSON.stringify(body)).toContain(field);
    }
    expect(await quotasOf(g.id)).toEqual(before);
    expect((await g.api.call('PUT', `/v1/tenants/${g.id}/quotas`, { restorePointsPerOffering: 9 })).status).toBe(403);
    expect((await setQuotas(g.id, { bytesPerOffering: 2 ** 50 })).bytesPerOffering.limit).toBe(2 ** 50);
    expect((await quotasOf(g.id)).restorePointsPerOffering.limit).toBe(7);
  });
});
