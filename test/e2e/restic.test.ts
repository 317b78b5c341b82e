import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { hasRestic, initialiseRepository, resticCli } from '@cairn/test-harness/restic';
import { backends } from '@cairn/test-harness/databases';
import type { Proc } from '@cairn/test-harness/processes';
import { treeDigest } from '@cairn/test-harness/files';
import { assignOffering, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

/** The restic plugin, by name: the agent ships it. */
const RESTIC_PLUGIN = '@cairn/plugin-restic';
const PASSWORD = 'e2e-restic-password-4b1d-93ce';
const WRONG = 'e2e-wrong-password-77aa-0c1f';
// An SLA that fires only on 1 January at 02:00 UTC (a schedule must fire once a year): its keep-last
// applies, its fires never come.
const NEVER_DURING_A_TEST = '0 2 1 1 *';
const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];

interface BackupBody {
  id: string;
  externalId: string;
  mode: string;
  parentId: string | null;
  sizeBytes: number;
  vanishedAt: string | null;
}

/** restic run directly on the repository, as an operator would. */
const restic = (repo: string, args: string[]) => resticCli(repo, PASSWORD, args);

const snapshotsOf = (repo: string, instanceId: string) =>
  (JSON.parse(restic(repo, ['snapshots', '--json', '--tag', `cairn-instance=${instanceId}`])) as { short_id: string }[])
    .map((s) => s.short_id)
    .sort();

/** Every file below `dir`, concatenated (state files the agent keeps). */
function filesText(dir: string): string {
  let text = '';
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) text += fs.readFileSync(p, 'latin1');
    }
  };
  walk(dir);
  return text;
}

describe.runIf(hasRestic).each(backends)('restic provider end to end (%s)', (backend) => {
  const stack = withStack(backend);
  let agent: Proc;
  let agentId: string;
  let stateDir: string;
  let api: Api;
  const work = stack.tempDir('restic-e2e');
  const repo = path.join(work, 'repo');
  const data = path.join(work, 'data');
  let providerId: string;
  let instanceId: string;
  const api_outputs: unknown[] = [];

  async function protect(name: string, paths: string[], offeringId: string): Promise<string> {
    const instance = await api.expect(201, 'POST', '/v1/instances', {
      name,
      zone: 'zone-a',
      locator: { paths },
      agentId,
    });
    await assignOffering(api, instance.id, offeringId);
    return instance.id as string;
  }

  async function offering(name: string, provider: string, keepLast?: number): Promise<string> {
    return (
      await api.expect(201, 'POST', '/v1/offerings', {
        name,
        zone: 'zone-a',
        providerId: provider,
        allowAdhoc: true,
        allowUserSchedules: false,
        ...(keepLast ? { sla: { cron: NEVER_DURING_A_TEST, keepLast } } : {}),
      })
    ).id as string;
  }

  async function backup(id: string, mode: 'FULL' | 'INCREMENT', state = 'succeeded'): Promise<TaskBody> {
    const started = await api.expect<TaskBody>(202, 'POST', `/v1/instances/${id}/backups`, { mode });
    const done = await waitForTask(api, started.id, ENDED, 60_000);
    api_outputs.push(done);
    expect(done.state, JSON.stringify(done.error)).toBe(state);
    return done;
  }

  const records = async (id: string) =>
    ((await api.expect(200, 'GET', `/v1/backups?instanceId=${id}&limit=500`)).items as BackupBody[]).sort((a, b) =>
      a.id < b.id ? -1 : 1,
    );

  beforeAll(async () => {
    fs.mkdirSync(path.join(data, 'etc', 'app'), { recursive: true });
    for (let i = 0; i < 30; i++) fs.writeFileSync(path.join(data, `file-${i}.dat`), randomBytes(1000 + i * 311));
    fs.writeFileSync(path.join(data, 'etc', 'app', 'config.yaml'), 'answer: 42\n');
    fs.writeFileSync(path.join(data, 'large.bin'), randomBytes(3 * 1024 * 1024));
    api = stack.admin;
    // The agent backs up and restores only below its roots: here, this test's directory.
    ({
      proc: agent,
      stateDir,
      agentId,
    } = await stack.addAgent({ name: 'restic-host', plugins: RESTIC_PLUGIN, roots: [work] }));
    const provider = await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'restic-local',
      plugin: '@cairn/plugin-restic',
      endpoint: repo,
      config: {},
      credentials: { password: PASSWORD },
    });
    api_outputs.push(provider);
    expect(provider).toMatchObject({ endpoint: repo, hasCredentials: true, repositoryIdentity: null });
    providerId = provider.id;
    // No backup creates a repository: the SP admin initialises it through the preflight.
    api_outputs.push(await initialiseRepository(api, 'zone-a', providerId));
    instanceId = await protect('files', [data], await offering('restic-keep-2', providerId, 2));
  });

  it('backs up a full, then an increment on it; restic holds both, tagged with the instance', async () => {
    const full = await backup(instanceId, 'FULL');
    fs.writeFileSync(path.join(data, 'file-3.dat'), randomBytes(4000));
    const incr = await backup(instanceId, 'INCREMENT');
    const [a, b] = await records(instanceId);
    expect(a).toMatchObject({ id: full.backupId, mode: 'FULL', parentId: null });
    expect(b).toMatchObject({ id: incr.backupId, mode: 'INCREMENT', parentId: full.backupId });
    expect(b!.sizeBytes).toBeGreaterThan(3 * 1024 * 1024);
    expect(snapshotsOf(repo, instanceId)).toEqual([a!.externalId, b!.externalId].sort());
    // The preflight that initialised the repository recorded its id as the connection's identity.
    const { id: repositoryId } = JSON.parse(restic(repo, ['cat', 'config'])) as { id: string };
    expect(await api.expect(200, 'GET', `/v1/zones/zone-a/providers/${providerId}`)).toMatchObject({
      repositoryIdentity: repositoryId,
    });
  });

  it('restores the increment to a new path, byte for byte', async () => {
    const [, incr] = await records(instanceId);
    const target = path.join(work, 'restored');
    const started = await api.expect<TaskBody>(202, 'POST', `/v1/backups/${incr!.id}/restore`, { targetPath: target });
    const done = await waitForTask(api, started.id, ENDED, 60_000);
    api_outputs.push(done);
    expect(done.state, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.progress).toMatchObject({ percent: 100 });
    // restic puts each backed-up absolute path below the target.
    expect(treeDigest(path.join(target, data))).toEqual(treeDigest(data));
  });

  it("applies keep-last in restic's own snapshot list", async () => {
    await backup(instanceId, 'INCREMENT');
    const deletes = await waitFor(
      async () => {
        const tasks = (await api.expect(200, 'GET', `/v1/tasks?instanceId=${instanceId}&kind=delete-backup`))
          .items as TaskBody[];
        return tasks.length === 1 && ENDED.includes(tasks[0]!.state) ? tasks : undefined;
      },
      'the keep-last delete to end',
      60_000,
    );
    expect(deletes[0]!.state, JSON.stringify(deletes[0]!.error)).toBe('succeeded');
    const kept = await records(instanceId);
    expect(kept).toHaveLength(2);
    expect(snapshotsOf(repo, instanceId)).toEqual(kept.map((r) => r.externalId).sort());
  });

  it("marks a snapshot forgotten behind Cairn's back vanished on sync", async () => {
    const [gone, kept] = await records(instanceId);
    restic(repo, ['forget', gone!.externalId]);
    const r = await api.call('POST', `/v1/zones/zone-a/providers/${providerId}/sync`);
    expect(r.status).toBe(202);
    const done = await waitForTask(api, r.body.id as string, ENDED, 60_000);
    expect(done.state, JSON.stringify(done.error)).toBe('succeeded');
    const after = await records(instanceId);
    expect(after.find((b) => b.id === gone!.id)!.vanishedAt).toMatch(/^\d{4}-/);
    expect(after.find((b) => b.id === kept!.id)!.vanishedAt).toBeNull();
  });

  it('a backup cancelled midway leaves a repository restic check passes', async () => {
    const big = path.join(work, 'big');
    fs.mkdirSync(big);
    for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(big, `blob-${i}.bin`), randomBytes(64 * 1024 * 1024));
    const id = await protect('big', [big], await offering('restic-plain', providerId));
    const started = await api.expect<TaskBody>(202, 'POST', `/v1/instances/${id}/backups`, { mode: 'FULL' });
    await waitFor(
      async () => {
        const t = await api.expect<TaskBody>(200, 'GET', `/v1/tasks/${started.id}`);
        return t.state === 'running' && t.progress.bytesDone > 0 ? t : undefined;
      },
      'the backup to make progress',
      60_000,
    );
    await api.expect(202, 'POST', `/v1/tasks/${started.id}/cancel`);
    const done = await waitForTask(api, started.id, ENDED, 30_000);
    expect(done).toMatchObject({ state: 'cancelled' });
    expect(snapshotsOf(repo, id)).toEqual([]);
    expect(restic(repo, ['list', 'locks']).trim()).toBe('');
    restic(repo, ['check']);
    fs.rmSync(big, { recursive: true, force: true });
  });

  it('a wrong password fails the preflight and the backup clearly, and no password shows anywhere', async () => {
    const wrong = await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'restic-wrong',
      plugin: '@cairn/plugin-restic',
      endpoint: repo,
      credentials: { password: WRONG },
    });
    api_outputs.push(wrong);
    // The preflight through the API names the failed check and says what to do.
    const good = await api.expect(200, 'POST', `/v1/zones/zone-a/providers/${providerId}/preflight`, {
      locator: { paths: [data] },
    });
    api_outputs.push(good);
    expect(good).toMatchObject({ ok: true });
    expect(good.checks.map((c: { name: string }) => c.name)).toEqual(
      expect.arrayContaining(['restic', 'repository', 'password', 'paths']),
    );
    const refused = await api.expect(200, 'POST', `/v1/zones/zone-a/providers/${wrong.id}/preflight`);
    api_outputs.push(refused);
    expect(refused.ok).toBe(false);
    expect(refused.checks).toContainEqual({
      name: 'password',
      ok: false,
      message: expect.stringContaining('wrong password') as unknown,
      advice: expect.stringContaining('credentials.password') as unknown,
    });
    api_outputs.push(await api.expect(200, 'GET', `/v1/tasks/${refused.task.id}`));

    const id = await protect('files-wrong', [data], await offering('restic-wrong', wrong.id));
    const failed = await backup(id, 'FULL', 'failed');
    expect(failed.error).toMatchObject({ code: 'WRONG_PASSWORD', message: expect.stringContaining('wrong password') });
    expect(failed.error!.message).toContain(repo);
    api_outputs.push(
      await api.expect(200, 'GET', '/v1/tasks?limit=500'),
      await api.expect(200, 'GET', '/v1/events?after=0&limit=500'),
      await api.expect(200, 'GET', `/v1/zones/zone-a/providers`),
      await api.expect(200, 'GET', `/v1/backups?limit=500`),
    );
    const seen = [JSON.stringify(api_outputs), agent.lines.join('\n'), agent.stderr.join('\n'), filesText(stateDir)];
    expect(agent.lines.length).toBeGreaterThan(10);
    for (const text of seen) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(WRONG);
    }
  });
});
