import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { newId } from './ids.js';
import { storeFixture } from '../testing/store-fixture.js';

const SETS = ['SUCCESS', 'ERROR', 'OUTDATED', 'RUNNING'] as const;

/*
 * A job's view shows each member in the set its latest run of the job left it in. The store
 * finds each member's newest row by seeking from the end of its range of the (job, instance, run)
 * index rather than reading the whole history. Checked against that definition, computed here
 * from every row, over random histories: runs of a few instances each (an instance in some runs
 * and not others, or in none), another job's runs beside them, and lists of members asked for
 * that hold instances never run and leave out some that were.
 */
describe.each(backends)("a job's members' latest sets (%s)", (backend) => {
  const f = storeFixture(backend);
  const { jobs } = f.repos;
  const instances = Array.from({ length: 6 }, (_, i) => newId('ins', 1_700_000_000_000 + i));
  let at = 1_700_000_000_000;
  let asked = 0;

  it('are each asked-for instance’s set in its newest run of the job', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            job: fc.constantFrom('mine', 'other'),
            members: fc.uniqueArray(fc.record({ i: fc.nat(5), set: fc.constantFrom(...SETS) }), {
              selector: (m) => m.i,
              maxLength: 4,
            }),
          }),
          { maxLength: 8 },
        ),
        fc.subarray(instances),
        async (runs, ask) => {
          const job = { mine: newId('job', ++at), other: newId('job', ++at) };
          const want = new Map<string, string>();
          for (const run of runs) {
            const runId = newId('run', ++at);
            for (const [position, m] of run.members.entries()) {
              await f.store.db
                .insertInto('backupJobMembers')
                .values({
                  runId,
                  position,
                  jobId: job[run.job],
                  instanceId: instances[m.i]!,
                  set: m.set,
                  taskId: null,
                  errorCode: null,
                  errorMessage: null,
                })
                .execute();
              if (run.job === 'mine') want.set(instances[m.i]!, m.set);
            }
          }
          const expected = new Map(ask.flatMap((id) => (want.has(id) ? [[id, want.get(id)!] as const] : [])));
          const got = await jobs.latestSets(job.mine, ask);
          expect(new Map([...got].sort()), JSON.stringify({ runs, ask })).toEqual(new Map([...expected].sort()));
          asked += got.size;
        },
      ),
      { numRuns: 25 },
    );
    expect(asked, 'sets found').toBeGreaterThan(0);
  });
});
