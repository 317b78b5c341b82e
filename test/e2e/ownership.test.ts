import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { hasRestic, initialiseRepository } from '@cairn/test-harness/restic';
import { backends } from '@cairn/test-harness/databases';
import { assignOffering, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';

/**
 * Two tenants' restic connections on ONE repository: a sync of one connection lists the other
 * tenant's snapshots too, and must adopt none of them, whatever the instances' locators say.
 */
const PASSWORD = 'e2e-ownership-password-5e2a';
const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];

function snapshots(repo: string): string[] {
  const out = execFileSync('restic', ['snapshots', '--json'], {
    encoding: 'utf8',
    env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: PASSWORD },
    stdio: 'pipe',
  });
  return (JSON.parse(out) as { short_id: string }[]).map((s) => s.short_id).sort();
}

describe.runIf(hasRestic).each(backends)(
  'restore points on a shared repository stay their tenant’s (%s)',
  (backend) => {
    const stack = withStack(backend);
    let admin: Api;
    const work = stack.tempDir('ownership-e2e');
    const repo = path.join(work, 'repo');
    const dataB = path.join(work, 'tenant-b', 'data');
    const tenants: Record<'a' | 'b', { id: string; api: Api; providerId: string; instanceId: string }> = {} as never;

    beforeAll(async () => {
      fs.mkdirSync(dataB, { recursive: true });
      fs.writeFileSync(path.join(dataB, 'ledger.csv'), 'b,1000\n');
      admin = stack.admin;
      const { agentId } = await stack.addAgent({ name: 'restic-host', plugins: '@cairn/plugin-restic', roots: [work] });

      const ids: Record<'a' | 'b', string> = { a: '', b: '' };
      for (const t of ['a', 'b'] as const) {
        ids[t] = (await admin.expect(201, 'POST', '/v1/tenants', { name: `tenant-${t}` })).id as string;
      }
      // B's instance first: A's is given a locator equal to what the repository lists for B's points.
      for (const t of ['b', 'a'] as const) {
        const tenantId = ids[t];
        const api = stack.api(await stack.token(tenantId, 'tenant-admin', `${t}-admin`));
        // Each tenant its own connection, both on one repository (tenantLocators: sp-only).
        const providerId = (
          await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
            name: `restic-${t}`,
            plugin: '@cairn/plugin-restic',
            endpoint: repo,
            credentials: { password: PASSWORD },
          })
        ).id as string;
        // The first makes the repository; the second finds it there and records the same identity.
        await initialiseRepository(admin, 'zone-a', providerId);
        const offeringId = (
          await admin.expect(201, 'POST', '/v1/offerings', {
            name: `files-${t}`,
            zone: 'zone-a',
            providerId,
            allowAdhoc: true,
            allowUserSchedules: false,
          })
        ).id as string;
        await admin.expect(201, 'POST', `/v1/offerings/${offeringId}/grants`, { tenantId });
        const locator = t === 'b' ? { paths: [dataB] } : { instanceId: tenants.b.instanceId };
        const instanceId = (
          await admin.expect(201, 'POST', '/v1/instances', {
            name: `files-${t}`,
            zone: 'zone-a',
            locator,
            agentId,
            tenantId,
          })
        ).id as string;
        await assignOffering(api, instanceId, offeringId);
        tenants[t] = { id: tenantId, api, providerId, instanceId };
      }
    });

    async function run(api: Api, method: 'POST', url: string, body?: unknown): Promise<TaskBody> {
      const started = await api.expect<TaskBody>(202, method, url, body);
      return waitForTask(api, started.id, ENDED, 60_000);
    }

    it("a sync of A's connection adopts none of B's points; A cannot delete them; B still restores", async () => {
      const { a, b } = tenants;
      const backup = await run(b.api, 'POST', `/v1/instances/${b.instanceId}/backups`, { mode: 'FULL' });
      expect(backup.state, JSON.stringify(backup.error)).toBe('succeeded');
      const point = await b.api.expect(200, 'GET', `/v1/backups/${backup.backupId}`);
      expect(snapshots(repo)).toEqual([point.externalId]);

      // A's sync lists B's snapshot (tagged cairn-instance=<B's instance>): not A's, not adopted.
      const sync = await run(admin, 'POST', `/v1/zones/zone-a/providers/${a.providerId}/sync`);
      expect(sync.state, JSON.stringify(sync.error)).toBe('succeeded');
      const drift = await admin.expect(200, 'GET', `/v1/zones/zone-a/providers/${a.providerId}/drift`);
      expect(drift.counts).toMatchObject({ adopted: 0, orphaned: 1 });
      expect(drift.orphaned).toEqual([point.externalId]);
      expect((await a.api.expect(200, 'GET', `/v1/backups?instanceId=${a.instanceId}`)).items).toEqual([]);
      expect((await a.api.expect(200, 'GET', '/v1/backups')).items).toEqual([]);

      // A cannot reach B's record to delete it; the snapshot stays.
      const del = await a.api.call('DELETE', `/v1/backups/${point.id}`);
      expect(del.status).toBe(404);
      expect((await admin.expect(200, 'GET', `/v1/tasks?kind=delete-backup`)).items).toEqual([]);
      expect(snapshots(repo)).toEqual([point.externalId]);

      // B's own sync knows its point; B restores it in place.
      const own = await run(admin, 'POST', `/v1/zones/zone-a/providers/${b.providerId}/sync`);
      expect(own.state).toBe('succeeded');
      expect((await admin.expect(200, 'GET', `/v1/zones/zone-a/providers/${b.providerId}/drift`)).counts).toMatchObject(
        {
          known: 1,
          adopted: 0,
        },
      );
      fs.writeFileSync(path.join(dataB, 'ledger.csv'), 'b,0\n');
      const restore = await run(b.api, 'POST', `/v1/backups/${point.id}/restore`, {});
      expect(restore.state, JSON.stringify(restore.error)).toBe('succeeded');
      expect(fs.readFileSync(path.join(dataB, 'ledger.csv'), 'utf8')).toBe('b,1000\n');
    });
  },
);
