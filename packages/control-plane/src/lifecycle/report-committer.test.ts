import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import type { Report } from '../domain/report-outcome.js';
import { testReports } from '../testing/reports.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';
import { ReportCommitter } from './report-committer.js';

const LEASE = 60_000;

describe.each(backends)('the report committer: one transaction a tick (%s)', (backend) => {
  const f = storeFixture(backend);
  const { tasks, queue, reports } = f.repos;
  let tenantId: string;
  let providerId: string;
  let offeringId: string;

  beforeAll(async () => {
    tenantId = f.providerTenant;
    providerId = (await f.provider()).id;
    offeringId = (await f.offering({ providerId })).id;
  });

  /** A backup task claimed by `agentId` (attempt 1). */
  async function held(agentId: string) {
    const instanceId = (await f.instance({ tenantId })).id;
    const task = await tasks.create(backupTask({ tenantId, instanceId, offeringId, providerId }));
    expect(await queue.claim(task, agentId, Date.now() + LEASE)).toBe(1);
    return task;
  }

  const { accepted, progress, event } = testReports;

  /** How many transactions wrote events so far (each ticks the event clock once). */
  const clockTicks = async () =>
    Number(
      (await f.store.db.selectFrom('eventClock').select('ticks').where('id', '=', 1).executeTakeFirstOrThrow()).ticks,
    );

  const committer = () => new ReportCommitter({ reports, maxReports: 1000 });

  it("applies two agents' reports handed in in one turn in ONE transaction, and settles each only after it committed", async () => {
    const [a, b] = [await f.agent('tick-a', 'ha'), await f.agent('tick-b', 'hb')];
    const [ta, tb] = [await held(a), await held(b)];
    const c = committer();
    const before = await clockTicks();
    const seen: string[] = [];
    // What another connection sees when each promise settles: the commit is durable by then.
    const settled = (agentId: string, taskId: string) => async () => {
      seen.push(`${agentId}:${(await tasks.get(taskId))!.state}`);
    };
    await Promise.all([
      c.submit(a, [accepted(ta.id, 1), event(ta.id, 2, null)]).then(settled('a', ta.id)),
      c.submit(b, [accepted(tb.id, 1), event(tb.id, 2, null)]).then(settled('b', tb.id)),
    ]);
    expect(seen.sort()).toEqual(['a:running', 'b:running']);
    // Four events (two task.started, two plugin events), one transaction: the clock ticked once.
    expect((await clockTicks()) - before).toBe(1);
    const events = await f.store.db
      .selectFrom('events')
      .select(['taskId', 'type'])
      .where('taskId', 'in', [ta.id, tb.id])
      .where('type', '!=', 'task.queued')
      .orderBy('id')
      .execute();
    expect(events.map((e) => `${e.taskId === ta.id ? 'a' : 'b'} ${e.type}`)).toEqual([
      'a task.started',
      'a provider.note',
      'b task.started',
      'b provider.note',
    ]);
  });

  it("keeps one agent's poison report from failing the others': only the culprit's batch fails, nothing of it is stored", async () => {
    const [good, bad] = [await f.agent('poison-good', 'hg'), await f.agent('poison-bad', 'hp')];
    const [tg, tp] = [await held(good), await held(bad)];
    const c = committer();
    // A figure no driver can write (an object): applying it throws inside the shared transaction.
    const poison = { ...progress(tp.id, 2, 10), percent: {} as unknown as number };
    const [ok, failed] = await Promise.allSettled([
      c.submit(good, [accepted(tg.id, 1), progress(tg.id, 2, 40)]),
      c.submit(bad, [accepted(tp.id, 1), poison]),
    ]);
    expect(ok.status).toBe('fulfilled');
    expect(failed.status).toBe('rejected');
    expect((await tasks.get(tg.id))!).toMatchObject({ state: 'running', percent: 40 });
    // The culprit's whole batch rolled back: its acceptance too (the agent will send it again).
    expect((await tasks.get(tp.id))!.state).toBe('dispatched');
    // The agent resends without the poison: stored as if the first try never happened.
    await c.submit(bad, [accepted(tp.id, 1), event(tp.id, 2, null)]);
    expect((await tasks.get(tp.id))!.state).toBe('running');
  });

  it('stores every progress report once but moves the task by the newest of a tick only; a resend moves nothing', async () => {
    const agentId = await f.agent('coalesce', 'hc');
    const task = await held(agentId);
    const c = committer();
    await c.submit(agentId, [accepted(task.id, 1)]);
    const many = Array.from({ length: 50 }, (_, i) => progress(task.id, 10 + i, i * 2));
    const moves = async () =>
      Number(
        (await f.store.db.selectFrom('tasks').select('percent').where('id', '=', task.id).executeTakeFirstOrThrow())
          .percent,
      );
    // Handed in together: every one settles (all are acknowledged) and is stored once.
    await Promise.all([c.submit(agentId, many.slice(0, 30)), c.submit(agentId, many.slice(30))]);
    const stored = (await tasks.progress(task.id, { limit: 100 })).items;
    expect(stored).toHaveLength(50);
    expect(await moves()).toBe(98);
    expect((await tasks.get(task.id))!).toMatchObject({ percent: 98, bytesDone: 98 });
    // After a reconnect the agent resends part of what it was never acknowledged for: an older
    // report alone in its tick, then the newest again. Neither is stored again nor moves anything.
    await c.submit(agentId, [many[20]!]);
    await c.submit(agentId, [many[49]!, many[3]!]);
    expect((await tasks.progress(task.id, { limit: 100 })).items).toHaveLength(50);
    expect((await tasks.get(task.id))!).toMatchObject({ percent: 98, bytesDone: 98 });
    // A newer one still moves it.
    await c.submit(agentId, [progress(task.id, 70, 99)]);
    expect((await tasks.get(task.id))!.percent).toBe(99);
  });

  it('writes the task figures once a tick however many progress reports of it came (a superseded one would move it back)', async () => {
    const agentId = await f.agent('coalesce-2', 'hc2');
    const task = await held(agentId);
    const c = committer();
    await c.submit(agentId, [accepted(task.id, 1)]);
    // The newest (seq 12) is not the last handed in: applied one by one, seq 7 would leave the
    // task at 30.
    const out = [
      progress(task.id, 9, 10),
      progress(task.id, 8, 20),
      progress(task.id, 12, 90),
      progress(task.id, 7, 30),
    ];
    await c.submit(agentId, out);
    expect((await tasks.get(task.id))!.percent).toBe(90);
    expect((await tasks.progress(task.id, { limit: 100 })).items).toHaveLength(4);
  });

  it("moves many tasks' progress of a tick together, each to its own figures and only where its agent holds it", async () => {
    const [a, b] = [await f.agent('many-a', 'hma'), await f.agent('many-b', 'hmb')];
    const mine = [await held(a), await held(a), await held(a)];
    const theirs = await held(b);
    const c = committer();
    // The third task's progress comes before its acceptance: it still runs (progress starts a held task).
    await c.submit(a, [accepted(mine[0]!.id, 1), accepted(mine[1]!.id, 2)]);
    await Promise.all([
      c.submit(a, [progress(mine[0]!.id, 3, 11), progress(mine[1]!.id, 4, 22), progress(mine[2]!.id, 5, 33)]),
      // Agent a names b's task: fenced out, it moves nothing.
      c.submit(a, [progress(theirs.id, 6, 77)]),
    ]);
    expect((await tasks.get(mine[0]!.id))!).toMatchObject({ state: 'running', percent: 11, bytesDone: 11 });
    expect((await tasks.get(mine[1]!.id))!).toMatchObject({ state: 'running', percent: 22, progressMessage: 'at 22' });
    expect((await tasks.get(mine[2]!.id))!).toMatchObject({ state: 'running', percent: 33 });
    expect((await tasks.get(theirs.id))!).toMatchObject({ state: 'dispatched', percent: 0 });
  });

  it('applies a progress before a result of the same task in one tick in order: the result ends it', async () => {
    const agentId = await f.agent('then-end', 'hte');
    const task = await held(agentId);
    const c = committer();
    const result: Report = {
      kind: 'result',
      seq: 4,
      taskId: task.id,
      attempt: 1,
      at: Date.now(),
      outcome: { ok: false, code: 'BROKEN', message: 'it broke', retryable: false },
    };
    await c.submit(agentId, [accepted(task.id, 1), progress(task.id, 2, 40), progress(task.id, 3, 60), result]);
    expect((await tasks.get(task.id))!).toMatchObject({ state: 'failed', errorCode: 'BROKEN', bytesDone: 60 });
    // A late progress of the ended task moves nothing.
    await c.submit(agentId, [progress(task.id, 5, 90)]);
    expect((await tasks.get(task.id))!).toMatchObject({ state: 'failed', bytesDone: 60 });
  });

  it('bounds a transaction by reports, never splitting a batch, and applies each agent in order', async () => {
    const agentId = await f.agent('bounded', 'hb2');
    const task = await held(agentId);
    const c = new ReportCommitter({ reports, maxReports: 2 });
    const before = await clockTicks();
    await Promise.all([
      c.submit(agentId, [accepted(task.id, 1), event(task.id, 2, null), event(task.id, 3, null)]),
      c.submit(agentId, [event(task.id, 4, null)]),
      c.submit(agentId, [event(task.id, 5, null)]),
    ]);
    // 3 reports (over the bound, whole), then 2: two transactions.
    expect((await clockTicks()) - before).toBe(2);
    const seqs = await f.store.db
      .selectFrom('events')
      .select('sourceSeq')
      .where('taskId', '=', task.id)
      .where('type', '=', 'provider.note')
      .orderBy('id')
      .execute();
    expect(seqs.map((s) => Number(s.sourceSeq))).toEqual([2, 3, 4, 5]);
  });
});
