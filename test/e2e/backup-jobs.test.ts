import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { eventsWhere } from '@cairn/test-harness/clock';
import { backends } from '@cairn/test-harness/databases';
import { tempDir } from '@cairn/test-harness/processes';
import type { RunBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

interface JobBody {
  id: string;
  tenantId: string;
  instanceIds: string[];
  locked: boolean;
  priority: number;
  schedules: { id: string; runs: number; nextRunAt: string | null; end: unknown }[];
  sets: { outdated: string[]; ongoing: string[]; updated: string[]; error: string[] };
  lastRun: { id: string; state: string; durationSeconds: number } | null;
  progress: { percent: number; bytesDone: number; bytesTotal: number; etaSeconds: number | null } | null;
}
interface TaskRow {
  id: string;
  state: string;
  instanceId: string;
  agentId: string | null;
  priority: number;
  startedAt: string | null;
}

const HELD = ['dispatched', 'running'];
const LIVE = ['queued', ...HELD];
const GLOBAL_LIMIT = 3;
const SLOTS = 2;

describe.each(backends)('backup jobs (%s)', (backend) => {
  const stack = withStack(backend, {
    clockAt: '2026-05-04T08:00:00Z',
    env: { CAIRN_MAX_RUNNING_TASKS: String(GLOBAL_LIMIT) },
    agents: [
      { name: 'host-1', slots: SLOTS },
      { name: 'host-2', slots: SLOTS },
    ],
  });
  let admin: Api;
  let tenant: Api;
  let tenantId: string;
  let otherTenantId: string;
  let slowOffering: string;
  let fastOffering: string;
  let closedOffering: string;
  let zoneBOffering: string;
  let zoneBState: string;
  let n = 0;

  const instance = async (offeringId: string, opts: { tenant?: string; zone?: string; locator?: object } = {}) => {
    const row = await admin.expect(201, 'POST', '/v1/instances', {
      name: `vm-${++n}`,
      zone: opts.zone ?? 'zone-a',
      locator: { vm: `vm-${n}`, ...opts.locator },
      tenantId: opts.tenant ?? tenantId,
    });
    await admin.expect(200, 'PUT', `/v1/instances/${row.id}/offering`, { offeringId });
    return row.id as string;
  };
  const instances = async (count: number, offeringId: string, opts: Parameters<typeof instance>[1] = {}) => {
    const out: string[] = [];
    for (let i = 0; i < count; i++) out.push(await instance(offeringId, opts));
    return out;
  };
  const provider = async (zone: string, name: string, config: Record<string, unknown>) =>
    (
      await admin.expect(201, 'POST', `/v1/zones/${zone}/providers`, {
        name,
        plugin: '@cairn/plugin-dummy',
        tenantLocators: 'any',
        config,
      })
    ).id as string;
  const offering = async (zone: string, name: string, providerId: string, allow: boolean) => {
    const row = await admin.expect(201, 'POST', '/v1/offerings', {
      name,
      zone,
      providerId,
      allowAdhoc: allow,
      allowUserSchedules: allow,
      // These tests set job schedules every 5 minutes: the offering allows down to every minute.
      minUserScheduleIntervalS: 60,
    });
    for (const t of [tenantId, otherTenantId])
      await admin.expect(201, 'POST', `/v1/offerings/${row.id}/grants`, { tenantId: t });
    return row.id as string;
  };
  const job = async (api: Api, body: Record<string, unknown>) =>
    api.expect<JobBody>(201, 'POST', '/v1/backup-jobs', {
      mode: 'FULL',
      execution: 'SEQUENTIAL',
      name: `job-${++n}`,
      ...body,
    });
  const getJob = (id: string) => admin.expect<JobBody>(200, 'GET', `/v1/backup-jobs/${id}`);
  const runsOf = async (id: string) =>
    (await admin.expect(200, 'GET', `/v1/backup-jobs/${id}/runs?limit=500`)).items as RunBody[];
  const tasksOf = async (ids: string[]) =>
    ((await admin.expect(200, 'GET', '/v1/tasks?kind=backup&limit=500')).items as TaskRow[]).filter((t) =>
      ids.includes(t.instanceId),
    );
  const allTasks = async () => (await admin.expect(200, 'GET', '/v1/tasks?limit=500')).items as TaskRow[];
  const finished = (id: string, runs = 1) =>
    waitFor(
      async () => {
        const all = await runsOf(id);
        return all.length >= runs && all.every((r) => r.endedAt !== null) ? getJob(id) : undefined;
      },
      `${runs} run(s) of job ${id} to finish`,
      60_000,
    );
  const jobEvents = (jobId: string, type: string) => eventsWhere(admin, (e) => e.jobId === jobId && e.type === type);
  const step = (iso: string) => stack.step(iso);

  beforeAll(async () => {
    admin = stack.admin;
    ({ id: tenantId, api: tenant } = await stack.tenant('jobs-tenant'));
    otherTenantId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'other-tenant' })).id;
    zoneBState = (await stack.enroll('zone-b', 'host-b')).stateDir;
    const slow = await provider('zone-a', 'slow', { durationMs: 600, steps: 3, sizeBytes: 3000 });
    const fast = await provider('zone-a', 'fast', {
      durationMs: 20,
      steps: 1,
      sizeBytes: 1000,
      storeDir: tempDir('store'),
    });
    slowOffering = await offering('zone-a', 'slow', slow, true);
    fastOffering = await offering('zone-a', 'fast', fast, true);
    closedOffering = await offering('zone-a', 'closed', fast, false);
    zoneBOffering = await offering(
      'zone-b',
      'zone-b',
      await provider('zone-b', 'b', { durationMs: 100, steps: 1 }),
      true,
    );
  });

  it('SEQUENTIAL backs up in list order, never two at once; GET shows the sets, the last run and its progress', async () => {
    const ids = await instances(4, slowOffering);
    const order = [ids[2]!, ids[0]!, ids[3]!, ids[1]!];
    const created = await job(tenant, { instanceIds: order, execution: 'SEQUENTIAL' });
    expect(created).toMatchObject({ tenantId, instanceIds: order, locked: false, lastRun: null, progress: null });
    expect(created.sets).toEqual({ outdated: order, ongoing: [], updated: [], error: [] });
    await tenant.expect(202, 'POST', `/v1/backup-jobs/${created.id}/run`);

    const started: string[] = [];
    let maxLive = 0;
    let maxOngoing = 0;
    let sawProgress = false;
    await waitFor(
      async () => {
        const tasks = await tasksOf(ids);
        const live = tasks.filter((t) => LIVE.includes(t.state));
        maxLive = Math.max(maxLive, live.length);
        for (const t of [...tasks].sort((a, b) => (a.id < b.id ? -1 : 1)))
          if (!started.includes(t.instanceId)) started.push(t.instanceId);
        const view = await getJob(created.id);
        maxOngoing = Math.max(maxOngoing, view.sets.ongoing.length);
        if (view.progress && view.progress.percent > 0 && view.progress.percent < 100) sawProgress = true;
        return view.lastRun?.state !== 'running' ? true : undefined;
      },
      'the sequential run to finish',
      60_000,
    );
    // Assertions outside the probe: waitFor retries a probe that throws.
    expect(started).toEqual(order);
    expect(maxLive).toBe(1);
    expect(maxOngoing).toBe(1);
    expect(sawProgress).toBe(true);
    const done = await getJob(created.id);
    expect(done.sets).toEqual({ outdated: [], ongoing: [], updated: order, error: [] });
    expect(done.lastRun).toMatchObject({ state: 'succeeded' });
    expect(done.progress).toMatchObject({ percent: 100, bytesDone: 12_000, bytesTotal: 12_000, etaSeconds: 0 });
    const [run] = await runsOf(created.id);
    expect(run).toMatchObject({ trigger: 'run', state: 'succeeded' });
    expect(run!.members.map((m) => [m.instanceId, m.set])).toEqual(order.map((i) => [i, 'UPDATED']));
    expect(await jobEvents(created.id, 'job.run_finished')).toHaveLength(1);
  });

  it('PARALLEL never holds more than the global limit nor an agent more than its slots', async () => {
    const ids = await instances(8, slowOffering);
    const created = await job(admin, { instanceIds: ids, execution: 'PARALLEL', tenantId });
    await admin.expect(202, 'POST', `/v1/backup-jobs/${created.id}/run`);
    let maxHeld = 0;
    let maxPerAgent = 0;
    await waitFor(
      async () => {
        const held = (await allTasks()).filter((t) => HELD.includes(t.state));
        maxHeld = Math.max(maxHeld, held.length);
        const perAgent = new Map<string, number>();
        for (const t of held) perAgent.set(t.agentId!, (perAgent.get(t.agentId!) ?? 0) + 1);
        maxPerAgent = Math.max(maxPerAgent, ...perAgent.values());
        return (await getJob(created.id)).lastRun?.state !== 'running' ? true : undefined;
      },
      'the parallel run to finish',
      60_000,
    );
    expect(maxHeld).toBeLessThanOrEqual(GLOBAL_LIMIT);
    expect(maxPerAgent).toBeLessThanOrEqual(SLOTS);
    expect(maxHeld).toBeGreaterThan(1);
    expect((await getJob(created.id)).sets.updated).toEqual(ids);
  });

  it('between two queued jobs the higher priority starts first; a tenant may not take priority 60', async () => {
    const before = (await tenant.expect(200, 'GET', '/v1/backup-jobs?limit=500')).items.length;
    const refused = await tenant.call('POST', '/v1/backup-jobs', {
      name: 'greedy',
      instanceIds: [await instance(zoneBOffering, { zone: 'zone-b' })],
      mode: 'FULL',
      execution: 'PARALLEL',
      priority: 60,
    });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect((await tenant.expect(200, 'GET', '/v1/backup-jobs?limit=500')).items).toHaveLength(before);

    // Zone b has no agent yet: both runs queue, the low one first.
    const low = await job(tenant, { instanceIds: await instances(2, zoneBOffering, { zone: 'zone-b' }), priority: 10 });
    const high = await job(tenant, {
      instanceIds: await instances(2, zoneBOffering, { zone: 'zone-b' }),
      priority: 40,
    });
    await tenant.expect(202, 'POST', `/v1/backup-jobs/${low.id}/run`);
    await tenant.expect(202, 'POST', `/v1/backup-jobs/${high.id}/run`);
    expect((await tasksOf([...low.instanceIds, ...high.instanceIds])).map((t) => [t.priority, t.state]).sort()).toEqual(
      [
        [10, 'queued'],
        [40, 'queued'],
      ],
    );
    await stack.runAgent(zoneBState, { slots: 1 });
    await finished(low.id);
    await finished(high.id);
    const tasks = await tasksOf([...low.instanceIds, ...high.instanceIds]);
    const startOf = (ids: string[]) =>
      tasks.filter((t) => ids.includes(t.instanceId)).map((t) => Date.parse(t.startedAt!));
    // One slot: every backup of the higher job started before any of the lower one.
    expect(Math.max(...startOf(high.instanceIds))).toBeLessThan(Math.min(...startOf(low.instanceIds)));
  });

  it('retry runs exactly the ERROR set of the last run', async () => {
    const good = await instances(2, fastOffering);
    const bad = await instances(2, fastOffering, { locator: { dummy: { failCode: 'X' } } });
    const order = [good[0]!, bad[0]!, good[1]!, bad[1]!];
    const created = await job(tenant, { instanceIds: order, execution: 'PARALLEL' });
    await tenant.expect(202, 'POST', `/v1/backup-jobs/${created.id}/run`);
    const first = await finished(created.id);
    expect(first.sets).toEqual({ outdated: [], ongoing: [], updated: good, error: bad });
    expect(first.lastRun).toMatchObject({ state: 'failed' });
    const tasksBefore = (await tasksOf(order)).length;

    const retried = await tenant.expect<JobBody>(202, 'POST', `/v1/backup-jobs/${created.id}/retry`);
    expect(retried.lastRun!.id).not.toBe(first.lastRun!.id);
    await finished(created.id, 2);
    const [latest, previous] = await runsOf(created.id);
    expect(latest).toMatchObject({ trigger: 'retry', state: 'failed' });
    expect(latest!.members.map((m) => m.instanceId)).toEqual(bad);
    expect(latest!.members.every((m) => m.set === 'ERROR' && m.error?.code === 'X')).toBe(true);
    expect(previous!.members).toHaveLength(4);
    const latestTask = await admin.expect(200, 'GET', `/v1/tasks/${latest!.members[0]!.taskId}`);
    expect(latestTask).toMatchObject({ kind: 'backup', jobId: created.id, instanceId: bad[0] });
    const tasksAfter = await tasksOf(order);
    expect(tasksAfter).toHaveLength(tasksBefore + 2);
    expect(tasksAfter.filter((t) => good.includes(t.instanceId))).toHaveLength(2);
    expect(await jobEvents(created.id, 'job.retried')).toHaveLength(1);
  });

  it('cancel leaves nothing of the run queued or running; the rest ends in ERROR', async () => {
    const ids = await instances(6, slowOffering, { locator: { dummy: { durationMs: 20_000, steps: 20 } } });
    const created = await job(tenant, { instanceIds: ids, execution: 'PARALLEL' });
    await tenant.expect(202, 'POST', `/v1/backup-jobs/${created.id}/run`);
    await waitFor(
      async () => ((await tasksOf(ids)).filter((t) => t.state === 'running').length >= 2 ? true : undefined),
      'backups of the job to run',
    );
    expect((await tasksOf(ids)).some((t) => t.state === 'queued')).toBe(true);
    await tenant.expect(202, 'POST', `/v1/backup-jobs/${created.id}/cancel`);
    const done = await finished(created.id);
    expect(done.lastRun).toMatchObject({ state: 'cancelled' });
    expect(done.sets).toMatchObject({ outdated: [], ongoing: [], updated: [] });
    expect(done.sets.error).toEqual(ids);
    expect((await tasksOf(ids)).filter((t) => LIVE.includes(t.state))).toEqual([]);
    expect((await tasksOf(ids)).every((t) => t.state === 'cancelled')).toBe(true);
    expect(await jobEvents(created.id, 'job.cancelled')).toHaveLength(1);
  });

  it('a locked job refuses every change and every run (409 job_locked); unlocked it works again', async () => {
    const created = await job(tenant, { instanceIds: await instances(1, fastOffering) });
    expect((await tenant.expect<JobBody>(200, 'POST', `/v1/backup-jobs/${created.id}/lock`)).locked).toBe(true);
    const path = `/v1/backup-jobs/${created.id}`;
    for (const [method, url, body] of [
      ['PATCH', path, { name: 'renamed' }],
      ['POST', `${path}/run`, undefined],
      ['POST', `${path}/retry`, undefined],
      ['POST', `${path}/schedules`, { cron: '0 3 * * *' }],
      ['DELETE', path, undefined],
    ] as const) {
      const r = await tenant.call(method, url, body);
      expect([method, url, r.status, r.body.code]).toEqual([method, url, 409, 'job_locked']);
    }
    expect(await getJob(created.id)).toMatchObject({ locked: true, lastRun: null, schedules: [] });
    await tenant.expect(200, 'POST', `${path}/unlock`);
    expect((await tenant.expect<JobBody & { name: string }>(200, 'PATCH', path, { name: 'renamed' })).name).toBe(
      'renamed',
    );
    const events = await jobEvents(created.id, 'job.locked');
    expect(events[0].data).toMatchObject({ by: { role: 'tenant-admin' } });
  });

  it('a run while a run goes is 409; a schedule fire during a run starts none; the schedule fires on time and ends after its runs', async () => {
    const ids = await instances(1, slowOffering, { locator: { dummy: { durationMs: 20_000, steps: 20 } } });
    const created = await job(tenant, { instanceIds: ids });
    const path = `/v1/backup-jobs/${created.id}`;
    await tenant.expect(202, 'POST', `${path}/run`);
    const again = await tenant.call('POST', `${path}/run`);
    expect([again.status, again.body.code]).toEqual([409, 'job_running']);
    expect((await tenant.call('DELETE', path)).status).toBe(409);

    const schedule = await tenant.expect(201, 'POST', `${path}/schedules`, {
      cron: '*/5 * * * *',
      end: { afterRuns: 1 },
    });
    expect(schedule).toMatchObject({ runs: 0, nextRunAt: '2026-05-04T08:05:00.000Z', end: { afterRuns: 1 } });
    await step('2026-05-04T08:05:00Z');
    await waitFor(
      async () => ((await jobEvents(created.id, 'job.skipped')).length === 1 ? true : undefined),
      'job.skipped',
    );
    expect(await runsOf(created.id)).toHaveLength(1);

    await tenant.expect(202, 'POST', `${path}/cancel`);
    await finished(created.id);
    await tenant.expect(200, 'PATCH', path, { instanceIds: await instances(1, fastOffering) });
    await step('2026-05-04T08:09:59Z');
    expect(await runsOf(created.id)).toHaveLength(1);
    await step('2026-05-04T08:10:00Z');
    const done = await finished(created.id, 2);
    expect((await runsOf(created.id))[0]).toMatchObject({ trigger: 'schedule', state: 'succeeded' });
    expect(done.schedules[0]).toMatchObject({ runs: 1, nextRunAt: null });
    await step('2026-05-04T08:15:00Z');
    expect(await runsOf(created.id)).toHaveLength(2);
    await tenant.expect(204, 'DELETE', `${path}/schedules/${schedule.id}`);
  });

  it('keep-last of the job holds after three runs, through the provider', async () => {
    const ids = await instances(2, fastOffering);
    const created = await job(tenant, { instanceIds: ids, execution: 'PARALLEL', keepLast: 2 });
    for (let i = 1; i <= 3; i++) {
      await tenant.expect(202, 'POST', `/v1/backup-jobs/${created.id}/run`);
      await finished(created.id, i);
    }
    for (const id of ids) {
      await waitFor(async () => {
        const backups = (await admin.expect(200, 'GET', `/v1/backups?instanceId=${id}&limit=500`)).items;
        return backups.length === 2 ? true : undefined;
      }, `instance ${id} to keep 2 restore points`);
    }
  });

  it('policy holds at every start: an instance whose offering the SP made SLA-only goes to ERROR NOT_ALLOWED at run, retry and schedule fire; the rest runs', async () => {
    const later = await offering(
      'zone-a',
      'later-sla',
      await provider('zone-a', 'later-sla', { durationMs: 20, steps: 1 }),
      true,
    );
    const kept = await instance(fastOffering);
    const reserved = await instance(later);
    // SEQUENTIAL: the reserved instance starts only once the kept one's backup ended.
    const created = await job(tenant, { instanceIds: [kept, reserved] });
    const path = `/v1/backup-jobs/${created.id}`;
    await tenant.expect(201, 'POST', `${path}/schedules`, { cron: '*/5 * * * *' });
    await admin.expect(200, 'PATCH', `/v1/offerings/${later}`, { allowAdhoc: false, allowUserSchedules: false });
    const spJob = (id: string) => ({
      name: 'sp',
      mode: 'FULL',
      execution: 'SEQUENTIAL',
      instanceIds: [id],
      tenantId,
      priority: 60,
    });
    const refusedMember = {
      instanceId: reserved,
      set: 'ERROR',
      taskId: null,
      error: { code: 'NOT_ALLOWED', message: expect.stringContaining('later-sla') },
    };

    await tenant.expect(202, 'POST', `${path}/run`);
    await finished(created.id, 1);
    const [run] = await runsOf(created.id);
    expect(run).toMatchObject({ trigger: 'run', state: 'failed' });
    expect(run!.members).toEqual([expect.objectContaining({ instanceId: kept, set: 'UPDATED' }), refusedMember]);

    // The retry would back up only the refused instance: every member refused, 403 naming why.
    const retry = await tenant.call('POST', `${path}/retry`);
    expect([retry.status, retry.body.code]).toEqual([403, 'not_allowed']);
    expect(retry.body.detail).toContain('allows neither ad-hoc backups nor user schedules');
    await finished(created.id, 2);
    const [retried] = await runsOf(created.id);
    expect(retry.body.runId).toBe(retried!.id);
    expect(retried).toMatchObject({ trigger: 'retry', state: 'failed', members: [refusedMember] });

    await step('2026-05-04T08:20:00Z');
    await finished(created.id, 3);
    const [fired] = await runsOf(created.id);
    expect(fired).toMatchObject({ trigger: 'schedule', state: 'failed' });
    expect(fired!.members).toEqual([expect.objectContaining({ instanceId: kept, set: 'UPDATED' }), refusedMember]);
    const events = await jobEvents(created.id, 'job.not_allowed');
    expect(events).toHaveLength(3);
    expect(events[0].data).toMatchObject({ instanceIds: [reserved], code: 'NOT_ALLOWED' });
    expect((await tasksOf([reserved])).length).toBe(0);

    // A job the service provider manages (its band, 50-99) still backs the instance up; below
    // its band the provider's job is held to the tenant's rule, at create as at every start.
    expect((await admin.call('POST', '/v1/backup-jobs', { ...spJob(reserved), priority: 10 })).status).toBe(403);
    const managed = await job(admin, spJob(reserved));
    await admin.expect(202, 'POST', `/v1/backup-jobs/${managed.id}/run`);
    expect((await finished(managed.id)).lastRun).toMatchObject({ state: 'succeeded' });
  });

  it('bad input on every job route is a 4xx problem and writes nothing', async () => {
    const mine = await instances(2, fastOffering);
    const foreign = await instance(fastOffering, { tenant: otherTenantId });
    const closed = await instance(closedOffering);
    const good = { name: 'ok', instanceIds: mine, mode: 'FULL', execution: 'SEQUENTIAL' };
    const before = (await admin.expect(200, 'GET', '/v1/backup-jobs?limit=500')).items.length;
    const cases: [Record<string, unknown>, number, string?][] = [
      [{ ...good, instanceIds: [mine[0], 'ins_00000000000000000000000000'] }, 400, 'instanceIds.1'],
      [{ ...good, instanceIds: [mine[0], foreign] }, 400, 'instanceIds.1'],
      [{ ...good, instanceIds: [] }, 400, 'instanceIds'],
      [{ ...good, instanceIds: [mine[0], mine[1], mine[0]] }, 400, 'instanceIds.2'],
      [{ ...good, execution: 'SIDEWAYS' }, 400, 'execution'],
      [{ ...good, priority: 100 }, 400, 'priority'],
      [{ ...good, colour: 'blue' }, 400],
      [{ ...good, schedules: [{ cron: 'every day' }] }, 400, 'schedules.0.cron'],
      [{ ...good, schedules: [{ cron: '0 2 * * *', timezone: 'Mars/Olympus' }] }, 400, 'schedules.0.timezone'],
      [{ ...good, instanceIds: [closed] }, 403],
    ];
    for (const [body, status, field] of cases) {
      const r = await tenant.call('POST', '/v1/backup-jobs', body);
      expect([JSON.stringify(body), r.status]).toEqual([JSON.stringify(body), status]);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
      if (field) expect(r.body.errors.map((e: { path: string }) => e.path).join(' ')).toContain(field);
    }
    expect((await admin.expect(200, 'GET', '/v1/backup-jobs?limit=500')).items).toHaveLength(before);

    const created = await job(tenant, good);
    const path = `/v1/backup-jobs/${created.id}`;
    const snapshot = await getJob(created.id);
    const patches: [Record<string, unknown>, number][] = [
      [{ instanceIds: [foreign] }, 400],
      [{ instanceIds: [] }, 400],
      [{ instanceIds: [mine[0], mine[0]] }, 400],
      [{ execution: 'SIDEWAYS' }, 400],
      [{ priority: 100 }, 400],
      [{ priority: 60 }, 403],
      [{ tenantId: otherTenantId }, 403],
      [{ nickname: 'x' }, 400],
    ];
    for (const [body, status] of patches) {
      const r = await tenant.call('PATCH', path, body);
      expect([JSON.stringify(body), r.status]).toEqual([JSON.stringify(body), status]);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
    }
    // The service provider moves it only where its instances belong.
    expect((await admin.call('PATCH', path, { tenantId: otherTenantId })).body.errors[0].path).toBe('instanceIds.0');
    for (const [body, status] of [
      [{ cron: 'nope' }, 400],
      [{ cron: '0 2 * * *', end: { afterRuns: 0 } }, 400],
      [{ cron: '0 2 * * *', end: { at: 'tomorrow' } }, 400],
      [{ cron: '0 2 * * *', every: 'day' }, 400],
    ] as const) {
      expect((await tenant.call('POST', `${path}/schedules`, body)).status).toBe(status);
    }
    const sched = await tenant.expect(201, 'POST', `${path}/schedules`, { cron: '0 2 * * *' });
    expect((await tenant.call('PATCH', `${path}/schedules/${sched.id}`, { timezone: 'Nowhere/City' })).status).toBe(
      400,
    );
    expect(
      (await tenant.call('PATCH', `${path}/schedules/sch_00000000000000000000000000`, { cron: '0 3 * * *' })).status,
    ).toBe(404);
    expect((await tenant.call('POST', `${path}/run?now=1`)).status).toBe(400);
    expect((await tenant.call('POST', `${path}/retry`)).body.code).toBe('nothing_to_retry');
    expect((await tenant.call('POST', `${path}/cancel`)).body.code).toBe('job_not_running');
    const after = await getJob(created.id);
    expect({ ...after, schedules: [] }).toEqual({ ...snapshot, schedules: [] });
    expect(after.schedules.map((s) => s.id)).toEqual([sched.id]);
    expect(await runsOf(created.id)).toEqual([]);
    // Another tenant sees nothing of it.
    const other = stack.api(await stack.token(otherTenantId, 'tenant-admin', 'o'));
    expect((await other.call('GET', path)).status).toBe(404);
    expect((await other.expect(200, 'GET', '/v1/backup-jobs')).items).toEqual([]);
  });
});

// Replicas share one MySQL database; SQLite is the single-process quick start.
describe.runIf(backends.includes('mysql'))('a job schedule on two control-plane replicas (mysql)', () => {
  const FIRES = 5;
  const stack = withStack('mysql', {
    clockAt: '2026-06-01T00:00:30Z',
    replicas: 2,
    agents: [{ name: 'replica-host' }],
  });

  it('fires every minute exactly once: one run per fire, whichever replica claims it', async () => {
    // Set up through the second replica; the agent is on the first.
    const api = stack.adminOf(stack.replicas[1]!);
    const provider = await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'fast',
      plugin: '@cairn/plugin-dummy',
      tenantLocators: 'any',
      config: { durationMs: 0, steps: 1, sizeBytes: 1000 },
    });
    const offering = await api.expect(201, 'POST', '/v1/offerings', {
      name: 'plain',
      zone: 'zone-a',
      providerId: provider.id,
      allowAdhoc: true,
      allowUserSchedules: true,
      minUserScheduleIntervalS: 60,
    });
    const ids: string[] = [];
    for (const name of ['r-1', 'r-2']) {
      const row = await api.expect(201, 'POST', '/v1/instances', { name, zone: 'zone-a', locator: { vm: name } });
      await api.expect(200, 'PUT', `/v1/instances/${row.id}/offering`, { offeringId: offering.id });
      ids.push(row.id);
    }
    const created = await api.expect(201, 'POST', '/v1/backup-jobs', {
      name: 'every-minute',
      instanceIds: ids,
      mode: 'FULL',
      execution: 'PARALLEL',
      schedules: [{ cron: '* * * * *' }],
    });
    const runs = async () => (await api.expect(200, 'GET', `/v1/backup-jobs/${created.id}/runs?limit=500`)).items;
    for (let i = 1; i <= FIRES; i++) {
      const iso = `2026-06-01T00:0${i}:00Z`;
      await stack.step(iso);
      await waitFor(async () => {
        const all = await runs();
        return all.length === i && all.every((r: { endedAt: string | null }) => r.endedAt !== null);
      }, `run ${i} to finish`);
    }
    const all = await runs();
    expect(all).toHaveLength(FIRES);
    expect(
      all.every((r: { trigger: string; state: string }) => r.trigger === 'schedule' && r.state === 'succeeded'),
    ).toBe(true);
    const job = await api.expect(200, 'GET', `/v1/backup-jobs/${created.id}`);
    expect(job.schedules[0]).toMatchObject({ runs: FIRES, nextRunAt: '2026-06-01T00:06:00.000Z' });
    const tasks = (await api.expect(200, 'GET', '/v1/tasks?kind=backup&limit=500')).items;
    expect(tasks).toHaveLength(FIRES * ids.length);
  });
});
