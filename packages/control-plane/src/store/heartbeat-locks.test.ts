import { CompiledQuery, sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { openStore } from './db.js';
import { newId } from './ids.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';

const RUNNING_EACH = 5;
const ENDED_EACH = 200;
const AGENTS = 10;

/*
 * A heartbeat renews the leases of its agents' held tasks, and locks those rows only. MariaDB's
 * planner, where an agent has many ended tasks and the service few held ones, reads the held
 * tasks through the (state, …) index: every agent's held task, each locked until the heartbeat's
 * transaction commits (InnoDB locks every row an update reads). One agent's heartbeat then waited
 * for any transaction that held another agent's task: a report tick, a claim, a tenant's cancel.
 */
describe.runIf(backends.includes('mysql'))("a heartbeat and other agents' tasks (mysql)", () => {
  const f = storeFixture('mysql');
  const agents: string[] = [];
  const running = new Map<string, string[]>();

  beforeAll(async () => {
    const providerId = (await f.provider()).id;
    const template = await f.repos.tasks.create(backupTask({ tenantId: f.providerTenant, providerId }));
    const { id: _id, ...columns } = (await f.repos.tasks.get(template.id))!;
    await f.store.db.deleteFrom('tasks').execute();
    for (let i = 0; i < AGENTS; i++) agents.push(await f.agent(`hb-${i}`));
    const rows = [];
    let at = Date.now() - 86_400_000;
    for (const agentId of agents) {
      running.set(agentId, []);
      for (let i = 0; i < ENDED_EACH + RUNNING_EACH; i++) {
        const id = newId('tsk', ++at);
        const state = i < ENDED_EACH ? 'succeeded' : 'running';
        if (state === 'running') running.get(agentId)!.push(id);
        rows.push({ ...columns, id, agentId, state, instanceId: null, leaseExpiresAt: state === 'running' ? 1 : null });
      }
    }
    for (let i = 0; i < rows.length; i += 500)
      await f.store.db
        .insertInto('tasks')
        .values(rows.slice(i, i + 500))
        .execute();
    await sql`analyze table tasks`.execute(f.store.db);
  });

  it("renews its agents' leases without waiting for a transaction that holds another agent's task", async () => {
    // One heartbeat batch of every agent but one (a small fleet beats in one batch).
    const [a, ...beating] = agents as [string, ...string[]];
    // Another transaction holds one of agent a's running tasks (as a report tick would) and stays open.
    const other = openStore(f.tdb.url);
    const held = await other.db.connection().execute(async (conn) => {
      await conn.executeQuery(CompiledQuery.raw('begin'));
      await conn.executeQuery(CompiledQuery.raw('update tasks set percent = 50 where id = ?', [running.get(a)![0]!]));
      const lease = Date.now() + 60_000;
      const beat = f.repos.agents.heartbeats(beating, lease).then(() => 'renewed' as const);
      const waited = new Promise<'waiting'>((resolve) => setTimeout(() => resolve('waiting'), 5_000));
      const outcome = await Promise.race([beat, waited]);
      await conn.executeQuery(CompiledQuery.raw('rollback'));
      await beat;
      return { outcome, lease };
    });
    await other.close();
    expect(held.outcome).toBe('renewed');
    const leases = async (agentId: string) =>
      (
        await f.store.db.selectFrom('tasks').select('leaseExpiresAt').where('id', 'in', running.get(agentId)!).execute()
      ).map((r) => r.leaseExpiresAt);
    for (const agentId of beating) expect(await leases(agentId)).toEqual(Array(RUNNING_EACH).fill(held.lease));
    expect(await leases(a)).toEqual(Array(RUNNING_EACH).fill(1));
  });
});
