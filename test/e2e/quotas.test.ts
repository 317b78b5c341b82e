import { beforeAll, describe, expect, it } from 'vitest';
import { Api, type Reply } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { offerDummy } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';

interface QuotaView {
  limit: number;
  used: number;
  default: number;
}
type Quotas = Record<
  'instances' | 'userSchedules' | 'jobs' | 'schedulesPerJob' | 'membersPerJob' | 'runningTasks',
  QuotaView
> &
  Record<
    'restorePointsPerOffering' | 'bytesPerOffering',
    QuotaView & { usage: { offeringId: string; used: number }[] }
  >;

/** A 403 quota_exceeded naming the quota, its limit and the usage. */
function expectQuotaExceeded(r: Reply, quota: string, limit: number, used: number) {
  expect(r.status, JSON.stringify(r.body)).toBe(403);
  expect(r.body).toMatchObject({ code: 'quota_exceeded', quota, limit, used });
  expect(r.body.detail).toContain(quota);
  expect(r.body.detail).toContain(`limit is ${limit}`);
  expect(r.body.detail).toContain(`${used} in use`);
}

describe.each(backends)('tenant quotas (%s)', (backend) => {
  const stack = withStack(backend);
  let admin: Api;
  let a: Api;
  let b: Api;
  let aId: string;
  let bId: string;
  let offeringId: string;
  let n = 0;

  const tenant = async (name: string) => {
    const id = (await admin.expect(201, 'POST', '/v1/tenants', { name })).id as string;
    const token = (await admin.expect(201, 'POST', `/v1/tenants/${id}/tokens`, { role: 'tenant-admin', name: 't' }))
      .token as string;
    return { id, api: stack.api(token) };
  };
  const createInstance = (api: Api, tenantId?: string) =>
    api.call('POST', '/v1/instances', {
      name: `vm-${++n}`,
      zone: 'zone-a',
      locator: { vm: `vm-${n}` },
      ...(tenantId ? { tenantId } : {}),
    });
  /** An instance of the tenant with the offering assigned, made by the SP. */
  const protectedInstance = async (tenantId: string) => {
    const row = await admin.expect(201, 'POST', '/v1/instances', {
      name: `vm-${++n}`,
      zone: 'zone-a',
      locator: { vm: `vm-${n}` },
      tenantId,
    });
    await admin.expect(200, 'PUT', `/v1/instances/${row.id}/offering`, { offeringId });
    return row.id as string;
  };
  const instancesOf = async (api: Api) =>
    ((await api.expect(200, 'GET', '/v1/instances?limit=500')).items as unknown[]).length;
  const quotasOf = (api: Api, tenantId: string) => api.expect<Quotas>(200, 'GET', `/v1/tenants/${tenantId}/quotas`);
  const setQuotas = (tenantId: string, body: Record<string, number | null>) =>
    admin.expect<Quotas>(200, 'PUT', `/v1/tenants/${tenantId}/quotas`, body);
  const cron = (i: number) => ({ cron: `${i} 3 * * *` });
  const job = (api: Api, instanceIds: string[], schedules: { cron: string }[] = []) =>
    api.call('POST', '/v1/backup-jobs', {
      name: `job-${++n}`,
      mode: 'FULL',
      execution: 'SEQUENTIAL',
      instanceIds,
      schedules,
    });

  beforeAll(async () => {
    ({ admin } = stack);
    ({ id: aId, api: a } = await tenant('quota-a'));
    ({ id: bId, api: b } = await tenant('quota-b'));
    await stack.enroll('zone-a', 'host-a');
    ({ offeringId } = await offerDummy(admin, 'zone-a', {
      provider: 'dummy',
      offering: 'open',
      config: {},
      allowUserSchedules: true,
      grants: [aId, bId],
    }));
  });

  it('shows every quota with its default to the SP and to the tenant itself, and hides it from others', async () => {
    const fresh = await quotasOf(a, aId);
    expect(fresh).toEqual({
      instances: { limit: 1000, used: 0, default: 1000 },
      userSchedules: { limit: 1000, used: 0, default: 1000 },
      jobs: { limit: 100, used: 0, default: 100 },
      schedulesPerJob: { limit: 20, used: 0, default: 20 },
      membersPerJob: { limit: 500, used: 0, default: 500 },
      runningTasks: { limit: 20, used: 0, default: 20 },
      // Per offering (restore-point-quotas.test.ts): no instance, so no offering to tell usage of.
      restorePointsPerOffering: { limit: 10_000, used: 0, default: 10_000, usage: [] },
      bytesPerOffering: { limit: 10 * 2 ** 40, used: 0, default: 10 * 2 ** 40, usage: [] },
    });
    expect(await quotasOf(admin, aId)).toEqual(fresh);
    expect((await b.call('GET', `/v1/tenants/${aId}/quotas`)).status).toBe(404);
    const own = await a.call('PUT', `/v1/tenants/${aId}/quotas`, { instances: 5000 });
    expect(own.status).toBe(403);
    expect((await quotasOf(a, aId)).instances.limit).toBe(1000);
  });

  it('refuses the instance over the limit and writes nothing; other tenants are unaffected; raising it lets it through', async () => {
    expect((await setQuotas(aId, { instances: 2 })).instances).toEqual({ limit: 2, used: 0, default: 1000 });
    for (let i = 0; i < 2; i++) expect((await createInstance(a)).status).toBe(201);
    expectQuotaExceeded(await createInstance(a), 'instances', 2, 2);
    // The SP creating one for the tenant counts against the tenant's quota too.
    expectQuotaExceeded(await createInstance(admin, aId), 'instances', 2, 2);
    expect(await instancesOf(a)).toBe(2);
    expect((await quotasOf(a, aId)).instances).toEqual({ limit: 2, used: 2, default: 1000 });

    for (let i = 0; i < 3; i++) expect((await createInstance(b)).status).toBe(201);
    expect(await instancesOf(b)).toBe(3);

    await setQuotas(aId, { instances: 3 });
    expect((await createInstance(a)).status).toBe(201);
    expect(await instancesOf(a)).toBe(3);
    expect((await quotasOf(a, aId)).instances).toEqual({ limit: 3, used: 3, default: 1000 });

    // Lowered below the usage: what exists stays, only new ones are refused.
    await setQuotas(aId, { instances: 1 });
    expect(await instancesOf(a)).toBe(3);
    expectQuotaExceeded(await createInstance(a), 'instances', 1, 3);
    await setQuotas(aId, { instances: null });
    expect((await quotasOf(a, aId)).instances).toEqual({ limit: 1000, used: 3, default: 1000 });
  });

  it('lets exactly one of many concurrent creates take the last free unit', async () => {
    const used = (await quotasOf(a, aId)).instances.used;
    await setQuotas(aId, { instances: used + 1 });
    const bBefore = await instancesOf(b);
    // Tenant B creates at the same time: its creates neither wait for A's turn to fail nor fail.
    const [replies, others] = await Promise.all([
      Promise.all(Array.from({ length: 8 }, () => createInstance(a))),
      Promise.all(Array.from({ length: 8 }, () => createInstance(b))),
    ]);
    expect(replies.map((r) => r.status).sort()).toEqual([201, 403, 403, 403, 403, 403, 403, 403]);
    for (const r of replies.filter((x) => x.status === 403)) expectQuotaExceeded(r, 'instances', used + 1, used + 1);
    expect(await instancesOf(a)).toBe(used + 1);
    expect(others.map((r) => r.status)).toEqual(Array(8).fill(201));
    expect(await instancesOf(b)).toBe(bBefore + 8);
    await setQuotas(aId, { instances: null });
  });

  it('answers 400 naming the field to a bad PUT body, and changes nothing', async () => {
    await setQuotas(bId, { jobs: 7 });
    const before = await quotasOf(admin, bId);
    const bad: [unknown, string][] = [
      [{ bogus: 1 }, 'bogus'],
      [{ jobs: 3, bogus: 1 }, 'bogus'],
      [{ instances: -1 }, 'instances'],
      [{ instances: 1.5 }, 'instances'],
      [{ instances: '5' }, 'instances'],
      [{ jobs: 3, instances: true }, 'instances'],
      [{ membersPerJob: 501 }, 'membersPerJob'],
      [{ schedulesPerJob: 101 }, 'schedulesPerJob'],
      [[1], '(body)'],
    ];
    for (const [body, field] of bad) {
      const r = await admin.call('PUT', `/v1/tenants/${bId}/quotas`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('invalid_input');
      expect(r.body.detail, JSON.stringify(body)).toContain(field);
    }
    expect(await quotasOf(admin, bId)).toEqual(before);
    expect((await admin.call('PUT', '/v1/tenants/ten_00000000000000000000000000/quotas', { jobs: 1 })).status).toBe(
      404,
    );
    await setQuotas(bId, { jobs: null });
  });

  it('caps the schedules of one job, also those added after create (not capped before quotas)', async () => {
    const ins = await protectedInstance(bId);
    const created = await job(
      b,
      [ins],
      Array.from({ length: 20 }, (_, i) => cron(i)),
    );
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const path = `/v1/backup-jobs/${created.body.id}/schedules`;
    expectQuotaExceeded(await b.call('POST', path, cron(20)), 'schedulesPerJob', 20, 20);
    expect((await b.expect(200, 'GET', `/v1/backup-jobs/${created.body.id}`)).schedules).toHaveLength(20);
    expect((await quotasOf(b, bId)).schedulesPerJob).toEqual({ limit: 20, used: 20, default: 20 });

    await setQuotas(bId, { schedulesPerJob: 21 });
    expect((await b.call('POST', path, cron(20))).status).toBe(201);
    expectQuotaExceeded(await b.call('POST', path, cron(21)), 'schedulesPerJob', 21, 21);
    // At create: more schedules than the limit allows.
    await setQuotas(bId, { schedulesPerJob: 2 });
    expectQuotaExceeded(await job(b, [ins], [cron(1), cron(2), cron(3)]), 'schedulesPerJob', 2, 0);
    await setQuotas(bId, { schedulesPerJob: null });
  });

  it('caps jobs, the members of a job (at create and at PATCH) and user schedules', async () => {
    const [i1, i2] = [await protectedInstance(aId), await protectedInstance(aId)];
    await setQuotas(aId, { jobs: 1, membersPerJob: 1, userSchedules: 1 });
    expectQuotaExceeded(await job(a, [i1, i2]), 'membersPerJob', 1, 0);
    const first = await job(a, [i1]);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expectQuotaExceeded(await job(a, [i2]), 'jobs', 1, 1);
    const patch = await a.call('PATCH', `/v1/backup-jobs/${first.body.id}`, { instanceIds: [i1, i2] });
    expectQuotaExceeded(patch, 'membersPerJob', 1, 1);
    // Swapping members adds none.
    expect((await a.call('PATCH', `/v1/backup-jobs/${first.body.id}`, { instanceIds: [i2] })).status).toBe(200);
    expect((await a.expect(200, 'GET', '/v1/backup-jobs')).items).toHaveLength(1);

    const schedule = { cron: '0 4 * * *', timezone: 'UTC', keepLast: 3 };
    expect((await a.call('PUT', `/v1/instances/${i1}/schedule`, schedule)).status).toBe(200);
    expectQuotaExceeded(await a.call('PUT', `/v1/instances/${i2}/schedule`, schedule), 'userSchedules', 1, 1);
    expect((await a.call('GET', `/v1/instances/${i2}/schedule`)).status).toBe(404);
    // Replacing a schedule adds none, even over a lowered limit.
    await setQuotas(aId, { userSchedules: 0 });
    expect((await a.call('PUT', `/v1/instances/${i1}/schedule`, { ...schedule, keepLast: 4 })).status).toBe(200);
    expect(await quotasOf(a, aId)).toMatchObject({
      jobs: { limit: 1, used: 1 },
      membersPerJob: { limit: 1, used: 1 },
      userSchedules: { limit: 0, used: 1 },
    });
  });
});
