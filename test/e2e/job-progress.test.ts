import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { assignOffering, protectInstance, type RunBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

interface Progress {
  percent: number;
  bytesDone: number;
  bytesTotal: number;
  etaSeconds: number | null;
}
interface JobBody {
  id: string;
  sets: { outdated: string[]; ongoing: string[]; updated: string[]; error: string[] };
  lastRun: { id: string; state: string } | null;
  progress: Progress | null;
}

const SIZE = 406_000_000;

describe.each(backends)('a backup job run’s progress (%s)', (backend) => {
  const stack = withStack(backend, { agents: [{}] });
  let api: Api;

  beforeAll(() => {
    api = stack.admin;
  });

  it('after a cancel mid-backup says what was done of what was planned, not 100 %', async () => {
    // A backup of 406 MB in 60 steps of a second: the first instance is caught mid-backup.
    const first = await protectInstance(api, 'zone-a', { config: { durationMs: 60_000, steps: 60, sizeBytes: SIZE } });
    const second = await api.expect(201, 'POST', '/v1/instances', {
      name: 'app',
      zone: 'zone-a',
      locator: { vm: 'app' },
    });
    await assignOffering(api, second.id, first.offeringId);
    const ids = [first.instanceId, second.id as string];
    const job = await api.expect<JobBody>(201, 'POST', '/v1/backup-jobs', {
      name: 'two',
      instanceIds: ids,
      mode: 'FULL',
      execution: 'SEQUENTIAL',
    });
    await api.expect(202, 'POST', `/v1/backup-jobs/${job.id}/run`);
    const firstTask = await waitFor(
      async () => {
        const [run] = (await api.expect(200, 'GET', `/v1/backup-jobs/${job.id}/runs`)).items as RunBody[];
        const taskId = run?.members[0]?.taskId;
        if (!taskId) return undefined;
        const task = await api.expect<{ id: string; progress: Progress }>(200, 'GET', `/v1/tasks/${taskId}`);
        return task.progress.bytesDone > 0 ? task : undefined;
      },
      'the first instance’s backup to report progress',
      60_000,
    );

    await api.expect(202, 'POST', `/v1/backup-jobs/${job.id}/cancel`);
    const done = await waitFor(
      async () => {
        const j = await api.expect<JobBody>(200, 'GET', `/v1/backup-jobs/${job.id}`);
        return j.lastRun?.state === 'cancelled' ? j : undefined;
      },
      'the run to end cancelled',
      60_000,
    );
    const [run] = (await api.expect(200, 'GET', `/v1/backup-jobs/${job.id}/runs`)).items as RunBody[];
    expect(run).toMatchObject({ state: 'cancelled', memberCounts: { total: 2, updated: 0, error: 2 } });
    expect(run!.members.map((m) => m.error?.code)).toEqual(['CANCELLED', 'CANCELLED']);
    expect(run!.members[1]!.taskId).toBeNull();
    const task = await api.expect<{ state: string; progress: Progress }>(200, 'GET', `/v1/tasks/${firstTask.id}`);
    expect(task.state).toBe('cancelled');
    expect(task.progress.bytesDone).toBeGreaterThan(0);
    expect(task.progress.bytesDone).toBeLessThan(SIZE);

    // Done of planned: the first instance counts what its backup did, the second nothing.
    expect(done.sets.error).toEqual(ids);
    expect(done.progress).toEqual({
      percent: Math.round((task.progress.percent / 2) * 10) / 10,
      bytesDone: task.progress.bytesDone,
      bytesTotal: SIZE,
      etaSeconds: 0,
    });
    expect(done.progress!.percent).toBeLessThan(100);
  }, 120_000);
});
