import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '@cairn/control-plane';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { protectInstance } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';

/*
 * A backup job's run history is kept within the service provider's limits: here 5 runs per job
 * and 30 days. The history is written straight into the store (hundreds of runs through real
 * fires would take minutes); the pruning is the control plane's own sweep, on the scheduler's
 * (test) clock, and everything is read back through the API.
 */

const T0 = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
const MEMBERS = 12;

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
/** A run id of the control plane's form, ordered by `at` as its own are. */
function runId(at: number): string {
  let time = '';
  for (let i = 0, v = at; i < 10; i++, v = Math.floor(v / 32)) time = ALPHABET[v % 32] + time;
  return `run_${time}${[...randomBytes(16)].map((b) => ALPHABET[b & 31]).join('')}`;
}

interface RunItem {
  id: string;
  state: string;
  memberCounts: { total: number; outdated: number; ongoing: number; updated: number; error: number };
  members: { instanceId: string; set: string }[];
}

describe.each(backends)('backup job run history (%s)', (backend) => {
  const stack = withStack(backend, {
    clockAt: new Date(T0).toISOString(),
    env: { CAIRN_JOB_RUNS_KEEP: '5', CAIRN_JOB_RUNS_MAX_AGE_DAYS: '30' },
  });
  let admin: Api;
  let tenantA: Api;
  let tenantB: Api;
  let store: Store;
  let instanceIds: string[];
  /** Run ids of each job, oldest first, as written. */
  const written = new Map<string, string[]>();

  const newJob = async (name: string) =>
    (await tenantA.expect(201, 'POST', '/v1/backup-jobs', { name, instanceIds, mode: 'FULL', execution: 'PARALLEL' }))
      .id as string;

  /** Writes runs of `jobId` started at these times (finished unless `running`), each with every instance. */
  async function writeRuns(jobId: string, tenantId: string, runs: { at: number; running?: boolean }[]) {
    const ids: string[] = [];
    for (const r of runs) {
      const id = runId(r.at);
      ids.push(id);
      await store.db
        .insertInto('backupJobRuns')
        .values({
          id,
          jobId,
          tenantId,
          trigger: 'run',
          scheduleId: null,
          state: r.running ? 'running' : 'failed',
          reset: 0,
          cancelled: 0,
          startedAt: r.at,
          endedAt: r.running ? null : r.at + 60_000,
        })
        .execute();
      await store.db
        .insertInto('backupJobMembers')
        .values(
          instanceIds.map((instanceId, position) => ({
            runId: id,
            position,
            jobId,
            instanceId,
            set: r.running ? 'OUTDATED' : position === 3 ? 'ERROR' : 'UPDATED',
            taskId: null,
            errorCode: r.running || position !== 3 ? null : 'FAILED',
            errorMessage: r.running || position !== 3 ? null : 'the backup task ended failed',
          })),
        )
        .execute();
    }
    const newest = [...ids].sort().at(-1)!;
    const running = runs.findIndex((r) => r.running);
    await store.db
      .updateTable('backupJobs')
      .set({ lastRunId: newest, activeRunId: running >= 0 ? ids[running]! : null })
      .where('id', '=', jobId)
      .execute();
    written.set(jobId, ids);
  }

  const runsOf = async (jobId: string) =>
    (await tenantA.expect(200, 'GET', `/v1/backup-jobs/${jobId}/runs?limit=500`)).items as RunItem[];
  const memberRows = async (runIds: string[]) =>
    Number(
      (
        await store.db
          .selectFrom('backupJobMembers')
          .select((eb) => eb.fn.countAll<number | string>().as('n'))
          .where('runId', 'in', runIds)
          .executeTakeFirstOrThrow()
      ).n,
    );

  let countJob: string;
  let runningJob: string;
  let ageJob: string;
  let oldJob: string;

  beforeAll(async () => {
    admin = stack.admin;
    const a = await stack.tenant('acme', { tokenName: 'ops' });
    const b = await stack.tenant('globex', { tokenName: 'ops' });
    tenantA = a.api;
    tenantB = b.api;
    const { offeringId } = await protectInstance(admin, 'zone-a');
    await admin.expect(201, 'POST', `/v1/offerings/${offeringId}/grants`, { tenantId: a.id });
    instanceIds = [];
    for (let i = 0; i < MEMBERS; i++) {
      const vm = await tenantA.expect(201, 'POST', '/v1/instances', { name: `vm-${i}`, zone: 'zone-a', locator: {} });
      await tenantA.expect(200, 'PUT', `/v1/instances/${vm.id}/offering`, { offeringId });
      instanceIds.push(vm.id);
    }
    store = await stack.store();
    countJob = await newJob('count');
    runningJob = await newJob('running');
    ageJob = await newJob('age');
    oldJob = await newJob('old');
    // 20 runs an hour apart: 15 past the limit of 5.
    await writeRuns(
      countJob,
      a.id,
      Array.from({ length: 20 }, (_, i) => ({ at: T0 - (20 - i) * HOUR })),
    );
    // A run still going (two months old, beyond the count too) under 7 newer finished ones.
    await writeRuns(runningJob, a.id, [
      { at: T0 - 60 * DAY, running: true },
      ...Array.from({ length: 7 }, (_, i) => ({ at: T0 - (7 - i) * HOUR })),
    ]);
    // Within the count; two of three older than 30 days.
    await writeRuns(ageJob, a.id, [{ at: T0 - 40 * DAY }, { at: T0 - 35 * DAY }, { at: T0 - DAY }]);
    // Every run older than 30 days: the newest stays all the same.
    await writeRuns(oldJob, a.id, [{ at: T0 - 50 * DAY }, { at: T0 - 45 * DAY }]);
  }, 120_000);

  it('lists runs with member counts and the first members; the members page through their own list', async () => {
    const runs = await runsOf(countJob);
    expect(runs).toHaveLength(20);
    const [newest] = runs;
    expect(newest!.memberCounts).toEqual({ total: MEMBERS, outdated: 0, ongoing: 0, updated: MEMBERS - 1, error: 1 });
    expect(newest!.members.map((m) => m.instanceId)).toEqual(instanceIds.slice(0, 10));
    const url = `/v1/backup-jobs/${countJob}/runs/${newest!.id}/members`;
    const first = await tenantA.expect(200, 'GET', `${url}?limit=7`);
    expect(first.items).toHaveLength(7);
    expect(first.nextCursor).toEqual(expect.any(String));
    const rest = await tenantA.expect(200, 'GET', `${url}?limit=7&cursor=${encodeURIComponent(first.nextCursor)}`);
    expect(rest.nextCursor).toBeNull();
    const all = [...first.items, ...rest.items] as { instanceId: string; error: unknown }[];
    expect(all.map((m) => m.instanceId)).toEqual(instanceIds);
    expect(all[3]?.error).toEqual({
      code: 'FAILED',
      message: 'the backup task ended failed',
    });

    // Bad paging is 400 naming the field.
    for (const [query, field] of [
      ['limit=0', 'query.limit'],
      ['limit=501', 'query.limit'],
      ['cursor=Mw', 'query.cursor'],
    ] as const) {
      const r = await tenantA.get(`${url}?${query}`);
      expect(r.status, query).toBe(400);
      expect(
        (r.body.errors as { path: string }[]).map((e) => e.path),
        query,
      ).toContain(field);
    }
    // Another tenant, and a run of another job, are not found.
    expect((await tenantB.get(url)).status).toBe(404);
    expect((await tenantB.get(`/v1/backup-jobs/${countJob}/runs`)).status).toBe(404);
    const foreignRun = written.get(ageJob)![0]!;
    expect((await tenantA.get(`/v1/backup-jobs/${countJob}/runs/${foreignRun}/members`)).status).toBe(404);
    expect((await tenantA.get(`/v1/backup-jobs/${countJob}/runs/not-a-run/members`)).status).toBe(404);
  });

  it('prunes each job to its newest runs and to the age limit, with their members; never a run still going', async () => {
    // The next sweep interval on the scheduler's clock.
    const at = new Date(T0 + 11 * 60 * 1000).toISOString();
    await stack.step(at);

    const countRuns = written.get(countJob)!;
    expect((await runsOf(countJob)).map((r) => r.id)).toEqual(countRuns.slice(-5).reverse());
    expect(await memberRows(countRuns.slice(0, 15))).toBe(0);
    expect(await memberRows(countRuns.slice(-5))).toBe(5 * MEMBERS);
    const gone = countRuns[0]!;
    expect((await tenantA.get(`/v1/backup-jobs/${countJob}/runs/${gone}/members`)).status).toBe(404);

    const [running, ...finished] = written.get(runningJob)!;
    const kept = (await runsOf(runningJob)).map((r) => r.id);
    expect(kept).toEqual([...finished.slice(-5).reverse(), running]);
    expect(await memberRows([running!])).toBe(MEMBERS);

    const ageRuns = written.get(ageJob)!;
    expect((await runsOf(ageJob)).map((r) => r.id)).toEqual([ageRuns[2]]);
    expect(await memberRows(ageRuns.slice(0, 2))).toBe(0);
    const oldRuns = written.get(oldJob)!;
    expect((await runsOf(oldJob)).map((r) => r.id)).toEqual([oldRuns[1]]);

    // The job's view still reads its sets and last run from what is kept.
    const view = await tenantA.expect(200, 'GET', `/v1/backup-jobs/${countJob}`);
    expect(view.lastRun.id).toBe(countRuns.at(-1));
    expect(view.sets.error).toEqual([instanceIds[3]]);
  });
});
