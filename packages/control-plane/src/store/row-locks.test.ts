import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { newId } from './ids.js';
import type { TaskRow } from './schema.js';
import { whileHeld } from '../testing/row-locks.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';

const RUNNING_EACH = 5;
const ENDED_EACH = 200;
const AGENTS = 10;

/*
 * What a heartbeat window locks on MySQL/MariaDB, where InnoDB locks every row an update reads,
 * matching or not, until the transaction ends. MariaDB's planner, where the service holds few
 * tasks and the window names most of the fleet, read the held tasks through the (state, …) index:
 * every held task of the service, locked. The window then waited for any transaction holding
 * another agent's task (a report tick, a claim, a cancel), and held those up in turn.
 */
describe.runIf(backends.includes('mysql'))("a heartbeat window and other agents' tasks (mysql)", () => {
  const f = storeFixture('mysql');
  const agents: string[] = [];
  const running = new Map<string, string[]>();

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
    // One window of every agent but one (a small fleet beats in one window).
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
});
