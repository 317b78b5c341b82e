import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { CompiledQuery } from 'kysely';
import { openStore } from './db.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';
import { scopeKey } from '../domain/maintenance.js';

const LEASE = 60_000;

describe.each(backends)('claims in batches (%s)', (backend) => {
  const f = storeFixture(backend);
  const { tasks, queue } = f.repos;
  let tenantId: string;
  let providerId: string;
  let offeringId: string;

  beforeAll(async () => {
    tenantId = f.providerTenant;
    providerId = (await f.provider()).id;
    offeringId = (await f.offering({ providerId })).id;
  });

  async function queued(n: number) {
    const made = [];
    for (let i = 0; i < n; i++) {
      const instanceId = (await f.instance({ tenantId })).id;
      made.push(await tasks.create(backupTask({ tenantId, instanceId, offeringId, providerId })));
    }
    return made;
  }

  it('claims a batch in one go, and two replicas claiming the same tasks at once never claim one twice', async () => {
    const [a, b] = [await f.agent('claim-a', 'ha'), await f.agent('claim-b', 'hb')];
    // SQLite serves one process (replicas need MySQL): a second handle in this same process would
    // only wait on the first one's write lock, so there both claims go through the one handle.
    const other = backend === 'mysql' ? await f.replica() : f.repos;
    const batch = await queued(20);
    const lease = Date.now() + LEASE;
    const [wonA, wonB] = await Promise.all([
      queue.claimMany(
        batch.map((task) => ({ task, agentId: a })),
        lease,
      ),
      other.queue.claimMany(
        [...batch].reverse().map((task) => ({ task, agentId: b })),
        lease,
      ),
    ]);
    const both = [...wonA.keys()].filter((id) => wonB.has(id));
    expect(both).toEqual([]);
    expect(wonA.size + wonB.size).toBe(20);
    for (const task of batch) {
      const row = (await tasks.get(task.id))!;
      expect(row).toMatchObject({ state: 'dispatched', attempt: 1, agentId: wonA.has(task.id) ? a : b });
    }
    // Claimed already: a second batch over them wins none.
    expect(
      (
        await queue.claimMany(
          batch.map((task) => ({ task, agentId: a })),
          lease,
        )
      ).size,
    ).toBe(0);
  });

  it('claims for several agents in one go: none for an agent in maintenance, a stale or repeated claim once at most', async () => {
    const [free, held] = [await f.agent('claim-free', 'hf'), await f.agent('claim-held', 'hh')];
    await f.store.db
      .insertInto('maintenanceScopes')
      .values({
        scopeKey: scopeKey({ kind: 'agent', agentId: held }),
        kind: 'agent',
        zone: null,
        agentId: held,
        enabled: 1,
        message: 'patching',
        setBy: null,
        setAt: Date.now(),
        readyAt: null,
      })
      .execute();
    const [a, b, c, d, stale] = await queued(5);
    // Read before another claim moved it on: its attempt is behind.
    await queue.claim(stale!, free, Date.now() + LEASE);
    const won = await queue.claimMany(
      [
        { task: a!, agentId: free },
        { task: b!, agentId: held },
        { task: c!, agentId: free },
        { task: a!, agentId: held },
        { task: d!, agentId: held },
        { task: stale!, agentId: free },
      ],
      Date.now() + LEASE,
    );
    expect([...won].sort()).toEqual(
      [
        [a!.id, 1],
        [c!.id, 1],
      ].sort(),
    );
    for (const t of [a!, c!])
      expect(await tasks.get(t.id)).toMatchObject({ state: 'dispatched', agentId: free, attempt: 1 });
    for (const t of [b!, d!])
      expect(await tasks.get(t.id)).toMatchObject({ state: 'queued', agentId: null, attempt: 0 });
    expect(await tasks.get(stale!.id)).toMatchObject({ state: 'dispatched', attempt: 1 });
  });

  it('counts the first send with the claim, and each later send of an assignment still at its attempt and agent, in one go', async () => {
    const agentId = await f.agent('claim-sends', 'hc');
    const batch = await queued(3);
    const won = await queue.claimMany(
      batch.map((task) => ({ task, agentId })),
      Date.now() + LEASE,
    );
    expect(won.size).toBe(3);
    const rows = await Promise.all(batch.map(async (t) => (await tasks.get(t.id))!));
    // The claim counted each assignment's first send.
    expect(rows.map((r) => r.deliveries)).toEqual([1, 1, 1]);
    // The first moved on meanwhile (given back to the queue), the second is named with another agent.
    await f.store.db
      .updateTable('tasks')
      .set({ state: 'queued', agentId: null })
      .where('id', '=', rows[0]!.id)
      .execute();
    const counted = await queue.recordDeliveries([rows[0]!, { ...rows[1]!, agentId: 'agt_other' }, rows[2]!]);
    expect([...counted]).toEqual([rows[2]!.id]);
    const deliveries = async (id: string) => (await tasks.get(id))!.deliveries;
    expect([await deliveries(rows[0]!.id), await deliveries(rows[1]!.id), await deliveries(rows[2]!.id)]).toEqual([
      1, 1, 2,
    ]);
    // All still where they were sent: all counted, by one statement.
    expect([...(await queue.recordDeliveries([rows[2]!]))]).toEqual([rows[2]!.id]);
    expect(await deliveries(rows[2]!.id)).toBe(3);
  });

  it.runIf(backend === 'mysql')(
    'passes over a task another replica holds locked (SKIP LOCKED) instead of waiting for it',
    async () => {
      const agentId = await f.agent('claim-skip', 'hs');
      const [held, free] = await queued(2);
      const replica = openStore(f.tdb.url);
      try {
        let wonMeanwhile: Map<string, number> | undefined;
        await replica.db.transaction().execute(async (trx) => {
          await trx.selectFrom('tasks').select('id').where('id', '=', held!.id).forUpdate().execute();
          // While the other replica's lock lasts: without SKIP LOCKED this would wait for it (and
          // time out after innodb_lock_wait_timeout, failing the test).
          wonMeanwhile = await queue.claimMany(
            [held!, free!].map((task) => ({ task, agentId })),
            Date.now() + LEASE,
          );
        });
        expect([...wonMeanwhile!.keys()]).toEqual([free!.id]);
        expect((await tasks.get(held!.id))!.state).toBe('queued');
        // Once the lock is gone, the task passed over is claimed as usual.
        expect(await queue.claim(held!, agentId, Date.now() + LEASE)).toBe(1);
      } finally {
        await replica.close();
      }
    },
  );

  it('claims no task of an instance that has one held, and of two for one idle instance only the first', async () => {
    const agentId = await f.agent('claim-instance', 'hi');
    const [busyId, idleId] = [(await f.instance({ tenantId })).id, (await f.instance({ tenantId })).id];
    const make = (instanceId: string) => tasks.create(backupTask({ tenantId, instanceId, offeringId, providerId }));
    const running = await make(busyId);
    const [waiting, first, second] = [await make(busyId), await make(idleId), await make(idleId)];
    const lease = Date.now() + LEASE;
    expect(await queue.claim(running, agentId, lease)).toBe(1);
    const won = await queue.claimMany(
      [waiting, first, second].map((task) => ({ task, agentId })),
      lease,
    );
    expect([...won.keys()]).toEqual([first.id]);
    for (const t of [waiting, second]) expect(await tasks.get(t.id)).toMatchObject({ state: 'queued', attempt: 0 });
    // Claimed alone later, while the first holds the instance: still not.
    expect(await queue.claim(second, agentId, lease)).toBeNull();
  });

  it('never runs two tasks of one instance when two replicas claim them at once', async () => {
    const [a, b] = [await f.agent('claim-pair-a', 'hpa'), await f.agent('claim-pair-b', 'hpb')];
    // SQLite serves one process: there both claims go through the one handle (see above).
    const other = backend === 'mysql' ? await f.replica() : f.repos;
    const pairs = [];
    for (let i = 0; i < 10; i++) {
      const instanceId = (await f.instance({ tenantId })).id;
      const make = () => tasks.create(backupTask({ tenantId, instanceId, offeringId, providerId }));
      pairs.push([await make(), await make()] as const);
    }
    const lease = Date.now() + LEASE;
    // Each replica claims the other task of every instance, in opposite orders.
    const [wonA, wonB] = await Promise.all([
      queue.claimMany(
        pairs.map(([x]) => ({ task: x, agentId: a })),
        lease,
      ),
      other.queue.claimMany(
        [...pairs].reverse().map(([, y]) => ({ task: y, agentId: b })),
        lease,
      ),
    ]);
    expect(wonA.size + wonB.size).toBe(pairs.length);
    for (const [x, y] of pairs) {
      const states = [(await tasks.get(x.id))!.state, (await tasks.get(y.id))!.state].sort();
      expect(states).toEqual(['dispatched', 'queued']);
    }
  });
});

describe('a claim on SQLite, with a backlog', () => {
  let watching = false;
  const statements: string[] = [];
  const f = storeFixture('sqlite', { observe: (text) => void (watching && statements.push(text)) });

  it("looks its tasks up by id, not through the queue's index over every queued task", async () => {
    const tenantId = f.providerTenant;
    const providerId = (await f.provider()).id;
    const offeringId = (await f.offering({ providerId })).id;
    const agentId = await f.agent('claim-plan', 'hplan');
    const made = [];
    for (let i = 0; i < 5; i++) {
      const instanceId = (await f.instance({ tenantId })).id;
      made.push(await f.repos.tasks.create(backupTask({ tenantId, instanceId, offeringId, providerId })));
    }
    watching = true;
    const won = await f.repos.queue.claimMany(
      made.slice(0, 3).map((task) => ({ task, agentId })),
      Date.now() + LEASE,
    );
    watching = false;
    expect(won.size).toBe(3);
    // The claim's read of the rows and its update: each task's state checked on the row found by id.
    const claimStatements = statements.filter(
      (s) => /^select "id", "attempt" from "tasks"/.test(s) || /^update "tasks" set "state"/.test(s),
    );
    expect(claimStatements).toHaveLength(2);
    for (const text of claimStatements) {
      const nulls = Array.from(text.matchAll(/\?/g), () => null);
      const plan = await f.store.db.executeQuery<{ detail: string }>(
        CompiledQuery.raw(`explain query plan ${text}`, nulls),
      );
      const steps = plan.rows.map((r) => r.detail).join('; ');
      expect(steps, text).toMatch(/SEARCH tasks USING INDEX sqlite_autoindex_tasks_1 \(id=\?\)/);
      expect(steps, text).not.toMatch(/tasks_queue/);
    }
  });
});
