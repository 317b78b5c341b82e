/**
 * F7, maintenance turned on while many backups run: 100 running backups on 5 agents and 30 more
 * queued behind the control plane's ceiling (500 running on 10 agents with
 * `CAIRN_TEST_FAULTS=long`). Global maintenance goes on: every running backup completes, none of
 * the queued ones starts (each fails with the window's message), a new one is refused, and
 * `maintenance.ready` is recorded exactly once, after the last running backup ended.
 */
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { allPages } from '@cairn/test-harness/lists';
import { assignOffering, ENDED, offerDummy, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const LONG = process.env['CAIRN_TEST_FAULTS'] === 'long';
const AGENTS = LONG ? 10 : 5;
const SLOTS = LONG ? 50 : 20;
const RUNNING = AGENTS * SLOTS;
const QUEUED = 30;
// Long enough that every backup is still running when the last one starts (placing 500 on a
// 2-core machine shared by 10 agents takes longer than a minute).
const DURATION_MS = LONG ? 240_000 : 20_000;
const MESSAGE = 'Storage firmware upgrade: backups resume at 06:00 UTC.';

describe.each(backends)('F7: maintenance turned on under load (%s)', (backend) => {
  const stack = withStack(backend, {
    env: { CAIRN_MAX_RUNNING_TASKS: String(RUNNING) },
    agents: Array.from({ length: AGENTS }, (_, i) => ({ name: `host-${i + 1}`, slots: SLOTS })),
  });

  it(
    `${RUNNING} running and ${QUEUED} queued: the running complete, none starts, ready once`,
    { timeout: LONG ? 1_800_000 : 300_000 },
    async () => {
      const api = stack.admin;
      const { offeringId } = await offerDummy(api, 'zone-a', {
        provider: 'dummy',
        offering: 'f7',
        config: { durationMs: DURATION_MS, steps: 4 },
      });
      const instances: string[] = [];
      for (let i = 0; i < RUNNING + QUEUED + 1; i++) {
        const instance = await api.expect(201, 'POST', '/v1/instances', {
          name: `vm-${i}`,
          zone: 'zone-a',
          locator: { vm: `vm-${i}` },
        });
        await assignOffering(api, instance.id, offeringId);
        instances.push(instance.id as string);
      }
      const late = instances.pop()!;
      const tasks: string[] = [];
      for (const id of instances)
        tasks.push(((await api.expect(202, 'POST', `/v1/instances/${id}/backups`)) as { id: string }).id);
      await waitFor(
        async () => (await allPages<{ state: string }>(api, '/v1/tasks?state=running')).length === RUNNING,
        `${RUNNING} backups running`,
        Math.max(120_000, DURATION_MS),
      );

      const on = await api.expect(200, 'PUT', '/v1/maintenance', { enabled: true, message: MESSAGE });
      expect(on).toMatchObject({ enabled: true, ready: false });
      const refused = await api.call('POST', `/v1/instances/${late}/backups`);
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ code: 'maintenance', detail: MESSAGE });

      const ended: TaskBody[] = [];
      for (const id of tasks) ended.push(await waitForTask(api, id, ENDED, 300_000));
      const byId = new Map(
        (await allPages<{ id: string; startedAt: string | null; endedAt: string | null }>(api, '/v1/tasks')).map(
          (t) => [t.id, t],
        ),
      );
      const succeeded = ended.filter((t) => t.state === 'succeeded');
      const refusedQueued = ended.filter((t) => t.state === 'failed' && t.error?.code === 'maintenance');
      const neverStarted = refusedQueued.filter((t) => byId.get(t.id)!.startedAt === null);
      const ready = await waitFor(async () => {
        const m = await api.expect(200, 'GET', '/v1/maintenance');
        return m.ready ? m : undefined;
      }, 'maintenance ready');
      const readyEvents = (await allPages<{ type: string; at: string }>(api, '/v1/events')).filter(
        (e) => e.type === 'maintenance.ready',
      );
      const lastEnd = Math.max(...succeeded.map((t) => Date.parse(byId.get(t.id)!.endedAt!)));
      const figures = `F7 (${backend}): maintenance on with ${on.runningBackups} backups running and ${QUEUED} queued; ${succeeded.length} completed, ${refusedQueued.length} refused with the window's message (${neverStarted.length} never started), ${readyEvents.length} maintenance.ready event(s), ${readyEvents[0] ? `${Date.parse(readyEvents[0].at) - lastEnd} ms after the last backup ended` : 'none'}`;
      console.info(figures);
      expect(on.runningBackups, figures).toBe(RUNNING);
      expect(succeeded, figures).toHaveLength(RUNNING);
      expect(refusedQueued, figures).toHaveLength(QUEUED);
      expect(neverStarted, figures).toHaveLength(QUEUED);
      expect(
        refusedQueued.every((t) => t.error?.message.includes(MESSAGE)),
        figures,
      ).toBe(true);
      expect(ready).toMatchObject({ enabled: true, ready: true, runningBackups: 0 });
      expect(readyEvents, figures).toHaveLength(1);
      expect(Date.parse(readyEvents[0]!.at), figures).toBeGreaterThanOrEqual(lastEnd);
    },
  );
});
