import { beforeAll, describe, expect, it } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import type { ControlPlaneProc } from '@cairn/test-harness/processes';
import { withStack } from '@cairn/test-harness/stack';

describe.each(backends)('schedule floors and the once-a-year bound on %s', (backend) => {
  const stack = withStack(backend, { clockAt: '2026-06-01T00:00:00Z' });
  let cp: ControlPlaneProc;
  let admin: Api;
  let tenant: Api;
  let tenantId: string;
  let providerId: string;

  const offering = async (name: string, extra: Record<string, unknown> = {}) => {
    const row = await admin.expect(201, 'POST', '/v1/offerings', {
      name,
      zone: 'zone-a',
      providerId,
      allowAdhoc: true,
      allowUserSchedules: true,
      ...extra,
    });
    await admin.expect(201, 'POST', `/v1/offerings/${row.id}/grants`, { tenantId });
    return row;
  };
  const instance = async (name: string, offeringId: string) => {
    const row = await admin.expect(201, 'POST', '/v1/instances', {
      name,
      zone: 'zone-a',
      locator: { vm: name },
      tenantId,
    });
    await admin.expect(200, 'PUT', `/v1/instances/${row.id}/offering`, { offeringId });
    return row.id as string;
  };

  beforeAll(async () => {
    ({ cp, admin } = stack);
    tenantId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'floor-tenant' })).id;
    tenant = new Api(
      cp.url,
      (await admin.expect(201, 'POST', `/v1/tenants/${tenantId}/tokens`, { role: 'tenant-user', name: 'u' })).token,
    );
    providerId = (
      await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
        name: 'dummy',
        plugin: '@cairn/plugin-dummy',
        tenantLocators: 'any',
        config: {},
      })
    ).id;
  });

  it('a user schedule every minute is refused under the default floor; the SP lowers it and the same PUT succeeds', async () => {
    const off = await offering('default-floor');
    expect(off.minUserScheduleIntervalS).toBe(900);
    const id = await instance('vm-user', off.id);
    const schedule = `/v1/instances/${id}/schedule`;
    await tenant.expect(200, 'PUT', schedule, { cron: '0 * * * *', timezone: 'UTC', keepLast: 3 });

    const everyMinute = { cron: '* * * * *', timezone: 'UTC', keepLast: 3 };
    const refused = await tenant.call('PUT', schedule, everyMinute);
    expect([refused.status, refused.body.code]).toEqual([400, 'schedule_too_frequent']);
    expect(refused.body.detail).toBe('cron: fires 60 s apart at the closest; the floor here is one fire every 900 s');
    expect(refused.body.errors).toEqual([{ path: 'cron', message: expect.stringContaining('900 s') }]);
    // Nothing written: the hourly schedule stands.
    expect(await tenant.expect(200, 'GET', schedule)).toMatchObject({ cron: '0 * * * *' });

    // Only the SP sets the floor, within 60 s .. 1 day.
    expect((await tenant.call('PATCH', `/v1/offerings/${off.id}`, { minUserScheduleIntervalS: 60 })).status).toBe(403);
    for (const bad of [59, 86_401, 90.5]) {
      const r = await admin.call('PATCH', `/v1/offerings/${off.id}`, { minUserScheduleIntervalS: bad });
      expect([r.status, r.body.errors?.[0]?.path], String(bad)).toEqual([400, 'minUserScheduleIntervalS']);
    }
    expect(await admin.expect(200, 'PATCH', `/v1/offerings/${off.id}`, { minUserScheduleIntervalS: 60 })).toMatchObject(
      {
        minUserScheduleIntervalS: 60,
      },
    );
    expect(await tenant.expect(200, 'PUT', schedule, everyMinute)).toMatchObject({
      cron: '* * * * *',
      nextRunAt: '2026-06-01T00:01:00.000Z',
    });

    // A floor raised later binds new and changed schedules only: the stored one keeps its fires.
    await admin.expect(200, 'PATCH', `/v1/offerings/${off.id}`, { minUserScheduleIntervalS: 900 });
    expect(await tenant.expect(200, 'GET', schedule)).toMatchObject({
      cron: '* * * * *',
      nextRunAt: '2026-06-01T00:01:00.000Z',
    });
    expect((await tenant.call('PUT', schedule, { ...everyMinute, keepLast: 4 })).body.code).toBe(
      'schedule_too_frequent',
    );
  });

  it('a job schedule takes the strictest floor of its instances, for the SP admin too; one that fires less than yearly is refused', async () => {
    const loose = await offering('loose', { minUserScheduleIntervalS: 60 });
    const strict = await offering('strict', { minUserScheduleIntervalS: 3600 });
    const ids = [await instance('vm-loose', loose.id), await instance('vm-strict', strict.id)];
    const body = { name: 'nightly', instanceIds: ids, mode: 'FULL', execution: 'SEQUENTIAL' };

    const rare = await tenant.call('POST', '/v1/backup-jobs', { ...body, schedules: [{ cron: '0 0 0 ? 2 4#5' }] });
    expect([rare.status, rare.body.code]).toEqual([400, 'invalid_input']);
    expect(rare.body.errors).toEqual([
      { path: 'schedules.0.cron', message: expect.stringMatching(/at least once (a year|in any 366 days)/) },
    ]);
    const often = await tenant.call('POST', '/v1/backup-jobs', { ...body, schedules: [{ cron: '*/30 * * * *' }] });
    expect([often.status, often.body.code]).toEqual([400, 'schedule_too_frequent']);
    expect(often.body.errors[0]).toMatchObject({
      path: 'schedules.0.cron',
      message: expect.stringContaining('3600 s'),
    });
    expect((await tenant.expect(200, 'GET', '/v1/backup-jobs')).items).toEqual([]);

    const job = await tenant.expect(201, 'POST', '/v1/backup-jobs', { ...body, schedules: [{ cron: '0 * * * *' }] });
    const schedules = `/v1/backup-jobs/${job.id}/schedules`;
    for (const who of [tenant, admin]) {
      const r = await who.call('POST', schedules, { cron: '*/30 * * * *' });
      expect([r.status, r.body.code]).toEqual([400, 'schedule_too_frequent']);
    }
    const leap = await admin.call('POST', schedules, { cron: '0 0 29 2 *' });
    expect([leap.status, leap.body.errors?.[0]?.path]).toEqual([400, 'cron']);
    const patched = await tenant.call('PATCH', `${schedules}/${job.schedules[0].id}`, { cron: '* * * * *' });
    expect([patched.status, patched.body.code]).toEqual([400, 'schedule_too_frequent']);
    expect((await tenant.expect(200, 'GET', `/v1/backup-jobs/${job.id}`)).schedules).toEqual([
      expect.objectContaining({ cron: '0 * * * *' }),
    ]);

    // Re-targeting a job at instances with a stricter floor is refused while a schedule breaks it.
    const quick = await tenant.expect(201, 'POST', '/v1/backup-jobs', {
      ...body,
      name: 'quick',
      instanceIds: [ids[0]],
      schedules: [{ cron: '*/5 * * * *' }],
    });
    const moved = await tenant.call('PATCH', `/v1/backup-jobs/${quick.id}`, { instanceIds: ids });
    expect([moved.status, moved.body.code, moved.body.errors?.[0]?.path]).toEqual([
      400,
      'schedule_too_frequent',
      'instanceIds',
    ]);
    expect((await tenant.expect(200, 'GET', `/v1/backup-jobs/${quick.id}`)).instanceIds).toEqual([ids[0]]);
  });

  it("an SLA is the SP's own: not floored, but it must fire at least once a year", async () => {
    const sla = await admin.call('POST', '/v1/offerings', {
      name: 'leap-day',
      zone: 'zone-a',
      providerId,
      allowAdhoc: false,
      allowUserSchedules: false,
      sla: { cron: '0 2 29 2 *', keepLast: 3 },
    });
    expect([sla.status, sla.body.errors?.[0]?.path]).toEqual([400, 'sla.cron']);
    expect(sla.body.detail).toMatch(/once (a year|in any 366 days)/);
    const frequent = await offering('every-minute-sla', { sla: { cron: '* * * * *', keepLast: 3 } });
    expect(frequent.minUserScheduleIntervalS).toBe(900);
  });
});
