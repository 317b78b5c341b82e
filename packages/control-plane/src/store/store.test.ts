import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { migrate } from './db.js';
import type { Report } from '../domain/report-outcome.js';
import { testReports } from '../testing/reports.js';
import { ReportRepository } from './report-repository.js';
import { backupTask as newBackup, storeFixture } from '../testing/store-fixture.js';

const LEASE = 60_000;

describe.each(backends)('task store (%s)', (backend) => {
  const f = storeFixture(backend);
  const { tasks, queue, reports, backups, catalog } = f.repos;
  let tenantId: string;
  let agentId: string;
  let otherAgentId: string;
  let providerId: string;
  let offeringId: string;

  beforeAll(async () => {
    await migrate(f.store.db); // a second run is a no-op
    tenantId = f.providerTenant;
    expect(await f.repos.tenants.ensureProviderTenant()).toBe(tenantId);
    agentId = await f.agent('a1', 'h1');
    otherAgentId = await f.agent('a2', 'h2');
    providerId = (await f.provider({ credentials: { password: 'hunter2-very-secret' } })).id;
    offeringId = (await f.offering({ providerId })).id;
  });

  async function backupTask(instanceId?: string, owner: string = tenantId, priority = 0) {
    const instance = instanceId ?? (await f.instance({ tenantId: owner })).id;
    return tasks.create(newBackup({ tenantId: owner, instanceId: instance, offeringId, providerId, priority }));
  }

  const ok = (taskId: string, attempt: number, seq: number): Report => ({
    kind: 'result',
    seq,
    taskId,
    attempt,
    at: Date.now(),
    outcome: {
      ok: true,
      backup: { externalId: `ext-${seq}`, sizeBytes: 10, addedBytes: 10, mode: 'FULL', parentExternalId: '' },
      output: null,
    },
  });

  it('keeps provider credentials encrypted at rest and opens them for the agent', async () => {
    const row = (await catalog.getProvider(providerId))!;
    expect(row.credentialsEnc).not.toContain('hunter2');
    expect(catalog.connectionFor(row).credentials).toEqual({ password: 'hunter2-very-secret' });
  });

  it("carries the export target's connection in a task's connection, as it is at dispatch, never the other way", async () => {
    const target = await f.provider({
      name: 'export-target',
      plugin: '@cairn/plugin-restic',
      endpoint: '/srv/export',
      credentials: { password: 'export-secret' },
    });
    const exporter = await f.provider({ name: 'exporter', exportTo: target.id });
    const carried = await catalog.taskConnectionFor((await catalog.getProvider(exporter.id))!);
    expect(carried.exportTo).toEqual({
      plugin: '@cairn/plugin-restic',
      endpoint: '/srv/export',
      config: {},
      credentials: { password: 'export-secret' },
    });
    await catalog.updateProvider(target.id, { endpoint: '/srv/moved' });
    expect((await catalog.taskConnectionFor((await catalog.getProvider(exporter.id))!)).exportTo?.endpoint).toBe(
      '/srv/moved',
    );
    expect(await catalog.taskConnectionFor((await catalog.getProvider(target.id))!)).not.toHaveProperty('exportTo');
  });

  it('records the repository identity a task reports on its connection, only while none is, and shows it to no one', async () => {
    const identityEvent = (taskId: string, seq: number, data: string | null): Report => ({
      kind: 'event',
      seq,
      taskId,
      attempt: 1,
      type: 'repository.identity',
      message: 'repository identity',
      data,
      at: Date.now(),
    });
    const task = await backupTask();
    await queue.claim(task, agentId, Date.now() + LEASE);
    const recorded = async () => (await catalog.getProvider(providerId))!.repositoryIdentity;
    expect(await recorded()).toBeNull();
    expect(catalog.connectionFor((await catalog.getProvider(providerId))!)).not.toHaveProperty('identity');
    // Reports that name no usable identity record nothing.
    await reports.apply(agentId, [identityEvent(task.id, 300, '{"identity":""}'), identityEvent(task.id, 301, null)]);
    expect(await recorded()).toBeNull();
    await reports.apply(agentId, [identityEvent(task.id, 302, JSON.stringify({ identity: 'repo-1' }))]);
    expect(await recorded()).toBe('repo-1');
    expect(catalog.connectionFor((await catalog.getProvider(providerId))!).identity).toBe('repo-1');
    // The first contact decides: another report does not move it.
    await reports.apply(agentId, [identityEvent(task.id, 303, JSON.stringify({ identity: 'repo-2' }))]);
    expect(await recorded()).toBe('repo-1');
    const events = await f.store.db.selectFrom('events').select('type').where('taskId', '=', task.id).execute();
    expect(events.map((e) => e.type)).not.toContain('repository.identity');
    // Cleared by an SP admin, the next report records the new one.
    await catalog.updateProvider(providerId, { repositoryIdentity: null });
    expect(await recorded()).toBeNull();
    await reports.apply(agentId, [identityEvent(task.id, 304, JSON.stringify({ identity: 'repo-2' }))]);
    expect(await recorded()).toBe('repo-2');
    await catalog.updateProvider(providerId, { repositoryIdentity: null });
  });

  it('lets only one claim of a queued task win, and numbers the attempt', async () => {
    const task = await backupTask();
    const [a, b] = await Promise.all([
      queue.claim(task, agentId, Date.now() + LEASE),
      queue.claim(task, otherAgentId, Date.now() + LEASE),
    ]);
    expect([a, b].filter((x) => x === 1)).toHaveLength(1);
    expect([a, b].filter((x) => x === null)).toHaveLength(1);
    expect((await tasks.get(task.id))!.attempt).toBe(1);
  });

  it('writes one backup record however often the same result arrives', async () => {
    const task = await backupTask();
    expect(await queue.claim(task, agentId, Date.now() + LEASE)).toBe(1);
    await reports.apply(agentId, [{ kind: 'accepted', seq: 1, taskId: task.id, attempt: 1, at: Date.now() }]);
    await reports.apply(agentId, [ok(task.id, 1, 2)]);
    await reports.apply(agentId, [ok(task.id, 1, 2)]);
    await reports.apply(agentId, [ok(task.id, 1, 3)]);
    const recorded = await backups.list({ limit: 10 }, { instanceId: task.instanceId! });
    expect(recorded.items).toHaveLength(1);
    expect((await tasks.get(task.id))!.state).toBe('succeeded');
  });

  it('stores a progress report once even when it is re-sent', async () => {
    const task = await backupTask();
    await queue.claim(task, agentId, Date.now() + LEASE);
    const progress: Report = {
      kind: 'progress',
      seq: 40,
      taskId: task.id,
      attempt: 1,
      percent: 50,
      bytesDone: 5,
      bytesTotal: 10,
      message: 'half',
      at: Date.now(),
    };
    await reports.apply(agentId, [progress, progress]);
    await reports.apply(agentId, [progress]);
    expect((await tasks.progress(task.id, { limit: 50 })).items).toHaveLength(1);
    const row = (await tasks.get(task.id))!;
    expect(row).toMatchObject({ state: 'running', percent: 50, bytesDone: 5, bytesTotal: 10 });
  });

  it('applies the reports of one tick as it would one by one, a progress report whose newer one the tick ignores included', async () => {
    // F5's counterexample (test/faults/report-model.test.ts): the newest progress of the tick came
    // after the result and was ignored, and the older one, stored, had not moved the task.
    const { progress, accepted, failed } = testReports;
    // Progress is unique per agent and spool seq: each task's reports have seqs of their own.
    const tick = (id: string, seq: number) => [
      progress(id, seq, 40),
      accepted(id, seq + 1),
      failed(id, seq + 2),
      progress(id, seq + 3, 70),
    ];
    const outcome = async (id: string) => {
      const row = (await tasks.get(id))!;
      const started = await f.store.db
        .selectFrom('events')
        .select('id')
        .where('taskId', '=', id)
        .where('type', '=', 'task.started')
        .execute();
      const stored = (await tasks.progress(id, { limit: 50 })).items.map((p) => p.message);
      return { state: row.state, percent: row.percent, started: started.length, stored };
    };
    const batched = await backupTask();
    await queue.claim(batched, agentId, Date.now() + LEASE);
    await reports.apply(agentId, tick(batched.id, 7010));
    const single = await backupTask();
    await queue.claim(single, agentId, Date.now() + LEASE);
    for (const r of tick(single.id, 7020)) await reports.apply(agentId, [r]);
    // The first progress started the task (no start event after it), the result ended it at 40%,
    // and the progress after the result is neither stored nor shown.
    const want = { state: 'failed', percent: 40, started: 0, stored: ['at 40'] };
    expect(await outcome(single.id)).toEqual(want);
    expect(await outcome(batched.id)).toEqual(want);
  });

  it('ignores reports of a superseded attempt and reports from another agent', async () => {
    const task = await backupTask();
    await queue.claim(task, agentId, Date.now() + LEASE);
    // The agent gives it back; it is claimed again under attempt 2.
    await reports.apply(agentId, [
      {
        kind: 'rejected',
        seq: 50,
        taskId: task.id,
        attempt: 1,
        reasonCode: 'NO_SLOT',
        message: 'busy',
        at: Date.now(),
      },
    ]);
    const requeued = (await tasks.get(task.id))!;
    expect(requeued.state).toBe('queued');
    expect(await queue.claim(requeued, agentId, Date.now() + LEASE)).toBe(2);
    await reports.apply(agentId, [ok(task.id, 1, 51)]);
    await reports.apply(otherAgentId, [ok(task.id, 2, 52)]);
    expect((await tasks.get(task.id))!.state).toBe('dispatched');
    expect((await backups.list({ limit: 10 }, { instanceId: task.instanceId! })).items).toHaveLength(0);
    await reports.apply(agentId, [ok(task.id, 2, 53)]);
    expect((await tasks.get(task.id))!.state).toBe('succeeded');
  });

  it("reads and stores a tick's progress for several agents at once, each agent's older report moving nothing", async () => {
    const { progress } = testReports;
    const mine = await backupTask();
    await queue.claim(mine, agentId, Date.now() + LEASE);
    const theirs = await backupTask();
    await queue.claim(theirs, otherAgentId, Date.now() + LEASE);
    // Spool seqs are each agent's own: both agents send seq 9100.
    await reports.apply(agentId, [progress(mine.id, 9100, 60)]);
    await reports.applyTick([
      { agentId, reports: [progress(mine.id, 9099, 30)] },
      { agentId: otherAgentId, reports: [progress(theirs.id, 9100, 50), progress(theirs.id, 9101, 55)] },
    ]);
    expect((await tasks.get(mine.id))!.percent).toBe(60);
    expect((await tasks.get(theirs.id))!.percent).toBe(55);
    const stored = async (id: string) => (await tasks.progress(id, { limit: 50 })).items.map((p) => p.message).sort();
    expect(await stored(mine.id)).toEqual(['at 30', 'at 60']);
    expect(await stored(theirs.id)).toEqual(['at 50', 'at 55']);
  });

  it('moves many tasks in one statement, each to its own values, fenced as one move is', async () => {
    const held = [await backupTask(), await backupTask(), await backupTask()];
    for (const t of held) await queue.claim(t, agentId, Date.now() + LEASE);
    const others = await backupTask();
    await queue.claim(others, otherAgentId, Date.now() + LEASE);
    const queued = await backupTask();
    const fence = (id: string, agent = agentId) => ({ taskId: id, agentId: agent, attempt: 1 });
    const moves = [
      { fence: fence(held[0]!.id), changes: { percent: 100 / 3, bytesDone: 2 ** 40 + 1, progressMessage: 'first' } },
      { fence: fence(held[1]!.id), changes: { percent: 20.5, bytesDone: 200, progressMessage: null } },
      // Another field set: its own statement; percent and bytes left as they are.
      { fence: fence(held[2]!.id), changes: { progressMessage: "it's third", etaSeconds: 7, percent: undefined } },
      // Held by another agent, under another attempt, in a state not left: none moves.
      { fence: fence(others.id), changes: { percent: 99, bytesDone: 1, progressMessage: 'not yours' } },
      { fence: { ...fence(held[0]!.id), attempt: 2 }, changes: { percent: 98, bytesDone: 1, progressMessage: 'old' } },
      { fence: fence(queued.id), changes: { percent: 97, bytesDone: 1, progressMessage: 'queued' } },
    ];
    const moved = await f.store.db
      .transaction()
      .execute((trx) => new ReportRepository().moveMany(trx, ['dispatched'], moves));
    expect(moved).toBe(3);
    const row = async (id: string) => {
      const t = (await tasks.get(id))!;
      return { percent: t.percent, bytesDone: t.bytesDone, message: t.progressMessage, eta: t.etaSeconds };
    };
    // Each value as it was sent, whatever the other rows' values (a union's columns take one type).
    expect(await row(held[0]!.id)).toEqual({ percent: 100 / 3, bytesDone: 2 ** 40 + 1, message: 'first', eta: null });
    expect(await row(held[1]!.id)).toEqual({ percent: 20.5, bytesDone: 200, message: null, eta: null });
    expect(await row(held[2]!.id)).toEqual({ percent: 0, bytesDone: 0, message: "it's third", eta: 7 });
    for (const t of [others, queued])
      expect(await row(t.id)).toEqual({ percent: 0, bytesDone: 0, message: null, eta: null });
  });

  it('never moves a running task back to the queue, whatever the agent says', async () => {
    const task = await backupTask();
    await queue.claim(task, agentId, Date.now() + LEASE);
    await reports.apply(agentId, [{ kind: 'accepted', seq: 80, taskId: task.id, attempt: 1, at: Date.now() }]);
    await reports.apply(agentId, [
      {
        kind: 'rejected',
        seq: 81,
        taskId: task.id,
        attempt: 1,
        reasonCode: 'NO_SLOT',
        message: 'late',
        at: Date.now(),
      },
    ]);
    expect(await tasks.get(task.id)).toMatchObject({ state: 'running', agentId, attempt: 1 });
  });

  it('fails a task an agent cannot run at all, with the agent reason as code', async () => {
    const task = await backupTask();
    await queue.claim(task, agentId, Date.now() + LEASE);
    await reports.apply(agentId, [
      {
        kind: 'rejected',
        seq: 60,
        taskId: task.id,
        attempt: 1,
        reasonCode: 'NO_PLUGIN',
        message: 'plugin x is not loaded',
        at: Date.now(),
      },
    ]);
    expect(await tasks.get(task.id)).toMatchObject({
      state: 'failed',
      errorCode: 'NO_PLUGIN',
      errorMessage: 'plugin x is not loaded',
    });
  });

  it('marks held tasks lost once their lease ran out, and a late result changes nothing', async () => {
    const task = await backupTask();
    const now = Date.now();
    await queue.claim(task, agentId, now - 1, now - 10);
    const lost = await queue.expireLeases(now);
    expect(lost.map((t) => t.id)).toContain(task.id);
    expect(await tasks.get(task.id)).toMatchObject({ state: 'lost', errorCode: 'AGENT_LOST' });
    await reports.apply(agentId, [ok(task.id, 1, 70)]);
    expect((await tasks.get(task.id))!.state).toBe('lost');
    expect((await backups.list({ limit: 10 }, { instanceId: task.instanceId! })).items).toHaveLength(0);
  });

  it("renews many agents' presence and leases in one heartbeat transaction; a revoked or unknown agent renews nothing", async () => {
    const agents = f.repos.agents;
    const [beating, rotating, revoked] = [await f.agent('hb-1'), await f.agent('hb-2'), await f.agent('hb-3')];
    const held = [await backupTask(), await backupTask(), await backupTask()];
    const now = Date.now();
    for (const [i, id] of [beating, rotating, revoked].entries()) await queue.claim(held[i]!, id, now + 1_000);
    await agents.requestRotation(rotating);
    await agents.revoke(revoked);
    const answers = await agents.heartbeats([beating, rotating, revoked, 'agt_unknown'], now + LEASE, now);
    expect(Object.fromEntries(answers)).toEqual({
      [beating]: { revoked: false, rotationPending: false },
      [rotating]: { revoked: false, rotationPending: true },
      [revoked]: { revoked: true, rotationPending: false },
      agt_unknown: { revoked: true, rotationPending: false },
    });
    const leases = await Promise.all(held.map(async (t) => (await tasks.get(t.id))!.leaseExpiresAt));
    expect(leases).toEqual([now + LEASE, now + LEASE, now + 1_000]);
    const seen = async (id: string) =>
      (await f.store.db.selectFrom('agents').select('lastSeenAt').where('id', '=', id).executeTakeFirstOrThrow())
        .lastSeenAt;
    expect(await seen(beating)).toBe(now);
    expect(await seen(revoked)).not.toBe(now);
  });

  it('does not offer a task of an instance that already has one held', async () => {
    const first = await backupTask();
    const second = await backupTask(first.instanceId!);
    await queue.claim(first, agentId, Date.now() + LEASE);
    const head = await queue.queueHead(1000);
    expect(head.map((t) => t.id)).not.toContain(second.id);
  });

  it("keeps room in the dispatcher's window for every tenant, however much one tenant queued", async () => {
    const other = (await f.repos.tenants.create(`quiet-${backend}`)).id;
    const before = new Set((await queue.queueHead(10_000)).map((t) => t.id));
    for (let i = 0; i < 30; i++) await backupTask();
    const quiet = await backupTask(undefined, other);
    const ids = (head: { id: string }[]) => head.map((t) => t.id).filter((id) => !before.has(id));
    // The window takes every tenant's first task before anyone's second: the quiet tenant is in
    // even without a per-tenant cap; the cap bounds what the flood takes.
    expect(ids(await queue.queueHead(10 + before.size))).toContain(quiet.id);
    const fair = await queue.queueHead(10 + before.size, 5);
    expect(ids(fair)).toContain(quiet.id);
    expect(fair.filter((t) => t.tenantId === tenantId && !before.has(t.id)).length).toBeLessThanOrEqual(5);
  });

  it("keeps room in the window for a tenant's priority 0 however many priorities another tenant's flood spreads over", async () => {
    const repo = f.repos.tenants;
    const flood = (await repo.create(`spread-${backend}`)).id;
    const quiet = (await repo.create(`low-${backend}`)).id;
    const before = new Set((await queue.queueHead(10_000)).map((t) => t.id));
    // One task at each priority 49 down to 10: each alone at its priority.
    for (let p = 49; p >= 10; p--) await backupTask(undefined, flood, p);
    const low = await backupTask(undefined, quiet, 0);
    const sla = await backupTask(undefined, quiet, 90);
    const head = (await queue.queueHead(10 + before.size, 5)).filter((t) => !before.has(t.id));
    // The provider's band leads; the quiet tenant's priority 0 is in; the flood has its 5 highest.
    expect(head[0]!.id).toBe(sla.id);
    expect(head.map((t) => t.id)).toContain(low.id);
    expect(head.filter((t) => t.tenantId === flood).map((t) => t.priority)).toEqual([49, 48, 47, 46, 45]);
  });
});
