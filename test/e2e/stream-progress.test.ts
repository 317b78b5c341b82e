/**
 * Live task progress on the event stream: a stream filtered to one task gets that task's progress
 * (at most about one message per task per second, the latest report) and its state changes, and
 * nothing of another task or another tenant; filters are validated, and a task the caller cannot
 * see is unknown.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import type { ControlPlaneProc } from '@cairn/test-harness/processes';
import { assignOffering, protectInstance } from '@cairn/test-harness/scenario';
import { SseClient } from '@cairn/test-harness/sse';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];

interface Tenant {
  id: string;
  api: Api;
  token: string;
}

describe.each(backends)('task progress on the event stream (%s)', (backend) => {
  const stack = withStack(backend, { agents: [{ name: 'host-1' }] });
  let cp: ControlPlaneProc;
  let admin: Api;
  const open: SseClient[] = [];
  let n = 0;

  async function tenant(): Promise<Tenant> {
    const t = await admin.expect(201, 'POST', '/v1/tenants', { name: `t${++n}` });
    const tok = await admin.expect(201, 'POST', `/v1/tenants/${t.id}/tokens`, { role: 'tenant-user', name: 'u' });
    return { id: t.id, api: stack.api(tok.token), token: tok.token };
  }

  /** An instance of `t` protected by a dummy offering with this plugin config. */
  async function instanceOf(t: Tenant, config: Record<string, unknown>): Promise<string> {
    const p = await protectInstance(admin, 'zone-a', { config });
    await admin.expect(201, 'POST', `/v1/offerings/${p.offeringId}/grants`, { tenantId: t.id });
    const inst = await admin.expect(201, 'POST', '/v1/instances', {
      name: `vm-${++n}`,
      zone: 'zone-a',
      locator: { vm: `vm-${n}` },
      tenantId: t.id,
    });
    await assignOffering(admin, inst.id, p.offeringId);
    return inst.id;
  }

  async function backup(instanceId: string): Promise<string> {
    return (await admin.expect(202, 'POST', `/v1/instances/${instanceId}/backups`)).id;
  }

  async function ended(taskId: string) {
    let task: any;
    await waitFor(
      async () => ENDED.includes((task = await admin.expect(200, 'GET', `/v1/tasks/${taskId}`)).state),
      `task ${taskId} to end`,
      120_000,
    );
    return task;
  }

  async function stream(token: string, query: string): Promise<SseClient> {
    const s = await SseClient.open(cp.url, token, { query });
    expect(s.status).toBe(200);
    open.push(s);
    await s.positioned();
    return s;
  }

  beforeAll(async () => {
    ({ cp, admin } = stack);
  });

  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });

  it(
    'a stream following one task gets its progress and state changes, nothing of another task, and no other tenant sees them',
    { timeout: 300_000 },
    async () => {
      const alice = await tenant();
      const bob = await tenant();
      const slow = { durationMs: 5000, steps: 10 };
      const mine = await instanceOf(alice, slow);
      const other = await instanceOf(alice, slow);
      await instanceOf(bob, slow);

      // Both tasks exist before the streams open; `after=0` replays the (filtered) log from its start.
      const watched = await backup(mine);
      const beside = await backup(other);
      const followed = await stream(alice.token, `?after=0&taskId=${watched}`);
      const everything = await stream(cp.adminToken, '');
      const bobs = await stream(bob.token, '?after=0');

      await ended(watched);
      await ended(beside);
      await waitFor(
        () => followed.events.some((e) => e.event === 'task.succeeded'),
        'the end on the followed stream',
        30_000,
      );
      await waitFor(
        () => everything.events.filter((e) => e.event === 'task.succeeded').length >= 2,
        'both ends on the sp-admin stream',
        30_000,
      );

      // The followed stream: this task's progress and state changes only.
      expect(followed.events.map((e) => e.data.taskId)).toEqual(followed.events.map(() => watched));
      expect(followed.events.map((e) => e.event)).toEqual(
        expect.arrayContaining(['task.queued', 'task.started', 'task.succeeded']),
      );
      expect(followed.progress.length).toBeGreaterThan(0);
      for (const p of followed.progress) {
        expect(p.event).toBe('task.progress');
        expect(p.data).toMatchObject({ taskId: watched, tenantId: alice.id });
        expect(p.data).toEqual(
          expect.objectContaining({
            percent: expect.any(Number),
            bytesDone: expect.any(Number),
            bytesTotal: expect.any(Number),
          }),
        );
        expect(p.data).toHaveProperty('etaSeconds');
        expect(p.data).toHaveProperty('message');
      }
      expect(new Set(followed.progress.map((p) => p.data.percent)).size).toBeGreaterThanOrEqual(2);
      // Nothing of a task's progress comes after its end.
      const end = followed.events.findIndex((e) => e.event === 'task.succeeded');
      for (const p of followed.progress) expect(p.eventsBefore).toBeLessThanOrEqual(end);

      // The other task did report progress (the sp-admin's unfiltered stream has it): the filter left it out.
      expect(everything.progress.some((p) => p.data.taskId === beside)).toBe(true);
      expect(everything.progress.some((p) => p.data.taskId === watched)).toBe(true);

      // Bob's stream has none of Alice's events or progress.
      expect(bobs.events.filter((e) => e.data.tenantId !== bob.id)).toEqual([]);
      expect(bobs.progress.filter((p) => p.data.tenantId !== bob.id)).toEqual([]);
      expect(bobs.progress.filter((p) => [watched, beside].includes(p.data.taskId))).toEqual([]);
    },
  );

  it(
    'a task reporting progress many times a second is sent about once a second, its latest report',
    { timeout: 300_000 },
    async () => {
      const alice = await tenant();
      const inst = await instanceOf(alice, { durationMs: 4000, steps: 400 });
      const taskId = await backup(inst);
      const followed = await stream(alice.token, `?after=0&taskId=${taskId}`);
      const task = await ended(taskId);
      expect(task.state).toBe('succeeded');
      await waitFor(() => followed.events.some((e) => e.event === 'task.succeeded'), 'the end on the stream', 30_000);

      // Many reports were stored ...
      let stored = 0;
      let cursor: string | null = null;
      do {
        const page: any = await alice.api.expect(
          200,
          'GET',
          `/v1/tasks/${taskId}/progress?limit=500${cursor ? `&cursor=${cursor}` : ''}`,
        );
        stored += page.items.length;
        cursor = page.nextCursor;
      } while (cursor);
      expect(stored).toBeGreaterThanOrEqual(100);
      // ... and the stream carried at most about one a second over the task's life (generous: +2).
      const seconds = (Date.parse(task.endedAt) - Date.parse(task.createdAt)) / 1000;
      expect(followed.progress.length).toBeGreaterThan(0);
      expect(followed.progress.length).toBeLessThanOrEqual(Math.ceil(seconds) + 2);
    },
  );

  it(
    'a stream following one backup job gets its runs’ events and its tasks’ progress, nothing of another task',
    { timeout: 300_000 },
    async () => {
      const alice = await tenant();
      const slow = { durationMs: 3000, steps: 6 };
      const members = [await instanceOf(alice, slow), await instanceOf(alice, slow)];
      const outside = await instanceOf(alice, slow);
      const job = await alice.api.expect(201, 'POST', '/v1/backup-jobs', {
        mode: 'FULL',
        execution: 'SEQUENTIAL',
        name: 'nightly',
        instanceIds: members,
      });
      const followed = await stream(alice.token, `?after=0&jobId=${job.id}`);
      const everything = await stream(cp.adminToken, '');
      await alice.api.expect(202, 'POST', `/v1/backup-jobs/${job.id}/run`);
      const beside = await backup(outside);
      await waitFor(
        () => followed.events.some((e) => e.event === 'job.run_finished'),
        'the run’s end on the stream',
        120_000,
      );
      await ended(beside);

      const taskIds = new Set(followed.events.filter((e) => e.data.taskId !== null).map((e) => e.data.taskId!));
      // Both members' tasks, nothing else: each event is the job's or one of its tasks'.
      expect(taskIds.size).toBe(2);
      expect(taskIds.has(beside)).toBe(false);
      for (const e of followed.events)
        expect(e.data.taskId !== null || (e.data as unknown as { jobId: string }).jobId === job.id, e.event).toBe(true);
      expect(followed.events.map((e) => e.event)).toEqual(
        expect.arrayContaining(['job.created', 'job.run_started', 'task.succeeded', 'job.run_finished']),
      );
      expect(followed.progress.length).toBeGreaterThan(0);
      expect(followed.progress.every((m) => taskIds.has(m.data.taskId))).toBe(true);
      expect(new Set(followed.progress.map((m) => m.data.percent)).size).toBeGreaterThanOrEqual(2);
      // The other task did report progress meanwhile.
      await waitFor(
        () => everything.progress.some((m) => m.data.taskId === beside),
        'the other task’s progress',
        30_000,
      );
    },
  );

  it(
    'a tenant reads the progress message without the service provider’s endpoint; an sp-admin reads it whole',
    { timeout: 300_000 },
    async () => {
      const alice = await tenant();
      const says = 'writing to rest:https://cairn:***@backup.sp.example:8000/tenants/acme/data';
      const provider = await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
        name: `sp-repo-${++n}`,
        plugin: '@cairn/plugin-dummy',
        endpoint: 'rest:https://cairn:Passw0rd-51c2@backup.sp.example:8000/tenants/acme',
        config: { durationMs: 3000, steps: 6, progressMessage: says },
        tenantLocators: 'any',
      });
      const offering = await admin.expect(201, 'POST', '/v1/offerings', {
        name: `sp-repo-${n}`,
        zone: 'zone-a',
        providerId: provider.id,
        allowAdhoc: true,
        allowUserSchedules: false,
      });
      await admin.expect(201, 'POST', `/v1/offerings/${offering.id}/grants`, { tenantId: alice.id });
      const inst = await admin.expect(201, 'POST', '/v1/instances', {
        name: `vm-${++n}`,
        zone: 'zone-a',
        locator: { vm: `vm-${n}` },
        tenantId: alice.id,
      });
      await assignOffering(admin, inst.id, offering.id);
      const taskId = await backup(inst.id);
      const asTenant = await stream(alice.token, `?taskId=${taskId}`);
      const asAdmin = await stream(cp.adminToken, `?taskId=${taskId}`);
      await ended(taskId);
      await waitFor(
        () => asTenant.events.some((e) => e.event === 'task.succeeded'),
        'the end on the tenant stream',
        30_000,
      );
      await waitFor(
        () => asAdmin.events.some((e) => e.event === 'task.succeeded'),
        'the end on the admin stream',
        30_000,
      );

      expect(asTenant.progress.length).toBeGreaterThan(0);
      for (const m of asTenant.progress) {
        expect(m.data.message).toContain('<repository>');
        for (const leak of ['backup.sp.example', '/tenants/acme', 'Passw0rd'])
          expect(m.data.message).not.toContain(leak);
      }
      expect(asAdmin.progress.length).toBeGreaterThan(0);
      for (const m of asAdmin.progress) expect(m.data.message).toContain(says);
    },
  );

  it(
    "a stream following one instance gets its events and its tasks' progress only; the sp-admin's stream of one tenant reads what that tenant reads",
    { timeout: 300_000 },
    async () => {
      const alice = await tenant();
      const bob = await tenant();
      const slow = { durationMs: 3000, steps: 6 };
      const mine = await instanceOf(alice, slow);
      const other = await instanceOf(alice, slow);
      const bobs = await instanceOf(bob, slow);
      const watched = await backup(mine);
      const beside = await backup(other);
      const bobTask = await backup(bobs);
      const followed = await stream(alice.token, `?after=0&instanceId=${mine}`);
      const ofAlice = await stream(cp.adminToken, `?after=0&tenantId=${alice.id}`);
      for (const t of [watched, beside, bobTask]) await ended(t);
      await waitFor(
        () => followed.events.some((e) => e.event === 'task.succeeded'),
        'the end on the instance stream',
        30_000,
      );
      await waitFor(
        () => ofAlice.events.filter((e) => e.event === 'task.succeeded').length >= 2,
        "both of alice's ends on the sp-admin's stream of alice",
        30_000,
      );

      // The instance's events and its task's progress, nothing of the other instance.
      expect(followed.events.length).toBeGreaterThan(0);
      expect(followed.events.filter((e) => e.data.instanceId !== mine)).toEqual([]);
      expect(followed.events.map((e) => e.data.taskId)).toContain(watched);
      expect(followed.progress.length).toBeGreaterThan(0);
      expect(followed.progress.filter((p) => p.data.taskId !== watched)).toEqual([]);

      // The sp-admin's stream of alice: alice's events and progress only, both of her tasks, nothing of bob's.
      expect(ofAlice.events.filter((e) => e.data.tenantId !== alice.id)).toEqual([]);
      const tasksSeen = new Set(ofAlice.events.map((e) => e.data.taskId));
      expect(tasksSeen.has(watched) && tasksSeen.has(beside)).toBe(true);
      expect(tasksSeen.has(bobTask)).toBe(false);
      expect(ofAlice.progress.filter((p) => p.data.tenantId !== alice.id)).toEqual([]);
    },
  );

  it(
    'a bad filter is a 400 naming the field; a task or job of another tenant, or none, is a 404',
    { timeout: 120_000 },
    async () => {
      const alice = await tenant();
      const bob = await tenant();
      const inst = await instanceOf(alice, { durationMs: 0 });
      const taskId = await backup(inst);

      for (const [query, field] of [
        ['taskId=nope', 'taskId'],
        ['jobId=tsk_1', 'jobId'],
        ['type=Task%20X', 'type'],
        ['instanceId=ins', 'instanceId'],
        ['tenantId=../x', 'tenantId'],
      ] as const) {
        const r = await alice.api.get(`/v1/events/stream?${query}`);
        expect(r.status, query).toBe(400);
        expect(JSON.stringify(r.body), query).toContain(field);
      }
      // Another tenant's task and a task that does not exist answer alike.
      const foreign = await bob.api.get(`/v1/events/stream?taskId=${taskId}`);
      const missing = await bob.api.get('/v1/events/stream?taskId=tsk_00000000000000000000000000');
      expect(foreign.status).toBe(404);
      expect(missing.status).toBe(404);
      expect(foreign.body.code).toBe(missing.body.code);
      const job = await alice.api.expect(201, 'POST', '/v1/backup-jobs', {
        mode: 'FULL',
        execution: 'SEQUENTIAL',
        name: 'j',
        instanceIds: [inst],
      });
      expect((await bob.api.get(`/v1/events/stream?jobId=${job.id}`)).status).toBe(404);
      // Another tenant's instance, or the other tenant itself, is unknown too; a tenant may name its own.
      const foreignInstance = await bob.api.get(`/v1/events/stream?instanceId=${inst}`);
      expect(foreignInstance.status).toBe(404);
      expect(foreignInstance.body.code).toBe('not_found');
      expect((await bob.api.get(`/v1/events/stream?tenantId=${alice.id}`)).status).toBe(404);
      expect((await admin.get('/v1/events/stream?tenantId=ten_00000000000000000000000000')).status).toBe(404);
      const own = await SseClient.open(cp.url, bob.token, { query: `?tenantId=${bob.id}` });
      open.push(own);
      expect(own.status).toBe(200);
      await ended(taskId);
    },
  );
});

// Several replicas share one database only on MySQL (and show as skipped without it).
describe.runIf(backends.includes('mysql'))('task progress across control-plane replicas', () => {
  // The agent reports through replica A only; the stream is on replica B.
  const stack = withStack('mysql', { replicas: 2, agents: [{ name: 'host-1' }] });

  it('a stream on one replica gets the progress an agent reports through the other', { timeout: 300_000 }, async () => {
    const b = stack.replicas[1]!;
    const viaB = stack.adminOf(b);
    const p = await protectInstance(viaB, 'zone-a', { config: { durationMs: 4000, steps: 8 } });
    const taskId = (await viaB.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)).id as string;
    const s = await SseClient.open(b.url, b.adminToken, { query: `?after=0&taskId=${taskId}` });
    expect(s.status).toBe(200);
    try {
      await waitFor(() => s.events.some((e) => e.event === 'task.succeeded'), 'the end on replica B', 120_000);
      expect(new Set(s.progress.map((m) => m.data.percent)).size).toBeGreaterThanOrEqual(2);
      expect(s.progress.every((m) => m.data.taskId === taskId)).toBe(true);
    } finally {
      s.close();
    }
  });
});
