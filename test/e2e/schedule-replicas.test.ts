import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backupTasks, eventsOf } from '@cairn/test-harness/clock';
import { backends } from '@cairn/test-harness/databases';
import { assignOffering } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const FIRES = 50;

// Replicas share one MySQL database; SQLite is the single-process quick start.
describe.runIf(backends.includes('mysql'))('two control-plane replicas firing schedules on one MySQL database', () => {
  const stack = withStack('mysql', {
    clockAt: '2026-06-01T00:00:30Z',
    replicas: 2,
    agents: [{ name: 'replica-host' }],
  });
  let api: Api;
  const ids: string[] = [];

  beforeAll(async () => {
    api = stack.adminOf(stack.replicas[1]!);
    const provider = await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'fast',
      plugin: '@cairn/plugin-dummy',
      config: { durationMs: 0, steps: 1, sizeBytes: 1000 },
    });
    const sla = await api.expect(201, 'POST', '/v1/offerings', {
      name: 'every-minute',
      zone: 'zone-a',
      providerId: provider.id,
      allowAdhoc: false,
      allowUserSchedules: true,
      sla: { cron: '* * * * *', timezone: 'UTC', keepLast: 100 },
    });
    const self = await api.expect(201, 'POST', '/v1/offerings', {
      name: 'self',
      zone: 'zone-a',
      providerId: provider.id,
      allowAdhoc: false,
      allowUserSchedules: true,
      // Its user schedule fires every minute, the lowest floor an offering may have.
      minUserScheduleIntervalS: 60,
    });
    for (const [name, offeringId] of [
      ['sla-1', sla.id],
      ['sla-2', sla.id],
      ['user-1', self.id],
    ] as const) {
      const row = await api.expect(201, 'POST', '/v1/instances', { name, zone: 'zone-a', locator: { vm: name } });
      await assignOffering(api, row.id, offeringId);
      ids.push(row.id);
    }
    await api.expect(200, 'PUT', `/v1/instances/${ids[2]}/schedule`, {
      cron: '* * * * *',
      timezone: 'UTC',
      keepLast: 100,
    });
  });

  it(`makes exactly one backup per fire over ${FIRES} fires`, async () => {
    for (let i = 1; i <= FIRES; i++) {
      const at = new Date(Date.parse('2026-06-01T00:00:00Z') + i * 60_000).toISOString();
      // Both replicas have seen the fire time, so both have tried to claim it.
      await stack.step(at);
      await waitFor(async () => {
        for (const id of ids) {
          const tasks = await backupTasks(api, id);
          if (tasks.length !== i || tasks.some((t) => t.state !== 'succeeded')) return false;
        }
        return true;
      }, `fire ${i} to be backed up`);
    }
    for (const id of ids) {
      expect(await backupTasks(api, id)).toHaveLength(FIRES);
      expect((await api.expect(200, 'GET', `/v1/backups?instanceId=${id}&limit=500`)).items).toHaveLength(FIRES);
      // A second claim of a fire would have met the first one's task: a skip or a second task.
      expect(await eventsOf(api, 'schedule.skipped', id)).toHaveLength(0);
      expect(await eventsOf(api, 'schedule.caught_up', id)).toHaveLength(0);
    }
  });
});
