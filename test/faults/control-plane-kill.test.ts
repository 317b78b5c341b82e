/**
 * F2, the control plane killed with -9 while many backups run: 100 running backups on 5 agents
 * (1,000 on 20 with `CAIRN_TEST_FAULTS=long`), the control plane killed and started again on the
 * same database. No healthy backup may fail: every one ends `succeeded` at its first attempt with
 * one record and every progress report once; the time from the restart until every agent has a
 * session again and until every backup has ended is printed.
 */
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { allPages } from '@cairn/test-harness/lists';
import { assignOffering, ENDED, offerDummy, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const LONG = process.env['CAIRN_TEST_FAULTS'] === 'long';
const AGENTS = LONG ? 20 : 5;
const SLOTS = LONG ? 50 : 20;
const TASKS = AGENTS * SLOTS;
const STEPS = 8;
// Long enough that every backup is still running when the last one starts: on a 2-core machine
// shared by 20 agents, placing 1,000 backups takes longer than a minute.
const DURATION_MS = LONG ? 240_000 : 20_000;

describe.each(backends)('F2: the control plane killed -9 under load (%s)', (backend) => {
  const stack = withStack(backend, {
    // The control plane may place every backup at once.
    env: { CAIRN_MAX_RUNNING_TASKS: String(TASKS) },
    agents: Array.from({ length: AGENTS }, (_, i) => ({ name: `host-${i + 1}`, slots: SLOTS })),
  });

  it(
    `${TASKS} running backups on ${AGENTS} agents: all succeed, once`,
    { timeout: LONG ? 1_800_000 : 300_000 },
    async () => {
      const api = stack.admin;
      const { offeringId } = await offerDummy(api, 'zone-a', {
        provider: 'dummy',
        offering: 'f2',
        config: { durationMs: DURATION_MS, steps: STEPS },
      });
      // The instances first (the slow part), then every backup at once.
      const instances: string[] = [];
      for (let i = 0; i < TASKS; i++) {
        const instance = await api.expect(201, 'POST', '/v1/instances', {
          name: `vm-${i}`,
          zone: 'zone-a',
          locator: { vm: `vm-${i}` },
        });
        await assignOffering(api, instance.id, offeringId);
        instances.push(instance.id as string);
      }
      const tasks: string[] = [];
      const queuedAt = performance.now();
      for (const id of instances)
        tasks.push(((await api.expect(202, 'POST', `/v1/instances/${id}/backups`)) as { id: string }).id);
      await waitFor(
        async () => {
          const running = await allPages<{ state: string }>(api, '/v1/tasks?state=running');
          const over = await allPages<{ state: string }>(api, '/v1/tasks?state=succeeded');
          if (over.length > 0)
            throw new Error(`${over.length} backups ended before all ${TASKS} ran: make them longer`);
          return running.length === TASKS;
        },
        `all ${TASKS} backups running`,
        Math.max(120_000, DURATION_MS),
      );
      const allRunningS = (performance.now() - queuedAt) / 1000;

      const { port } = stack.cp;
      await stack.cp.proc.kill9();
      const restartedAt = performance.now();
      const api2 = stack.adminOf(await stack.controlPlane({ port }));
      await waitFor(
        async () => {
          const agents = await allPages<{ state: string }>(api2, '/v1/agents');
          return agents.filter((a) => a.state === 'connected').length === AGENTS;
        },
        'every agent connected to the new process',
        120_000,
      );
      const rehomedS = (performance.now() - restartedAt) / 1000;

      const ended: TaskBody[] = [];
      for (const id of tasks) ended.push(await waitForTask(api2, id, ENDED, 300_000));
      const allEndedS = (performance.now() - restartedAt) / 1000;

      const notSucceeded = ended.filter((t) => t.state !== 'succeeded' || t.attempt !== 1);
      const backups = await allPages<{ taskId: string }>(api2, '/v1/backups');
      const records = new Map<string, number>();
      for (const b of backups) records.set(b.taskId, (records.get(b.taskId) ?? 0) + 1);
      let progressOff = 0;
      for (const t of ended) {
        const progress = await allPages<{ percent: number }>(api2, `/v1/tasks/${t.id}/progress`);
        if (progress.length !== STEPS) progressOff++;
      }
      const figures = `F2 (${backend}): ${TASKS} running backups on ${AGENTS} agents, all running ${allRunningS.toFixed(1)} s after the first was queued, control plane killed -9 and restarted; every agent back in ${rehomedS.toFixed(1)} s, every backup ended ${allEndedS.toFixed(1)} s after the restart; ${TASKS - notSucceeded.length} succeeded at attempt 1, ${notSucceeded.length} did not; ${backups.length} records; ${progressOff} tasks with other than ${STEPS} progress reports`;
      console.info(figures);
      expect(notSucceeded, figures).toEqual([]);
      expect(backups, figures).toHaveLength(TASKS);
      expect(
        [...records.values()].every((n) => n === 1),
        figures,
      ).toBe(true);
      expect(progressOff, figures).toBe(0);
    },
  );
});
