import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { newId } from './ids.js';
import type { TaskRow } from './schema.js';
import { whileHeld } from '../testing/row-locks.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';

const RUNNING_EACH = 2;
const ENDED_EACH = 5;
/** One agent whose task is held, and a full heartbeat window (500 agents, one statement) beside it. */
const AGENTS = 501;
const QUEUED = 500;

/*
 * What the dispatcher's writes lock on MySQL/MariaDB, where InnoDB locks every row a locking read
 * or an update reads, matching or not, until the transaction ends. MariaDB's planner, where the
 * service holds few tasks and a statement names most of a fleet (a heartbeat window) or hundreds
 * of instances (a claim round), read the held tasks through the (state, …) index or the whole of
 * an index: every held task of the service, locked. The heartbeats or the claim then waited for
 * any transaction holding another agent's task (a report tick, a cancel), and held those up.
 */
describe.runIf(backends.includes('mysql'))("the dispatcher's writes and other agents' tasks (mysql)", () => {
  const f = storeFixture('mysql', { tasksByHand: true });
  const agents: string[] = [];
  const running = new Map<string, string[]>();
  const queued: TaskRow[] = [];

  beforeAll(async () => {
    const providerId = (await f.provider()).id;
    const template = await f.repos.tasks.create(backupTask({ tenantId: f.providerTenant, providerId }));
    const { id: _id, ...columns } = (await f.repos.tasks.get(template.id))!;
    await f.store.db.deleteFrom('tasks').execute();
    for (let i = 0; i < AGENTS; i++) agents.push(await f.agent(`hb-${i}`));
    const rows: TaskRow[] = [];
    let at = Date.now() - 86_400_000;
    for (const agentId of agents) {
      running.set(agentId, []);
      for (let i = 0; i < ENDED_EACH + RUNNING_EACH; i++) {
        const id = newId('tsk', ++at);
        const state = i < ENDED_EACH ? 'succeeded' : 'running';
        if (state === 'running') running.get(agentId)!.push(id);
        rows.push({
          ...columns,
          id,
          agentId,
          state,
          instanceId: `ins_${id}`,
          leaseExpiresAt: state === 'running' ? 1 : null,
        });
      }
    }
    // Queued tasks, each of an instance of its own with one ended task before it: one claim round
    // takes them all. (A locking read of a range also locks the record after it, here the
    // instance's ended task: one neighbour per range, whichever task that is.)
    for (let i = 0; i < QUEUED; i++) {
      const instanceId = `ins_q${i}`;
      rows.push({ ...columns, id: newId('tsk', ++at), state: 'succeeded', instanceId });
      const row = { ...columns, id: newId('tsk', ++at), state: 'queued', instanceId, attempt: 0 };
      rows.push(row);
      queued.push(row);
    }
    for (let i = 0; i < rows.length; i += 500)
      await f.store.db
        .insertInto('tasks')
        .values(rows.slice(i, i + 500))
        .execute();
    await sql`analyze table tasks`.execute(f.store.db);
  });

  const leases = async (agentId: string) =>
    (
      await f.store.db.selectFrom('tasks').select('leaseExpiresAt').where('id', 'in', running.get(agentId)!).execute()
    ).map((r) => r.leaseExpiresAt);

  it("renews a heartbeat window's leases without waiting for a transaction that holds another agent's task", async () => {
    // Every agent but one: a full window, one statement.
    const [a, ...beating] = agents as [string, ...string[]];
    const lease = Date.now() + 60_000;
    const outcome = await whileHeld(
      f.tdb.url,
      (run) => run('update tasks set percent = 50 where id = ?', [running.get(a)![0]!]),
      () => f.repos.agents.heartbeats(beating, lease),
    );
    expect(outcome).toBe('done');
    for (const agentId of beating) expect(await leases(agentId)).toEqual(Array(RUNNING_EACH).fill(lease));
    expect(await leases(a)).toEqual(Array(RUNNING_EACH).fill(1));
  });

  it("claims a round of tasks without waiting for a transaction that holds another agent's task", async () => {
    const [a, claimer] = agents as [string, string];
    let won = new Map<string, number>();
    const outcome = await whileHeld(
      f.tdb.url,
      (run) => run('update tasks set percent = 50 where id = ?', [running.get(a)![0]!]),
      async () => {
        won = await f.repos.queue.claimMany(
          queued.map((task) => ({ task, agentId: claimer })),
          Date.now() + 60_000,
        );
      },
    );
    expect(outcome).toBe('done');
    expect(won.size).toBe(QUEUED);
  });
});
