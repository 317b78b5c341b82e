/**
 * Fair turns with agents spread over two replicas: each replica keeps its own `lastServed` (the
 * tie-break of the dispatch order) in memory, but the order's first key, the tasks each tenant's
 * agents hold, is read from the database at every round. So a tenant that queued a flood first
 * does not run ahead of one that queued after it, whichever replica holds which agent.
 */
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { allPages } from '@cairn/test-harness/lists';
import type { ControlPlaneProc } from '@cairn/test-harness/processes';
import { assignOffering, ENDED, offerDummy, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';

const PER_TENANT = 20;
const SLOTS = 2;

describe.runIf(backends.includes('mysql'))('fair turns across two replicas of one MySQL database', () => {
  const stack = withStack('mysql', { replicas: 2 });

  it(`interleaves two tenants' ${PER_TENANT} backups each on one agent per replica`, { timeout: 300_000 }, async () => {
    const [a, b] = stack.replicas as [ControlPlaneProc, ControlPlaneProc];
    const { offeringId } = await offerDummy(stack.admin, 'zone-a', { provider: 'dummy', offering: 'fair' });
    const tenants = [
      await stack.tenant('first', { grants: [offeringId] }),
      await stack.tenant('second', { grants: [offeringId] }),
    ];
    // The first tenant's backups are all queued before the second's, through one replica each.
    const ids: string[][] = [[], []];
    for (const [t, tenant] of tenants.entries())
      for (let i = 0; i < PER_TENANT; i++) {
        const row = await tenant.api.expect(201, 'POST', '/v1/instances', {
          name: `vm-${i}`,
          zone: 'zone-a',
          locator: { dummy: { durationMs: 1000, steps: 1, sizeBytes: 10 } },
        });
        await assignOffering(tenant.api, row.id, offeringId);
        ids[t]!.push(row.id as string);
      }
    const tasks: string[][] = [[], []];
    for (const [t, tenant] of tenants.entries()) {
      const api = stack.api(tenant.token, t === 0 ? a : b);
      for (const id of ids[t]!) tasks[t]!.push((await api.expect(202, 'POST', `/v1/instances/${id}/backups`)).id);
    }
    // The agents come once every backup waits: one on each replica, its own URL only.
    await stack.addAgent({ slots: SLOTS, args: ['--server', a.url] });
    await stack.addAgent({ slots: SLOTS, args: ['--server', b.url] });
    const ended: TaskBody[] = [];
    for (const id of tasks.flat()) ended.push(await waitForTask(stack.admin, id, ENDED, 120_000));
    expect(ended.filter((t) => t.state !== 'succeeded')).toEqual([]);

    // The order the backups started in: in every prefix, how far one tenant ran ahead.
    const all = await allPages<{ id: string; tenantId: string; startedAt: string }>(
      stack.admin,
      '/v1/tasks?kind=backup',
    );
    const started = all.sort((x, y) => Date.parse(x.startedAt) - Date.parse(y.startedAt));
    let gap = 0;
    let worst = 0;
    // While both still have backups waiting: the last 2 × slots start with one tenant's alone left.
    for (const t of started.slice(0, 2 * PER_TENANT - 2 * 2 * SLOTS)) {
      gap += t.tenantId === tenants[0]!.id ? 1 : -1;
      worst = Math.max(worst, Math.abs(gap));
    }
    const firstHalf = started.slice(0, PER_TENANT).filter((t) => t.tenantId === tenants[0]!.id).length;
    console.log(
      `fair turns on 2 replicas, 2 agents of ${SLOTS} slots: of the first ${PER_TENANT} backups started, ${firstHalf} were the first tenant's; the most one tenant ran ahead in start order: ${worst}`,
    );
    // First come would start all ${PER_TENANT} of the first tenant's before any of the second's.
    // Each replica may hand its free slots to the same tenant in one round before the other's
    // claim is seen: at most one round of both agents' slots ahead.
    expect(worst).toBeLessThanOrEqual(2 * SLOTS);
  });
});
