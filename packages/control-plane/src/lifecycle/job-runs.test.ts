import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { transact } from '../store/db.js';
import { newId } from '../store/ids.js';
import type { BackupJobRow } from '../store/schema.js';
import { jobRow } from '../testing/job-rows.js';
import { storeFixture } from '../testing/store-fixture.js';

const actor = { tokenId: 'tok_test', role: 'sp-admin' };

describe.each(backends)('the job-run engine (%s)', (backend) => {
  const f = storeFixture(backend);
  const { tasks, jobs, jobRuns: runs } = f.repos;
  let tenantId: string;
  let offeringId: string;

  beforeAll(async () => {
    tenantId = f.providerTenant;
    const providerId = (await f.provider()).id;
    offeringId = (await f.offering({ providerId, allowUserSchedules: true })).id;
  });

  async function newJob(count: number, execution: 'SEQUENTIAL' | 'PARALLEL'): Promise<BackupJobRow> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const instance = await f.instance({ name: `vm-${i}` });
      await f.repos.catalog.setInstanceOffering(instance.id, offeringId);
      ids.push(instance.id);
    }
    const now = Date.now();
    const job = jobRow({
      id: newId('job', now),
      tenantId,
      createdAt: now,
      name: 'j',
      instanceIds: JSON.stringify(ids),
      priority: 7,
      execution,
    });
    await runs.create(job, [], actor);
    return job;
  }
  const idsOf = (job: BackupJobRow) => JSON.parse(job.instanceIds) as string[];
  const run = async (job: BackupJobRow) => {
    const outcome = await runs.startRun(
      job.id,
      { trigger: 'run', scheduleId: null, instanceIds: idsOf(job) },
      actor,
      Date.now(),
    );
    if (!('run' in outcome)) throw new Error(`refused: ${outcome.refused}`);
    return outcome.run;
  };

  it('closes a PARALLEL run whose backups all end at once, each in its own transaction', async () => {
    for (let round = 0; round < 5; round++) {
      const job = await newJob(6, 'PARALLEL');
      const started = await run(job);
      const members = await jobs.membersOf([started.id]);
      expect(members.map((m) => m.set)).toEqual(Array(6).fill('ONGOING'));
      await Promise.all(members.map((m) => tasks.requestCancel(m.taskId!)));
      const ended = (await jobs.getRun(started.id))!;
      expect(ended).toMatchObject({ state: 'failed' });
      expect(ended.endedAt).not.toBeNull();
      expect((await jobs.get(job.id))!.activeRunId).toBeNull();
    }
  });

  it('starts one run of two concurrent starts', async () => {
    const job = await newJob(2, 'PARALLEL');
    const outcomes = await Promise.all(
      [1, 2].map(() =>
        runs.startRun(job.id, { trigger: 'run', scheduleId: null, instanceIds: idsOf(job) }, actor, Date.now()),
      ),
    );
    expect(outcomes.filter((o) => 'run' in o)).toHaveLength(1);
    expect(outcomes.filter((o) => 'refused' in o && o.refused === 'job_running')).toHaveLength(1);
    expect((await jobs.runs(job.id, { limit: 10 })).items).toHaveLength(1);
  });

  it("SEQUENTIAL: the next backup is made in the transaction that ended the previous one, at the job's priority", async () => {
    const job = await newJob(3, 'SEQUENTIAL');
    const ids = idsOf(job);
    const started = await run(job);
    const first = (await jobs.membersOf([started.id]))[0]!;
    // Rolled back: nothing of the end, nor the next task, remains.
    await expect(
      transact(f.store.db, async (trx) => {
        // Read through the transaction: on SQLite the one connection is this transaction's.
        const task = (await trx.selectFrom('tasks').selectAll().where('id', '=', first.taskId!).executeTakeFirst())!;
        await trx
          .updateTable('tasks')
          .set({ state: 'failed', endedAt: Date.now() })
          .where('id', '=', task.id)
          .execute();
        await runs.taskEnded(
          trx,
          task,
          { state: 'failed', error: { code: 'X', message: 'x' }, output: null },
          Date.now(),
        );
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect((await jobs.membersOf([started.id])).map((m) => m.set)).toEqual(['ONGOING', 'OUTDATED', 'OUTDATED']);
    expect((await tasks.list({ limit: 10 }, { instanceId: ids[1]! })).items).toEqual([]);

    await tasks.requestCancel(first.taskId!);
    const after = await jobs.membersOf([started.id]);
    expect(after.map((m) => m.set)).toEqual(['ERROR', 'ONGOING', 'OUTDATED']);
    expect(after[0]!.errorCode).toBe('CANCELLED');
    const second = (await tasks.get(after[1]!.taskId!))!;
    expect(second).toMatchObject({ state: 'queued', instanceId: ids[1], priority: 7 });
    expect(JSON.parse(second.params)).toMatchObject({
      instanceId: ids[1],
      mode: 'FULL',
      fsFreeze: 'NONE',
      jobId: job.id,
    });
  });

  it('cancel ends every OUTDATED member at once and answers the ongoing tasks', async () => {
    const job = await newJob(3, 'SEQUENTIAL');
    const started = await run(job);
    const ongoing = await runs.cancelRun((await jobs.get(job.id))!, actor, Date.now());
    const members = await jobs.membersOf([started.id]);
    expect(ongoing).toEqual([members[0]!.taskId]);
    expect(members.map((m) => m.set)).toEqual(['ONGOING', 'ERROR', 'ERROR']);
    await tasks.requestCancel(ongoing[0]!);
    expect(await jobs.getRun(started.id)).toMatchObject({ state: 'cancelled' });
    expect((await jobs.get(job.id))!.activeRunId).toBeNull();
  });
});
