import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { DEFAULT_MAINTENANCE_MESSAGE, waitingPlaces } from '../domain/maintenance.js';
import type { TaskRow } from '../store/schema.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';

const actor = { tokenId: 'tok_test', role: 'sp-admin' };

describe.each(backends)('maintenance windows, and what maintenance admits (%s)', (backend) => {
  const f = storeFixture(backend, { tasksByHand: true });
  const { tasks, queue, maintenance, maintenanceScopes: scopes, maintenanceGate: gate, events } = f.repos;
  let providerTenant: string;
  let otherTenant: string;
  let providerId: string;

  beforeAll(async () => {
    providerTenant = f.providerTenant;
    otherTenant = (await f.repos.tenants.create('far-away')).id;
    providerId = (await f.provider()).id;
  });

  const backup = (zone: string, pinnedAgentId: string | null = null) =>
    backupTask({ tenantId: providerTenant, providerId, zone, pinnedAgentId, priority: 10 });
  const readyEvents = async (tenantId: string) =>
    (await events.list(0, 1000, tenantId)).rows.filter((e) => e.type === 'maintenance.ready');
  const dispatched = async (task: TaskRow, agentId: string) => {
    const attempt = await queue.claim(task, agentId, Date.now() + 60_000);
    expect(attempt).toBe(1);
    return { ...task, attempt: attempt!, agentId, state: 'dispatched' };
  };

  it('turning a zone on fails its queued backups, waits for the running one, and records ready exactly once', async () => {
    const running = await dispatched(await tasks.create(backup('z1')), 'agt_a');
    const queued = await tasks.create(backup('z1'));
    const elsewhere = await tasks.create(backup('z2'));
    const scope = { kind: 'zone' as const, zone: 'z1' };
    const on = await maintenance.set(scope, { enabled: true, message: 'zone work' }, actor, Date.now());
    expect(on.changed).toBe(true);
    expect(on.row).toMatchObject({ enabled: 1, message: 'zone work', readyAt: null });
    expect(await tasks.get(queued.id)).toMatchObject({
      state: 'failed',
      errorCode: 'maintenance',
      errorMessage: 'zone work',
    });
    expect((await tasks.get(elsewhere.id))!.state).toBe('queued');
    expect(await scopes.running(scope)).toEqual({ backups: 1, other: 0 });
    // The same state again changes nothing and records nothing.
    expect((await maintenance.set(scope, { enabled: true, message: 'zone work' }, actor, Date.now())).changed).toBe(
      false,
    );
    expect(await maintenance.sweepReady()).toBe(0);
    // A queued backup is never claimed in the scope, whichever replica read the queue before.
    const late = await tasks.create(backup('z1'));
    expect(await queue.claim(late, 'agt_a', Date.now() + 60_000)).toBeNull();
    expect(await queue.claim(elsewhere, 'agt_b', Date.now() + 60_000)).toBe(1);

    // The running backup ends: ready in that transaction, once.
    expect(await queue.failAssignment(running, 'AGENT_INTERRUPTED', 'stopped')).toBe(true);
    expect((await scopes.get(scope))!.readyAt).not.toBeNull();
    expect(await maintenance.sweepReady()).toBe(0);
    expect(await readyEvents(providerTenant)).toHaveLength(1);
    // A tenant with nothing in the zone is not told.
    expect(await readyEvents(otherTenant)).toHaveLength(0);
    // Asked, maintenance refuses a backup there and lets one elsewhere start.
    expect(await gate.admit(backup('z1'))).toEqual({ allowed: false, code: 'maintenance', message: 'zone work' });
    expect(await gate.admit(backup('z2'))).toEqual({ allowed: true });
    // A backup queued there before is failed by the dispatcher's look at the queue, once.
    expect((await gate.admitQueued([late], await gate.now())).refused).toEqual([{ task: late, message: 'zone work' }]);
    expect(await gate.admitQueued([late], await gate.now())).toEqual({ admitted: [], refused: [] });
    expect(await tasks.get(late.id)).toMatchObject({ state: 'failed', errorCode: 'maintenance' });

    // Off and on again: a new window, readiness at once (nothing runs there), once more.
    await maintenance.set(scope, { enabled: false, message: 'zone work' }, actor, Date.now());
    const again = await maintenance.set(scope, { enabled: true, message: 'again' }, actor, Date.now());
    expect(again.row!.readyAt).not.toBeNull();
    expect(await readyEvents(providerTenant)).toHaveLength(2);
  });

  it('keeps queued deletes and prunes waiting (not failed, never claimed) and is ready only once a running prune ends', async () => {
    const scope = { kind: 'zone' as const, zone: 'z4' };
    const prune = await dispatched(await tasks.create({ ...backup('z4'), kind: 'prune' }), 'agt_p');
    const del = await tasks.create({ ...backup('z4', 'agt_p'), kind: 'delete-backup' });
    const configure = await tasks.create({ ...backup('z4'), kind: 'configure-schedule' });
    const restore = await tasks.create({ ...backup('z4'), kind: 'restore' });
    await maintenance.set(scope, { enabled: true, message: 'storage work' }, actor, Date.now());
    expect(await scopes.running(scope)).toEqual({ backups: 0, other: 1 });
    expect((await scopes.get(scope))!.readyAt).toBeNull();
    // The queue's head passes over what waits there (a backlog of deletes never fills the window).
    const head = (await queue.queueHead(500, 500, waitingPlaces([{ scope, message: 'storage work' }]))).map(
      (t) => t.id,
    );
    expect(head).toContain(restore.id);
    expect(head).not.toContain(del.id);
    expect(head).not.toContain(configure.id);
    for (const t of [del, configure]) {
      expect((await tasks.get(t.id))!.state).toBe('queued');
      expect(await queue.claim(t, 'agt_p', Date.now() + 60_000)).toBeNull();
    }
    // A restore is not held back.
    expect(await queue.claim(restore, 'agt_p', Date.now() + 60_000)).toBe(1);
    expect(await queue.failAssignment(prune, 'AGENT_INTERRUPTED', 'stopped')).toBe(true);
    expect((await scopes.get(scope))!.readyAt).not.toBeNull();
    // The window ends: the delete waited and is claimed now.
    await maintenance.set(scope, { enabled: false, message: 'storage work' }, actor, Date.now());
    expect(await queue.claim(del, 'agt_p', Date.now() + 60_000)).toBe(1);
  });

  it('holds back only the work pinned to an agent in maintenance: a delete pinned to no agent goes on elsewhere', async () => {
    const scope = { kind: 'agent' as const, agentId: 'agt_m' };
    const pinned = await tasks.create({ ...backup('z5', 'agt_m'), kind: 'delete-backup' });
    const unpinned = await tasks.create({ ...backup('z5'), kind: 'delete-backup' });
    const elsewhere = await tasks.create({ ...backup('z6', 'agt_other'), kind: 'prune' });
    const head = (await queue.queueHead(500, 500, waitingPlaces([{ scope, message: 'host work' }]))).map((t) => t.id);
    expect(head).not.toContain(pinned.id);
    // Passed over before (a pin of no agent compared as unknown), while any one agent was in maintenance.
    expect(head).toContain(unpinned.id);
    expect(head).toContain(elsewhere.id);
  });

  it('the sweep records readiness a task end could not see (both ended at once elsewhere)', async () => {
    const scope = { kind: 'agent' as const, agentId: 'agt_s' };
    const a = await dispatched(await tasks.create(backup('z3', 'agt_s')), 'agt_s');
    await maintenance.set(scope, { enabled: true, message: 'agent work' }, actor, Date.now());
    // The task ends without the hook (as if its transaction could not yet see the window).
    await f.store.db
      .updateTable('tasks')
      .set({ state: 'failed', endedAt: Date.now() })
      .where('id', '=', a.id)
      .execute();
    expect((await scopes.get(scope))!.readyAt).toBeNull();
    expect(await maintenance.sweepReady()).toBe(1);
    expect(await maintenance.sweepReady()).toBe(0);
    const global = (await events.list(0, 1000, providerTenant)).rows.filter(
      (e) => e.type === 'maintenance.ready' && e.agentId === 'agt_s',
    );
    expect(global).toHaveLength(1);
  });

  /** Lock waits on this database's tasks table now (MariaDB's information_schema, else MySQL 8's performance_schema). */
  const lockWaitsOnTasks = async (): Promise<number> => {
    const db = f.store.db;
    try {
      const r = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM information_schema.INNODB_LOCK_WAITS w
        JOIN information_schema.INNODB_LOCKS l ON l.lock_id = w.requested_lock_id
        WHERE l.lock_table = CONCAT('\`', DATABASE(), '\`.\`tasks\`')`.execute(db);
      return Number(r.rows[0]!.n);
    } catch {
      const r = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM performance_schema.data_lock_waits w
        JOIN performance_schema.data_locks l ON l.ENGINE_LOCK_ID = w.REQUESTING_ENGINE_LOCK_ID
        WHERE l.OBJECT_SCHEMA = DATABASE() AND l.OBJECT_NAME = 'tasks'`.execute(db);
      return Number(r.rows[0]!.n);
    }
  };

  // MySQL/MariaDB only: SQLite has one writer, so an open write transaction holds everything.
  it.skipIf(backend !== 'mysql')(
    'turning maintenance on takes no lock on the running tasks a report batch is updating',
    async () => {
      const scope = { kind: 'zone' as const, zone: 'z5' };
      const running = await dispatched(await tasks.create(backup('z5')), 'agt_l');
      const queued = await tasks.create(backup('z5'));
      // A report batch's transaction, holding the running task's row until told to commit.
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const batch = f.store.db.transaction().execute(async (trx) => {
        await trx.updateTable('tasks').set({ percent: 50 }).where('id', '=', running.id).execute();
        locked();
        await released;
      });
      await isLocked;
      // Turning the zone on must finish while that row stays locked; a lock wait on it means the
      // request would queue behind (and deadlock with) every report batch under load.
      let done = false;
      const on = maintenance.set(scope, { enabled: true, message: 'under load' }, actor, Date.now()).finally(() => {
        done = true;
      });
      let waited = false;
      while (!done && !waited) {
        waited = (await lockWaitsOnTasks()) > 0;
        await new Promise((r) => setTimeout(r, 10));
      }
      release();
      await batch;
      expect(waited ? "the set waited for a running task's lock" : 'no lock wait').toBe('no lock wait');
      const { row } = await on;
      expect(row).toMatchObject({ enabled: 1, readyAt: null });
      expect((await tasks.get(queued.id))!.state).toBe('failed');
      // The running one ends: ready then, once.
      expect(await queue.failAssignment({ ...running, percent: 50 } as TaskRow, 'AGENT_INTERRUPTED', 'stopped')).toBe(
        true,
      );
      expect((await scopes.get(scope))!.readyAt).not.toBeNull();
    },
  );

  it('global touches every tenant; active lists API scopes, host drains and the agents of zones with an agent in either', async () => {
    await maintenance.set({ kind: 'global' }, { enabled: true, message: 'all' }, actor, Date.now());
    expect((await events.list(0, 1000, otherTenant)).rows.filter((e) => e.type === 'maintenance.enabled')).toHaveLength(
      1,
    );
    const agent = (id: string, zone: string, drainMessage: string | null, revokedAt: number | null = null) => ({
      id,
      name: id,
      zone,
      hostname: 'h',
      credentialHash: `hash-${id}`,
      state: 'disconnected',
      sessionId: null,
      slots: 1,
      plugins: JSON.stringify([{ name: 'dummy', version: '1', apiVersion: 1, capabilities: ['backup'] }]),
      agentVersion: '1',
      draining: drainMessage === null ? 0 : 1,
      drainMessage,
      lastSeenAt: null,
      createdAt: 0,
      revokedAt,
      pendingCredentialHash: null,
      pendingCredentialEnc: null,
      rotationRequestedAt: null,
      credentialRotatedAt: null,
    });
    await f.store.db
      .insertInto('agents')
      .values([
        agent('agt_d2', 'zd', null),
        agent('agt_d1', 'zd', 'host work'),
        agent('agt_d3', 'zd', '', Date.now()),
        agent('agt_e1', 'ze', null),
        agent('agt_f1', 'zf', ''),
        agent('agt_g1', 'zg', null),
        agent('agt_g2', 'zg', null),
        agent('agt_h1', 'zh', null),
        agent('agt_i1', 'zi', null, Date.now()),
      ])
      .execute();
    // Agent windows set through the API: on (one also drained on its host), turned off again, on a deleted agent.
    const window = (agentId: string, enabled: boolean, message: string) =>
      maintenance.set({ kind: 'agent', agentId }, { enabled, message }, actor, Date.now());
    await window('agt_g1', true, 'api work');
    await window('agt_d1', true, 'api on a drained agent');
    await window('agt_h1', true, 'over');
    await window('agt_h1', false, 'over');
    await window('agt_i1', true, 'deleted');
    const { active } = await gate.now();
    expect(active.scopes).toContainEqual({ scope: { kind: 'global' }, message: 'all' });
    expect(active.scopes).toContainEqual({ scope: { kind: 'agent', agentId: 'agt_s' }, message: 'agent work' });
    expect(active.scopes).toContainEqual({ scope: { kind: 'agent', agentId: 'agt_d1' }, message: 'host work' });
    // The agents of the zones with a host drain or an agent's API window on (none deleted), by id,
    // with both messages; a blank drain message is the default.
    const dummy = [expect.objectContaining({ name: 'dummy' })];
    expect(active.agents).toEqual([
      { id: 'agt_d1', zone: 'zd', plugins: dummy, apiWindow: 'api on a drained agent', hostDrain: 'host work' },
      { id: 'agt_d2', zone: 'zd', plugins: dummy, apiWindow: null, hostDrain: null },
      { id: 'agt_f1', zone: 'zf', plugins: dummy, apiWindow: null, hostDrain: DEFAULT_MAINTENANCE_MESSAGE },
      { id: 'agt_g1', zone: 'zg', plugins: dummy, apiWindow: 'api work', hostDrain: null },
      { id: 'agt_g2', zone: 'zg', plugins: dummy, apiWindow: null, hostDrain: null },
    ]);
    await maintenance.set({ kind: 'global' }, { enabled: false, message: 'all' }, actor, Date.now());
    expect(
      (await events.list(0, 1000, otherTenant)).rows.filter((e) => e.type === 'maintenance.disabled'),
    ).toHaveLength(1);
  });
});
