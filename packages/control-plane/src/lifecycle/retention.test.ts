import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import type { AgentHelloInfo } from '../store/agent-repository.js';
import { HANDLES_CHAINS } from './retention.js';
import { transact } from '../store/db.js';
import { PLUGIN, backupTask as newBackup, storeFixture } from '../testing/store-fixture.js';

const hello = (capabilities: string[]): AgentHelloInfo => ({
  zone: 'z',
  slots: 1,
  plugins: [{ name: PLUGIN, version: '1', apiVersion: 1, capabilities }],
  agentVersion: '1',
  hostname: 'h',
  draining: false,
  drainMessage: '',
  shuttingDown: false,
});

// Where the chain trait is decided: the agents of the zone, read inside the report's transaction.
describe.each(backends)('retention through the provider (%s)', (backend) => {
  const f = storeFixture(backend);
  const { agents, backups, tasks, catalog, retention } = f.repos;
  let tenantId: string;
  let agentIds: string[];
  let providerId: string;
  let offeringId: string;

  beforeAll(async () => {
    tenantId = f.providerTenant;
    agentIds = [await f.agent('a1'), await f.agent('a2')];
    providerId = (await f.provider({ credentials: {} })).id;
    offeringId = (await f.offering({ providerId, sla: { cron: '0 2 * * *', keepLast: 1 } })).id;
  });

  const backupTask = (instanceId: string) => tasks.create(newBackup({ tenantId, instanceId, offeringId, providerId }));

  /** An instance with a full and an increment on it; the task of the increment. */
  async function chainOfTwo() {
    const instance = await f.instance();
    await catalog.setInstanceOffering(instance.id, offeringId);
    const made = [];
    for (const [i, mode] of (['FULL', 'INCREMENT'] as const).entries()) {
      const task = await backupTask(instance.id);
      await transact(f.store.db, (trx) =>
        backups.recordFromTask(
          trx,
          task,
          { externalId: `ext-${i}`, sizeBytes: 1, addedBytes: 1, mode, parentExternalId: i ? 'ext-0' : '' },
          Date.now() + i,
        ),
      );
      made.push(task);
    }
    return { instanceId: instance.id, task: made[1]! };
  }

  const deletesOf = async (instanceId: string) =>
    (await tasks.list({ limit: 50 }, { instanceId, kind: 'delete-backup' })).items;

  it('keeps the base of a kept increment unless every agent of the zone declares handles-chains', async () => {
    await agents.markConnected(agentIds[0]!, 's1', hello(['backup', 'delete-backup', HANDLES_CHAINS]));
    await agents.markConnected(agentIds[1]!, 's2', hello(['backup', 'delete-backup']));
    const mixed = await chainOfTwo();
    await transact(f.store.db, (trx) => retention.afterBackup(trx, mixed.task, Date.now()));
    expect(await deletesOf(mixed.instanceId)).toEqual([]);

    await agents.markConnected(agentIds[1]!, 's2', hello(['backup', 'delete-backup', HANDLES_CHAINS]));
    const all = await chainOfTwo();
    for (let i = 0; i < 2; i++) {
      // A second run while the first delete is pending queues nothing more.
      await transact(f.store.db, (trx) => retention.afterBackup(trx, all.task, Date.now()));
    }
    const deletes = await deletesOf(all.instanceId);
    expect(deletes).toHaveLength(1);
    const base = (await transact(f.store.db, (trx) => backups.ofInstance(trx, all.instanceId))).find(
      (b) => b.mode === 'FULL',
    )!;
    expect(deletes[0]).toMatchObject({ kind: 'delete-backup', state: 'queued', backupId: base.id });
    // The instance goes with the delete: a plugin refuses a point tagged for another one.
    expect(JSON.parse(deletes[0]!.params)).toEqual({
      backupExternalId: 'ext-0',
      locator: {},
      instanceId: all.instanceId,
    });
    expect(base.deleteTaskId).toBe(deletes[0]!.id);
  });

  it('ranks by recorded time: a clock stepped back and a point dated 2099 never doom the backup just made', async () => {
    await agents.markConnected(agentIds[0]!, 's1', hello(['backup', 'delete-backup']));
    await agents.markConnected(agentIds[1]!, 's2', hello(['backup', 'delete-backup']));
    const instance = await f.instance({ name: 'clocked' });
    await catalog.setInstanceOffering(instance.id, offeringId);
    const now = Date.parse('2026-06-01T00:00:00Z');
    let clock = now;
    const clocked = f.backupsOn({ now: () => clock });
    const of = (id: string) =>
      transact(f.store.db, async (trx) => (await clocked.ofInstance(trx, instance.id)).find((b) => b.id === id)!);
    const adopt = (externalId: string, createdAt: number) =>
      transact(f.store.db, (trx) =>
        clocked.adopt(
          trx,
          { id: instance.id, tenantId, name: 'clocked', offeringId },
          { externalId, createdAt, sizeBytes: 1, mode: 'FULL', parentId: null, expiresAt: null },
          clock,
        ),
      );
    /** A backup task's result recorded at `clock`, then keep-last (1) as after every backup. */
    const made = async (externalId: string) => {
      const task = await backupTask(instance.id);
      await transact(f.store.db, async (trx) => {
        await clocked.recordFromTask(
          trx,
          task,
          { externalId, sizeBytes: 1, addedBytes: 1, mode: 'FULL', parentExternalId: '' },
          clock,
        );
        await retention.afterBackup(trx, task, clock);
      });
      return (await tasks.get(task.id))!.backupId!;
    };
    const doomed = async () => (await deletesOf(instance.id)).map((t) => t.backupId).sort();

    const y2099 = Date.parse('2099-01-01T00:00:00Z');
    const first = await adopt('from-2099', y2099);
    // No backup of Cairn's yet: recorded at now.
    expect(first).toMatchObject({ futureDated: true, row: { createdAt: y2099, recordedAt: now } });

    clock = now - 365 * 24 * 3600_000; // stepped back a year
    const b1 = await made('b1');
    expect((await of(b1)).recordedAt).toBe(now + 1);
    expect(await doomed()).toEqual([first.row.id]);

    clock = now + 1000 * 24 * 3600_000; // forward, then back again
    const b2 = await made('b2');
    clock = now - 1;
    const b3 = await made('b3');
    expect((await of(b3)).recordedAt).toBe((await of(b2)).recordedAt + 1);
    expect((await of(b3)).createdAt).toBe(now - 1);
    expect(await doomed()).toEqual([first.row.id, b1, b2].sort());
    expect((await clocked.latest(instance.id))?.id).toBe(b3);

    // Found dated ahead of the clock: below every backup Cairn made (b1 is the oldest still there).
    clock = now + 5000 * 24 * 3600_000;
    const second = await adopt('from-2099-too', y2099);
    expect(second).toMatchObject({ futureDated: true, row: { recordedAt: (await of(b1)).recordedAt - 1 } });
    expect((await clocked.latest(instance.id))?.id).toBe(b3);
    // Within the skew allowance of the clock: recorded at now, not future-dated, and the newest.
    const near = await adopt('near', clock + 60_000);
    expect(near).toMatchObject({ futureDated: false, row: { recordedAt: clock } });
    expect((await clocked.latest(instance.id))?.id).toBe(near.row.id);
  });
});
