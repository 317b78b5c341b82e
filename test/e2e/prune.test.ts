import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { hasRestic, initialiseRepository, resticCli } from '@cairn/test-harness/restic';
import { backends } from '@cairn/test-harness/databases';
import { assignOffering, protectInstance, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { tempDir } from '@cairn/test-harness/processes';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

/**
 * Deletes only forget; the prune that frees their data, and holds the repository's exclusive lock
 * while it runs, is the SP's: on the prune schedule or `POST …/prune`, and held back by maintenance.
 */
const PASSWORD = 'e2e-prune-password-41c7';
const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];
const DELETES = 20;

/** Asynchronous: a blocked event loop would not see the control plane close an idle keep-alive socket. */
const resticAsync = (repo: string, args: string[]) =>
  promisify(execFile)('restic', args, { env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: PASSWORD } });
const packs = (repo: string) => resticCli(repo, PASSWORD, ['list', 'packs']).split('\n').filter(Boolean).sort();

describe.runIf(hasRestic).each(backends)('deletes forget, prunes are the SP’s (%s)', (backend) => {
  const stack = withStack(backend);
  let admin: Api;
  const work = stack.tempDir('prune-e2e');
  const repo = path.join(work, 'repo');
  const data = { a: path.join(work, 'tenant-a'), b: path.join(work, 'tenant-b') };
  const tenants: Record<'a' | 'b', { api: Api; providerId: string; instanceId: string }> = {} as never;

  beforeAll(async () => {
    for (const dir of Object.values(data)) fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(data.b, 'ledger.csv'), 'b,1000\n');
    admin = stack.admin;
    const { agentId } = await stack.addAgent({ name: 'restic-host', plugins: '@cairn/plugin-restic', roots: [work] });
    for (const t of ['a', 'b'] as const) {
      const tenantId = (await admin.expect(201, 'POST', '/v1/tenants', { name: `tenant-${t}` })).id as string;
      const api = stack.api(await stack.token(tenantId, 'tenant-admin', `${t}-admin`));
      // Each tenant its own connection, both on one repository.
      const providerId = (
        await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
          name: `restic-${t}`,
          plugin: '@cairn/plugin-restic',
          endpoint: repo,
          credentials: { password: PASSWORD },
          // A lock held by another restic is waited for 20 s at most: a forget is far shorter.
          config: { lockWaitMs: 20_000 },
        })
      ).id as string;
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
      const instanceId = (
        await admin.expect(201, 'POST', '/v1/instances', {
          name: `files-${t}`,
          zone: 'zone-a',
          locator: { paths: [data[t]] },
          agentId,
          tenantId,
        })
      ).id as string;
      await assignOffering(api, instanceId, offeringId);
      tenants[t] = { api, providerId, instanceId };
      // The first connection creates the repository (as an SP admin does: no backup ever does);
      // the second finds it there.
      if (t === 'a') await initialiseRepository(admin, 'zone-a', providerId);
    }
  });

  // Generous: 20 deletes and a dozen backups share one agent's slots and restic's locks.
  const ended = (api: Api, id: string) => waitForTask(api, id, ENDED, 600_000);

  it(`${DELETES} deletes by tenant A while B backs up every 5 s: every backup of B succeeds, and no delete prunes`, async () => {
    const { a, b } = tenants;
    // A's restore points: snapshots of A's instance, each with data of its own, adopted by a sync.
    for (let i = 0; i < DELETES; i++) {
      fs.writeFileSync(path.join(data.a, 'blob.bin'), Buffer.alloc(64 * 1024, i + 1));
      await resticAsync(repo, ['backup', '--tag', `cairn-instance=${a.instanceId}`, data.a]);
    }
    const sync = await admin.expect<TaskBody>(202, 'POST', `/v1/zones/zone-a/providers/${a.providerId}/sync`);
    expect((await ended(admin, sync.id)).state).toBe('succeeded');
    const points = (await a.api.expect(200, 'GET', `/v1/backups?instanceId=${a.instanceId}&limit=100`)).items as {
      id: string;
    }[];
    expect(points).toHaveLength(DELETES);
    const packsBefore = packs(repo);

    // B backs up every 5 s for as long as A's deletes take (and at least twice).
    let deleting = true;
    const bTasks: string[] = [];
    const bLoop = (async () => {
      while (deleting || bTasks.length < 2) {
        fs.writeFileSync(path.join(data.b, 'ledger.csv'), `b,${bTasks.length}\n`);
        const t = await b.api.expect<TaskBody>(202, 'POST', `/v1/instances/${b.instanceId}/backups`, { mode: 'FULL' });
        bTasks.push(t.id);
        await sleep(5_000);
      }
    })();
    const started = Date.now();
    const deletes: string[] = [];
    for (const p of points) deletes.push((await a.api.expect<TaskBody>(202, 'DELETE', `/v1/backups/${p.id}`)).id);
    const deleted = await Promise.all(deletes.map((id) => ended(a.api, id)));
    deleting = false;
    await bLoop;
    const bEnded = await Promise.all(bTasks.map((id) => ended(b.api, id)));

    console.log(
      `[prune e2e ${backend}] ${deleted.length} deletes by A in ${Date.now() - started} ms, ${bEnded.length} backups by B meanwhile`,
    );
    for (const t of deleted) expect(t.state, JSON.stringify(t.error)).toBe('succeeded');
    for (const t of bEnded) expect(t.state, JSON.stringify(t.error)).toBe('succeeded');
    // Forgotten, not pruned: every pack there before is still there (B's backups only added some).
    const after = new Set(packs(repo));
    expect(packsBefore.filter((p) => !after.has(p))).toEqual([]);
    expect((await admin.expect(200, 'GET', '/v1/tasks?kind=prune')).items).toEqual([]);
    expect((await a.api.expect(200, 'GET', `/v1/backups?instanceId=${a.instanceId}`)).items).toEqual([]);

    // The SP prunes: what A's deletes forgot is freed; B's newest point still restores.
    const prune = await admin.expect<TaskBody>(202, 'POST', `/v1/zones/zone-a/providers/${b.providerId}/prune`);
    const pruned = await ended(admin, prune.id);
    expect(pruned.state, JSON.stringify(pruned.error)).toBe('succeeded');
    const left = new Set(packs(repo));
    expect(packsBefore.filter((p) => !left.has(p)).length).toBeGreaterThan(0);
    await resticAsync(repo, ['check']);
    const newest = bEnded.at(-1)!;
    fs.writeFileSync(path.join(data.b, 'ledger.csv'), 'overwritten\n');
    const restore = await b.api.expect<TaskBody>(202, 'POST', `/v1/backups/${newest.backupId}/restore`, {});
    expect((await ended(b.api, restore.id)).state).toBe('succeeded');
    expect(fs.readFileSync(path.join(data.b, 'ledger.csv'), 'utf8')).toBe(`b,${bEnded.length - 1}\n`);
  }, 900_000);

  it('a tenant cannot prune; a prune waits while maintenance covers its zone and runs once it ends', async () => {
    const { b } = tenants;
    expect((await b.api.call('POST', `/v1/zones/zone-a/providers/${b.providerId}/prune`)).status).toBe(403);
    await admin.expect(200, 'PUT', '/v1/zones/zone-a/maintenance', { enabled: true, message: 'array swap' });
    const prune = await admin.expect<TaskBody>(202, 'POST', `/v1/zones/zone-a/providers/${b.providerId}/prune`);
    // Asked again while pending: the same task.
    expect((await admin.expect<TaskBody>(202, 'POST', `/v1/zones/zone-a/providers/${b.providerId}/prune`)).id).toBe(
      prune.id,
    );
    await sleep(2_000);
    expect((await admin.expect<TaskBody>(200, 'GET', `/v1/tasks/${prune.id}`)).state).toBe('queued');
    await admin.expect(200, 'PUT', '/v1/zones/zone-a/maintenance', { enabled: false });
    expect((await ended(admin, prune.id)).state).toBe('succeeded');
  });
});

describe.each(backends)('the prune schedule (%s)', (backend) => {
  const stack = withStack(backend, {
    env: { CAIRN_PRUNE_INTERVAL_S: '2' },
    agents: [{ zone: 'zone-p', name: 'dummy-host' }],
  });
  let admin: Api;

  beforeAll(() => {
    admin = stack.admin;
  });

  it('prunes each connection whose plugin declares prune once per interval, and none while maintenance covers it', async () => {
    const storeDir = tempDir('prune-dummy');
    await protectInstance(admin, 'zone-p', { config: { storeDir } });
    const prunes = () => {
      try {
        return fs.readFileSync(path.join(storeDir, 'prunes.log'), 'utf8').split('\n').filter(Boolean).length;
      } catch {
        return 0;
      }
    };
    await waitFor(() => prunes() >= 2, 'two periodic prunes');
    // One connection here: its prunes, each a task of the SP's own (its result follows the file write).
    await waitFor(
      async () =>
        ((await admin.expect(200, 'GET', '/v1/tasks?kind=prune&state=succeeded&limit=100')).items as TaskBody[])
          .length >= 2,
      'two periodic prune tasks succeeded',
    );

    await admin.expect(200, 'PUT', '/v1/zones/zone-p/maintenance', { enabled: true, message: 'storage work' });
    await waitFor(
      async () =>
        ((await admin.expect(200, 'GET', '/v1/tasks?kind=prune&state=queued')).items as TaskBody[]).length > 0,
      'a periodic prune queued during maintenance',
    );
    const during = prunes();
    await sleep(4_000);
    expect(prunes()).toBe(during);
    await admin.expect(200, 'PUT', '/v1/zones/zone-p/maintenance', { enabled: false });
    await waitFor(() => prunes() > during, 'the held prune after maintenance');
  });
});
