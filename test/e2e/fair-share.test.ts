import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { withStack, type Tenant } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

interface TaskRow {
  id: string;
  tenantId: string;
  state: string;
  dispatchedAt: string | null;
  endedAt: string | null;
}

// One agent with one slot: every dispatch is one slot turn, and their order is the whole story.
describe.each(backends)('fair share between tenants at equal priority (%s)', (backend) => {
  const stack = withStack(backend, { agents: [{ zone: 'zone-f', name: 'host-f', slots: 1 }] });

  it('a tenant whose job of 8 is running gets the next slot only after another tenant’s job got one', async () => {
    const { admin } = stack;
    const provider = await admin.expect(201, 'POST', '/v1/zones/zone-f/providers', {
      name: 'fair',
      plugin: '@cairn/plugin-dummy',
      tenantLocators: 'any',
      config: { durationMs: 150, steps: 1, sizeBytes: 1 },
    });
    const offering = await admin.expect(201, 'POST', '/v1/offerings', {
      name: 'fair',
      zone: 'zone-f',
      providerId: provider.id,
      allowAdhoc: true,
      allowUserSchedules: true,
    });
    const flood = await stack.tenant('flood', { tokenName: 'flood', grants: [offering.id] });
    const small = await stack.tenant('small', { tokenName: 'small', grants: [offering.id] });
    const jobOf = async (t: Tenant, count: number) => {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const row = await t.api.expect(201, 'POST', '/v1/instances', {
          name: `vm-${i}`,
          zone: 'zone-f',
          locator: { vm: `${t.id}-${i}` },
        });
        await t.api.expect(200, 'PUT', `/v1/instances/${row.id}/offering`, { offeringId: offering.id });
        ids.push(row.id as string);
      }
      return t.api.expect(201, 'POST', '/v1/backup-jobs', {
        name: 'all',
        instanceIds: ids,
        mode: 'FULL',
        execution: 'PARALLEL',
        priority: 10,
      });
    };
    const floodJob = await jobOf(flood, 8);
    const smallJob = await jobOf(small, 2);
    const backups = async () => (await admin.expect(200, 'GET', '/v1/tasks?kind=backup&limit=500')).items as TaskRow[];

    await flood.api.expect(202, 'POST', `/v1/backup-jobs/${floodJob.id}/run`);
    // The flood holds the slot and seven more of its backups wait when the small tenant arrives.
    await waitFor(
      async () => (await backups()).some((t) => t.tenantId === flood.id && t.dispatchedAt !== null),
      'the first backup of the flood to be dispatched',
    );
    await small.api.expect(202, 'POST', `/v1/backup-jobs/${smallJob.id}/run`);
    const all = await waitFor(
      async () => {
        const rows = await backups();
        return rows.length === 10 && rows.every((t) => t.endedAt !== null) ? rows : undefined;
      },
      'all 10 backups to end',
      60_000,
    );
    expect(all.every((t) => t.state === 'succeeded')).toBe(true);

    const order = [...all]
      .sort((a, b) => Date.parse(a.dispatchedAt!) - Date.parse(b.dispatchedAt!) || (a.id < b.id ? -1 : 1))
      .map((t) => (t.tenantId === small.id ? 'small' : 'flood'));
    // The flood's first backup ran alone; after it, the small tenant's two come each after at most
    // one more of the flood's (the slot alternates while both have work).
    const smallAt = order.flatMap((who, i) => (who === 'small' ? [i] : []));
    expect(order[0]).toBe('flood');
    expect(smallAt[0]).toBeLessThanOrEqual(2);
    expect(smallAt[1]! - smallAt[0]!).toBeLessThanOrEqual(2);
  }, 120_000);
});
