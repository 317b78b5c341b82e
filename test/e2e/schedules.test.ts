import { beforeAll, describe, expect, it } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import type { ControlPlaneProc } from '@cairn/test-harness/processes';
import { assignOffering, waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';
import { backupTasks, eventsOf, tickedAt } from '@cairn/test-harness/clock';

describe.each(backends)('the scheduler on %s', (backend) => {
  const stack = withStack(backend, { clockAt: '2026-03-27T12:00:00Z', agents: [{ name: 'sched-host' }] });
  let cp: ControlPlaneProc;
  let admin: Api;
  let tenant: Api;
  let other: Api;
  let tenantId: string;
  let fastProvider: string;
  let slowProvider: string;
  let slaOffering: string;
  let selfOffering: string;
  let slowOffering: string;
  const ins: Record<string, string> = {};

  const instance = async (name: string, offeringId: string) => {
    const row = await admin.expect(201, 'POST', '/v1/instances', {
      name,
      zone: 'zone-a',
      locator: { vm: name },
      tenantId,
    });
    await assignOffering(admin, row.id, offeringId);
    return row.id as string;
  };
  const offering = async (name: string, providerId: string, extra: Record<string, unknown>) => {
    const row = await admin.expect(201, 'POST', '/v1/offerings', {
      name,
      zone: 'zone-a',
      providerId,
      allowAdhoc: false,
      allowUserSchedules: false,
      ...extra,
    });
    await admin.expect(201, 'POST', `/v1/offerings/${row.id}/grants`, { tenantId });
    return row.id as string;
  };
  const counts = async (names: string[]) =>
    Object.fromEntries(await Promise.all(names.map(async (n) => [n, (await backupTasks(admin, ins[n]!)).length])));
  /** Every backup task of these instances ended well, so the next fire is not skipped. */
  const settled = async (names: string[]) =>
    waitFor(
      async () => {
        for (const n of names)
          if ((await backupTasks(admin, ins[n]!)).some((t) => t.state !== 'succeeded')) return false;
        return true;
      },
      `backups of ${names.join(', ')} to succeed`,
    );
  const step = (iso: string) => stack.step(iso);

  beforeAll(async () => {
    ({ cp, admin } = stack);
    tenantId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'sched-tenant' })).id;
    tenant = new Api(
      cp.url,
      (await admin.expect(201, 'POST', `/v1/tenants/${tenantId}/tokens`, { role: 'tenant-user', name: 'u' })).token,
    );
    const otherId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'other-tenant' })).id;
    other = new Api(
      cp.url,
      (await admin.expect(201, 'POST', `/v1/tenants/${otherId}/tokens`, { role: 'tenant-admin', name: 'o' })).token,
    );
    const provider = async (name: string, config: Record<string, unknown>) =>
      (
        await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
          name,
          plugin: '@cairn/plugin-dummy',
          tenantLocators: 'any',
          config,
        })
      ).id as string;
    fastProvider = await provider('fast', { durationMs: 0, steps: 1, sizeBytes: 1000 });
    slowProvider = await provider('slow', { durationMs: 600_000, steps: 600, sizeBytes: 1000 });
    // 03:00 in Berlin: 02:00Z before the change to summer time on 29 March 2026, 01:00Z after.
    slaOffering = await offering('gold-sla', fastProvider, {
      sla: { cron: '0 3 * * *', timezone: 'Europe/Berlin', keepLast: 3, rpoMinutes: 1500 },
    });
    selfOffering = await offering('self-service', fastProvider, { allowUserSchedules: true });
    slowOffering = await offering('slow-self', slowProvider, { allowUserSchedules: true });
    ins.a = await instance('sla-a', slaOffering);
    ins.b = await instance('sla-b', slaOffering);
    ins.c = await instance('user-c', selfOffering);
    ins.d = await instance('plain-d', selfOffering);
  });

  it('fires a user schedule and an SLA offering at their cron times in their time zones, across a DST change', async () => {
    // 21:30 in New York (EDT, UTC-4) is 01:30Z the next day.
    const put = await tenant.expect(200, 'PUT', `/v1/instances/${ins.c}/schedule`, {
      cron: '30 21 * * *',
      timezone: 'America/New_York',
      keepLast: 4,
    });
    expect(put).toEqual({
      instanceId: ins.c,
      cron: '30 21 * * *',
      timezone: 'America/New_York',
      keepLast: 4,
      nextRunAt: '2026-03-28T01:30:00.000Z',
    });
    expect(await tenant.expect(200, 'GET', `/v1/instances/${ins.c}/schedule`)).toEqual(put);
    const all = ['a', 'b', 'c', 'd'];

    await step('2026-03-28T01:29:59Z');
    expect(await counts(all)).toEqual({ a: 0, b: 0, c: 0, d: 0 });
    await step('2026-03-28T01:30:00Z');
    expect(await counts(all)).toEqual({ a: 0, b: 0, c: 1, d: 0 });
    await step('2026-03-28T01:59:59Z');
    expect(await counts(all)).toEqual({ a: 0, b: 0, c: 1, d: 0 });
    await step('2026-03-28T02:00:00Z');
    expect(await counts(all)).toEqual({ a: 1, b: 1, c: 1, d: 0 });
    await settled(all);
    // The SLA's tasks are the tenant's own, in the provider's priority band.
    const slaTask = await tenant.expect(200, 'GET', `/v1/tasks/${(await backupTasks(admin, ins.a!))[0]!.id}`);
    expect(slaTask).toMatchObject({ tenantId, priority: 50 });
    // Summer time: 03:00 Berlin is 01:00Z now; the winter offset (02:00Z) does not fire.
    await step('2026-03-29T00:59:59Z');
    expect(await counts(all)).toEqual({ a: 1, b: 1, c: 1, d: 0 });
    await step('2026-03-29T01:00:00Z');
    expect(await counts(all)).toEqual({ a: 2, b: 2, c: 1, d: 0 });
    await step('2026-03-29T01:30:00Z');
    expect(await counts(all)).toEqual({ a: 2, b: 2, c: 2, d: 0 });
    await step('2026-03-29T02:00:00Z');
    expect(await counts(all)).toEqual({ a: 2, b: 2, c: 2, d: 0 });
    await settled(all);
    expect((await admin.expect(200, 'GET', `/v1/backups?instanceId=${ins.a}`)).items).toHaveLength(2);
    expect(await eventsOf(admin, 'schedule.caught_up', ins.a!)).toHaveLength(0);
  });

  it("GET /v1/schedules lists every schedule's next run soonest first: a tenant its own and its offerings' SLAs", async () => {
    const job = await admin.expect(201, 'POST', '/v1/backup-jobs', {
      name: 'nightly-d',
      instanceIds: [ins.d],
      mode: 'FULL',
      execution: 'PARALLEL',
      tenantId,
      schedules: [{ cron: '0 0 * * *' }],
    });
    try {
      // The scheduler computes a new schedule's next fire at its next tick.
      await step('2026-03-29T02:00:01Z');
      const want = [
        {
          kind: 'job',
          id: job.schedules[0].id,
          name: 'nightly-d',
          jobId: job.id,
          cron: '0 0 * * *',
          timezone: 'UTC',
          nextRunAt: '2026-03-30T00:00:00.000Z',
        },
        {
          kind: 'offering',
          id: slaOffering,
          name: 'gold-sla',
          jobId: null,
          cron: '0 3 * * *',
          timezone: 'Europe/Berlin',
          nextRunAt: '2026-03-30T01:00:00.000Z',
        },
        {
          kind: 'instance',
          id: ins.c,
          name: 'user-c',
          jobId: null,
          cron: '30 21 * * *',
          timezone: 'America/New_York',
          nextRunAt: '2026-03-30T01:30:00.000Z',
        },
      ];
      expect((await tenant.expect(200, 'GET', '/v1/schedules')).items).toEqual(want);
      expect((await admin.expect(200, 'GET', '/v1/schedules')).items).toEqual(want);
      // Paged like every list.
      const first = await tenant.expect(200, 'GET', '/v1/schedules?limit=2');
      expect(first.items).toEqual(want.slice(0, 2));
      const rest = await tenant.expect(
        200,
        'GET',
        `/v1/schedules?limit=2&cursor=${encodeURIComponent(first.nextCursor)}`,
      );
      expect(rest).toEqual({ items: want.slice(2), nextCursor: null });
      expect(
        (await tenant.get(`/v1/schedules?cursor=${encodeURIComponent(first.nextCursor.replace(/\.[^.]*$/, '.x'))}`))
          .status,
      ).toBe(400);
      expect((await tenant.get('/v1/schedules?limit=0')).status).toBe(400);
      // Another tenant, with no instance on the SLA's offering and no schedule: nothing.
      expect(await other.expect(200, 'GET', '/v1/schedules')).toEqual({ items: [], nextCursor: null });
    } finally {
      await admin.expect(204, 'DELETE', `/v1/backup-jobs/${job.id}`);
    }
  });

  it('PATCH /v1/offerings/{id} changes the SLA from its next fire', async () => {
    const patched = await admin.expect(200, 'PATCH', `/v1/offerings/${slaOffering}`, {
      sla: { cron: '30 * * * *', timezone: 'UTC', keepLast: 2 },
    });
    expect(patched.sla).toEqual({ cron: '30 * * * *', timezone: 'UTC', keepLast: 2 });
    await step('2026-03-29T02:29:59Z');
    expect(await counts(['a', 'b'])).toEqual({ a: 2, b: 2 });
    await step('2026-03-29T02:30:00Z');
    expect(await counts(['a', 'b'])).toEqual({ a: 3, b: 3 });
    await settled(['a', 'b']);
    // Back to a daily SLA, so the hourly one does not run through the next tests.
    await admin.expect(200, 'PATCH', `/v1/offerings/${slaOffering}`, {
      sla: { cron: '0 3 * * *', timezone: 'Europe/Berlin', keepLast: 3 },
    });
  });

  it('a control plane stopped across three fire times runs one catch-up fire, with its event', async () => {
    ins.f = await instance('hourly-f', selfOffering);
    await tenant.expect(200, 'PUT', `/v1/instances/${ins.f}/schedule`, {
      cron: '0 * * * *',
      timezone: 'UTC',
      keepLast: 5,
    });
    await step('2026-03-29T03:00:00Z');
    expect(await counts(['f'])).toEqual({ f: 1 });
    await settled(['f']);

    await cp.proc.stop();
    stack.setClock('2026-03-29T06:30:00Z'); // 04:00, 05:00 and 06:00 pass while it is down
    cp = await stack.controlPlane({ port: cp.port });
    await tickedAt(cp, '2026-03-29T06:30:00Z');
    expect(await counts(['f'])).toEqual({ f: 2 });
    const caughtUp = await eventsOf(admin, 'schedule.caught_up', ins.f!);
    expect(caughtUp).toHaveLength(1);
    expect(caughtUp[0].data).toMatchObject({ fireAt: '2026-03-29T06:00:00.000Z', missed: 2 });
    // Each scheduled backup's queued event names the fire that made it.
    const queued = await eventsOf(admin, 'task.queued', ins.f!);
    const fires = queued.map((e) => e.data).sort((a, b) => String(a?.fireAt).localeCompare(String(b?.fireAt)));
    expect(fires).toEqual([
      { schedule: expect.any(String), fireAt: '2026-03-29T03:00:00.000Z', missed: 0 },
      { schedule: expect.any(String), fireAt: '2026-03-29T06:00:00.000Z', missed: 2 },
    ]);
    await settled(['f']);

    await step('2026-03-29T06:59:59Z');
    expect(await counts(['f'])).toEqual({ f: 2 });
    await step('2026-03-29T07:00:00Z');
    expect(await counts(['f'])).toEqual({ f: 3 });
    expect(await eventsOf(admin, 'schedule.caught_up', ins.f!)).toHaveLength(1);
    await settled(['f']);
    await tenant.expect(204, 'DELETE', `/v1/instances/${ins.f}/schedule`);
    await tenant.expect(404, 'GET', `/v1/instances/${ins.f}/schedule`);
  });

  it('a fire that finds the previous backup still running is skipped with an event, never stacked', async () => {
    ins.g = await instance('slow-g', slowOffering);
    await tenant.expect(200, 'PUT', `/v1/instances/${ins.g}/schedule`, {
      cron: '0 * * * *',
      timezone: 'UTC',
      keepLast: 2,
    });
    await step('2026-03-29T08:00:00Z');
    const [first] = await backupTasks(admin, ins.g);
    expect(first).toBeDefined();
    await step('2026-03-29T09:00:00Z');
    expect(await backupTasks(admin, ins.g)).toHaveLength(1);
    const skipped = await eventsOf(admin, 'schedule.skipped', ins.g);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({ tenantId, data: { fireAt: '2026-03-29T09:00:00.000Z' } });
    expect(skipped[0].message).toContain(first!.id);
    await tenant.expect(204, 'DELETE', `/v1/instances/${ins.g}/schedule`);
    await admin.expect(202, 'POST', `/v1/tasks/${first!.id}/cancel`);
  });

  it('a fire during maintenance fails at once with the message, in the task and its event; the next fire after it runs', async () => {
    ins.h = await instance('user-h', selfOffering);
    await tenant.expect(200, 'PUT', `/v1/instances/${ins.h}/schedule`, {
      cron: '0 * * * *',
      timezone: 'UTC',
      keepLast: 2,
    });
    const message = 'storage swap until 10:30';
    await admin.expect(200, 'PUT', '/v1/maintenance', { enabled: true, message });
    await step('2026-03-29T10:00:00Z');
    const [refused, ...more] = await backupTasks(admin, ins.h);
    expect(more).toHaveLength(0);
    expect(await tenant.expect(200, 'GET', `/v1/tasks/${refused!.id}`)).toMatchObject({
      state: 'failed',
      error: { code: 'maintenance', message },
    });
    const failed = await eventsOf(tenant, 'task.failed', ins.h);
    expect(failed).toHaveLength(1);
    expect(failed[0].message).toContain(message);

    await admin.expect(200, 'PUT', '/v1/maintenance', { enabled: false });
    await step('2026-03-29T11:00:00Z');
    const tasks = await backupTasks(admin, ins.h);
    expect(tasks).toHaveLength(2);
    const next = tasks.find((t) => t.id !== refused!.id)!;
    expect((await waitForTask(tenant, next.id, ['succeeded', 'failed', 'cancelled', 'lost'])).state).toBe('succeeded');
  });

  it('bad input on the schedule routes and PATCH /v1/offerings gets 4xx problem+json and writes nothing', async () => {
    const url = `/v1/instances/${ins.d}/schedule`;
    const good = { cron: '0 2 * * *', timezone: 'UTC', keepLast: 3 };
    const cases: [unknown, string][] = [
      [{ ...good, cron: '61 * * * *' }, 'cron'],
      [{ ...good, cron: 'every day' }, 'cron'],
      [{ ...good, timezone: 'Mars/Olympus_Mons' }, 'timezone'],
      [{ ...good, keepLast: 0 }, 'keepLast'],
      [{ ...good, keepLast: 1.5 }, 'keepLast'],
      [{ ...good, color: 'blue' }, 'color'],
      [{ cron: '0 2 * * *', keepLast: 3 }, 'timezone'],
    ];
    for (const [body, field] of cases) {
      const r = await tenant.call('PUT', url, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(JSON.stringify(r.body), JSON.stringify(body)).toContain(field);
    }
    // The SLA offering does not allow user schedules.
    const forbidden = await tenant.call('PUT', `/v1/instances/${ins.a}/schedule`, good);
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    // Another tenant's instance does not exist for this caller.
    expect((await other.call('PUT', url, good)).status).toBe(404);
    expect((await other.call('GET', `/v1/instances/${ins.c}/schedule`)).status).toBe(404);
    expect((await other.call('DELETE', `/v1/instances/${ins.c}/schedule`)).status).toBe(404);
    expect((await tenant.call('PUT', '/v1/instances/not-an-id/schedule', good)).status).toBe(404);
    // Nothing was written.
    expect((await tenant.call('GET', url)).status).toBe(404);
    expect((await tenant.call('GET', `/v1/instances/${ins.a}/schedule`)).status).toBe(404);
    expect((await tenant.expect(200, 'GET', `/v1/instances/${ins.c}/schedule`)).cron).toBe('30 21 * * *');

    const before = await admin.expect(200, 'GET', `/v1/offerings/${slaOffering}`);
    const badPatches: [unknown, string][] = [
      [{ sla: { cron: '0 99 * * *', keepLast: 3 } }, 'sla.cron'],
      [{ sla: { cron: '0 3 * * *', timezone: 'Nowhere/Land', keepLast: 3 } }, 'timezone'],
      [{ sla: { cron: '0 3 * * *', keepLast: 0 } }, 'keepLast'],
      [{ zone: 'zone-b' }, 'zone'],
    ];
    for (const [body, field] of badPatches) {
      const r = await admin.call('PATCH', `/v1/offerings/${slaOffering}`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(JSON.stringify(r.body), JSON.stringify(body)).toContain(field);
    }
    expect((await tenant.call('PATCH', `/v1/offerings/${slaOffering}`, { allowAdhoc: true })).status).toBe(403);
    expect(await admin.expect(200, 'GET', `/v1/offerings/${slaOffering}`)).toEqual(before);
  });
});
