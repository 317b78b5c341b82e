import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { openStore } from './db.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';

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
});
