/**
 * What wakes the dispatcher while every slot is taken. Work queued then cannot be placed, so a
 * create runs no placement round; a cancel it asks for is still delivered at once, and the task
 * end that frees the slot places the next task. The dispatch timer is set far beyond the test:
 * every round here comes from a wake or a task's end, never from the timer.
 */
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

interface TaskBody {
  id: string;
  state: string;
  error: { code: string } | null;
}

describe.each(backends)('dispatch while every slot is taken (%s)', (backend) => {
  const stack = withStack(backend, {
    env: { CAIRN_DISPATCH_POLL_MS: '600000' },
    agents: [{ zone: 'zone-w', name: 'host-w', slots: 1 }],
  });

  it('delivers a cancel at once, and places the next queued task as soon as the slot frees', async () => {
    const { admin } = stack;
    const provider = await admin.expect(201, 'POST', '/v1/zones/zone-w/providers', {
      name: 'long',
      plugin: '@cairn/plugin-dummy',
      tenantLocators: 'any',
      // Far longer than the test: a backup ends only by its cancel.
      config: { durationMs: 600_000, steps: 600, sizeBytes: 1 },
    });
    const offering = await admin.expect(201, 'POST', '/v1/offerings', {
      name: 'long',
      zone: 'zone-w',
      providerId: provider.id,
      allowAdhoc: true,
      allowUserSchedules: false,
    });
    const tenant = await stack.tenant('waker', { tokenName: 'waker', grants: [offering.id] });
    const backup = async (i: number) => {
      const row = await tenant.api.expect(201, 'POST', '/v1/instances', {
        name: `vm-${i}`,
        zone: 'zone-w',
        locator: { vm: `w-${i}` },
      });
      await tenant.api.expect(200, 'PUT', `/v1/instances/${row.id}/offering`, { offeringId: offering.id });
      return (await tenant.api.expect<TaskBody>(202, 'POST', `/v1/instances/${row.id}/backups`)).id;
    };
    const task = async (id: string) => tenant.api.expect<TaskBody>(200, 'GET', `/v1/tasks/${id}`);
    const inState = (id: string, state: string, what: string) =>
      waitFor(async () => ((await task(id)).state === state ? true : undefined), what, 20_000);

    const first = await backup(1);
    await inState(first, 'running', 'the first backup running');
    // Queued while the one slot is taken: their wakes place nothing.
    const second = await backup(2);
    const third = await backup(3);
    expect((await task(second)).state).toBe('queued');
    expect((await task(third)).state).toBe('queued');

    // A cancel is delivered by the wake it asks for, not the timer.
    await tenant.api.expect(202, 'POST', `/v1/tasks/${first}/cancel`);
    await inState(first, 'cancelled', 'the first backup cancelled');
    // Its end freed the slot: the next in the queue runs, the one after waits.
    await inState(second, 'running', 'the second backup running after the first ended');
    expect((await task(third)).state).toBe('queued');

    // Once more with a task queued while full: cancelling a queued task needs no agent at all.
    const fourth = await backup(4);
    await tenant.api.expect(202, 'POST', `/v1/tasks/${fourth}/cancel`);
    expect((await task(fourth)).state).toBe('cancelled');
    await tenant.api.expect(202, 'POST', `/v1/tasks/${second}/cancel`);
    await inState(second, 'cancelled', 'the second backup cancelled');
    await inState(third, 'running', 'the third backup running after the second ended');
    await tenant.api.expect(202, 'POST', `/v1/tasks/${third}/cancel`);
    await inState(third, 'cancelled', 'the third backup cancelled');
  }, 120_000);
});
