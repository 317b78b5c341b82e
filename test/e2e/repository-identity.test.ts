/**
 * A restic repository on a disk that is unmounted and mounted again, with real processes: no
 * backup ever creates a repository (an empty mount point fails REPOSITORY_NOT_FOUND and stays
 * empty), a sync of it marks nothing vanished, another repository at the mount point fails
 * REPOSITORY_CHANGED, and once the disk is back every earlier point restores.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { treeDigest } from '@cairn/test-harness/files';
import { hasRestic, initialiseRepository, protectPaths, resticCli } from '@cairn/test-harness/restic';
import { waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';

const PASSWORD = 'e2e-identity-password-1c9e';
const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];

interface BackupBody {
  id: string;
  externalId: string;
  vanishedAt: string | null;
}

const restic = (repo: string, args: string[]) => resticCli(repo, PASSWORD, args);

const repositoryId = (repo: string) => (JSON.parse(restic(repo, ['cat', 'config'])) as { id: string }).id;

describe.runIf(hasRestic).each(backends)('a restic repository on a disk that goes away (%s)', (backend) => {
  const stack = withStack(backend);
  let api: Api;
  const work = stack.tempDir('identity-e2e');
  /** Where the repository's disk is mounted: the repository is the mount point itself. */
  const mount = path.join(work, 'mnt');
  /** Where the disk's content goes while it is "unmounted". */
  const away = path.join(work, 'away');
  const data = path.join(work, 'data');
  let providerId: string;
  let instanceId: string;
  let identity: string;
  /** The restore points made before the disk went away, with the data each holds. */
  const points: { backupId: string; digest: Map<string, string> }[] = [];

  const provider = () => api.expect(200, 'GET', `/v1/zones/zone-a/providers/${providerId}`);
  const records = async () =>
    (await api.expect(200, 'GET', `/v1/backups?instanceId=${instanceId}&limit=500`)).items as BackupBody[];

  async function backup(state: 'succeeded' | 'failed'): Promise<TaskBody> {
    const started = await api.expect<TaskBody>(202, 'POST', `/v1/instances/${instanceId}/backups`, {});
    const done = await waitForTask(api, started.id, ENDED, 60_000);
    expect(done.state, JSON.stringify(done.error)).toBe(state);
    return done;
  }

  async function sync(): Promise<TaskBody> {
    const started = await api.expect(202, 'POST', `/v1/zones/zone-a/providers/${providerId}/sync`);
    return waitForTask(api, started.id as string, ENDED, 60_000);
  }

  async function restore(backupId: string): Promise<{ task: TaskBody; target: string }> {
    const target = fs.mkdtempSync(path.join(work, 'restored-'));
    const started = await api.expect<TaskBody>(202, 'POST', `/v1/backups/${backupId}/restore`, { targetPath: target });
    return { task: await waitForTask(api, started.id, ENDED, 60_000), target };
  }

  beforeAll(async () => {
    fs.mkdirSync(mount);
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'ledger.csv'), 'a,1\n');
    fs.writeFileSync(path.join(data, 'blob.bin'), randomBytes(64 * 1024));
    api = stack.admin;
    const { agentId } = await stack.addAgent({ name: 'restic-host', plugins: '@cairn/plugin-restic', roots: [work] });
    providerId = (
      await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
        name: 'restic-disk',
        plugin: '@cairn/plugin-restic',
        endpoint: mount,
        credentials: { password: PASSWORD },
      })
    ).id as string;
    ({ instanceId } = await protectPaths(api, { zone: 'zone-a', providerId, agentId, name: 'files', paths: [data] }));
  });

  it('makes no repository before an SP admin asks: the preflight fails, then initialises on request', async () => {
    const before = await api.expect(200, 'POST', `/v1/zones/zone-a/providers/${providerId}/preflight`, {});
    expect(before.ok).toBe(false);
    expect(before.checks).toContainEqual(
      expect.objectContaining({ name: 'repository', ok: false, advice: expect.stringContaining('initialise') }),
    );
    await backup('failed');
    expect(fs.readdirSync(mount)).toEqual([]);

    const init = await initialiseRepository(api, 'zone-a', providerId);
    identity = repositoryId(mount);
    expect(init.checks).toContainEqual(
      expect.objectContaining({ name: 'repository', ok: true, message: expect.stringContaining('initialised it') }),
    );
    expect(await provider()).toMatchObject({ repositoryIdentity: identity });
    // The report that recorded it is no event anyone reads.
    const events = (await api.expect(200, 'GET', '/v1/events?after=0&limit=500')).items as { type: string }[];
    expect(events.map((e) => e.type)).not.toContain('repository.identity');
  });

  it('backs up twice into the repository', async () => {
    for (let i = 0; i < 2; i++) {
      fs.writeFileSync(path.join(data, 'ledger.csv'), `a,${i + 2}\n`);
      const done = await backup('succeeded');
      points.push({ backupId: done.backupId!, digest: treeDigest(data) });
    }
  });

  it('with the disk unmounted, a backup fails REPOSITORY_NOT_FOUND and creates nothing at the mount point', async () => {
    fs.renameSync(mount, away);
    fs.mkdirSync(mount);
    const failed = await backup('failed');
    expect(failed.error).toMatchObject({ code: 'REPOSITORY_NOT_FOUND', message: expect.stringContaining(mount) });
    expect(fs.readdirSync(mount)).toEqual([]);
  });

  it('a sync of the empty mount point fails and marks nothing vanished', async () => {
    const done = await sync();
    expect(done).toMatchObject({ state: 'failed', error: { code: 'REPOSITORY_NOT_FOUND' } });
    expect((await records()).map((b) => b.vanishedAt)).toEqual([null, null]);
    // A restore of an earlier point is tried (it is not backup_vanished), and fails as the backup did.
    const { task } = await restore(points[0]!.backupId);
    expect(task).toMatchObject({ state: 'failed', error: { code: 'REPOSITORY_NOT_FOUND' } });
    expect(fs.readdirSync(mount)).toEqual([]);
  });

  it('another repository at the mount point fails REPOSITORY_CHANGED, naming both, and is left as it was', async () => {
    restic(mount, ['init']);
    const other = repositoryId(mount);
    const failed = await backup('failed');
    expect(failed.error).toMatchObject({ code: 'REPOSITORY_CHANGED' });
    expect(failed.error!.message).toContain(other);
    expect(failed.error!.message).toContain(identity);
    expect(JSON.parse(restic(mount, ['snapshots', '--json']))).toEqual([]);
    expect(await sync()).toMatchObject({ state: 'failed', error: { code: 'REPOSITORY_CHANGED' } });
    expect((await records()).map((b) => b.vanishedAt)).toEqual([null, null]);
    expect(await provider()).toMatchObject({ repositoryIdentity: identity });
  });

  it('with the disk back, a backup succeeds and every earlier point restores', async () => {
    fs.rmSync(mount, { recursive: true, force: true });
    fs.renameSync(away, mount);
    await backup('succeeded');
    expect(await sync()).toMatchObject({ state: 'succeeded' });
    const all = await records();
    expect(all).toHaveLength(3);
    expect(all.map((b) => b.vanishedAt)).toEqual([null, null, null]);
    for (const point of points) {
      const { task, target } = await restore(point.backupId);
      expect(task.state, JSON.stringify(task.error)).toBe('succeeded');
      expect(treeDigest(path.join(target, data))).toEqual(point.digest);
    }
  });

  it('an SP admin clears the identity (null only); the next contact records the one it finds', async () => {
    const bad = await api.call('PATCH', `/v1/zones/zone-a/providers/${providerId}`, { repositoryIdentity: 'abc' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { path: string }) => e.path)).toContain('repositoryIdentity');
    expect(await provider()).toMatchObject({ repositoryIdentity: identity });

    const cleared = await api.expect(200, 'PATCH', `/v1/zones/zone-a/providers/${providerId}`, {
      repositoryIdentity: null,
    });
    expect(cleared.repositoryIdentity).toBeNull();
    expect(await sync()).toMatchObject({ state: 'succeeded' });
    expect(await provider()).toMatchObject({ repositoryIdentity: identity });
  });
});
