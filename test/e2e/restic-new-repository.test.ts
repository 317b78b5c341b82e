/**
 * A new SP admin's restic connection on a path where no repository exists yet tells one story,
 * with real processes: the preflight says there is none yet and how to make one, the automatic
 * sync queued when the connection appears succeeds with nothing to list and a drift report saying
 * why (no `provider.sync_failed`), and after the preflight with initialise backups work. A
 * connection that did reach its repository (a recorded identity, or restore points) still fails
 * its sync loudly when the repository is gone, and marks nothing vanished.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { eventsWhere } from '@cairn/test-harness/clock';
import { backends } from '@cairn/test-harness/databases';
import { tempDir } from '@cairn/test-harness/processes';
import { hasRestic, initialiseRepository, protectPaths } from '@cairn/test-harness/restic';
import { waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const PASSWORD = 'e2e-new-repository-password-5d2a';
const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];

interface Drift {
  taskId: string;
  counts: Record<string, number>;
  held: unknown;
  noRepository: { message: string; initialise: string } | null;
}

describe.runIf(hasRestic).each(backends)('a restic connection with no repository yet (%s)', (backend) => {
  const work = tempDir('new-repository-e2e');
  const data = path.join(work, 'data');
  // The agent's root exists before the stack starts it.
  fs.mkdirSync(data, { recursive: true });
  fs.writeFileSync(path.join(data, 'index.html'), '<h1>first hour</h1>\n');
  const stack = withStack(backend, {
    // The test clock stands still: each connection gets its one automatic sync, when it appears.
    clockAt: '2026-06-01T00:00:30Z',
    env: { CAIRN_SYNC_INTERVAL_S: '3600' },
    agents: [{ name: 'restic-host', plugins: '@cairn/plugin-restic', roots: [data] }],
  });
  stack.onTeardown(() => fs.rmSync(work, { recursive: true, force: true }));
  let agentId: string;
  let api: Api;
  /** Fresh paths: nothing exists there until a preflight with initialise. */
  const repo = path.join(work, 'repos', 'first');
  const second = path.join(work, 'repos', 'second');
  const away = path.join(work, 'away');
  let providerId: string;
  let instanceId: string;

  const providerPath = (id: string) => `/v1/zones/zone-a/providers/${id}`;
  const createProvider = async (name: string, endpoint: string): Promise<string> =>
    (
      await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
        name,
        plugin: '@cairn/plugin-restic',
        endpoint,
        credentials: { password: PASSWORD },
      })
    ).id as string;
  const syncEvents = (id: string) =>
    eventsWhere(
      api,
      (e) => (e.type === 'provider.synced' || e.type === 'provider.sync_failed') && e.data?.providerId === id,
    );
  /**
   * The end of the connection's first sync, the automatic one queued when it was created: its one
   * event must be `provider.synced`, and its drift report is answered.
   */
  async function firstSync(id: string): Promise<{ drift: Drift; event: any }> {
    const events = await waitFor(
      async () => ((await syncEvents(id)).length > 0 ? syncEvents(id) : undefined),
      `the automatic sync of ${id} to end`,
      60_000,
    );
    expect(events).toMatchObject([{ type: 'provider.synced', data: { providerId: id } }]);
    return { drift: await api.expect<Drift>(200, 'GET', `${providerPath(id)}/drift`), event: events[0] };
  }
  async function sync(id: string): Promise<TaskBody> {
    const started = await api.expect<TaskBody>(202, 'POST', `${providerPath(id)}/sync`);
    return waitForTask(api, started.id, ENDED, 60_000);
  }
  /** A sync while the repository is somewhere else: it must fail loudly, and change nothing. */
  async function syncWhileGone(id: string, where: string): Promise<void> {
    const before = (await api.expect<Drift>(200, 'GET', `${providerPath(id)}/drift`)).taskId;
    fs.renameSync(where, away);
    try {
      const done = await sync(id);
      expect(done).toMatchObject({ state: 'failed', error: { code: 'REPOSITORY_NOT_FOUND' } });
      expect((await syncEvents(id)).filter((e) => e.taskId === done.id)).toMatchObject([
        { type: 'provider.sync_failed', data: { code: 'REPOSITORY_NOT_FOUND' } },
      ]);
      expect((await api.expect<Drift>(200, 'GET', `${providerPath(id)}/drift`)).taskId).toBe(before);
      expect(fs.existsSync(where)).toBe(false);
    } finally {
      fs.renameSync(away, where);
    }
  }

  beforeAll(() => {
    api = stack.admin;
    agentId = stack.agent.agentId;
  });

  it('the preflight of a new connection says there is no repository yet, and how to make one', async () => {
    providerId = await createProvider('restic-new', repo);
    const report = await api.expect(200, 'POST', `${providerPath(providerId)}/preflight`, {});
    expect(report.ok).toBe(false);
    expect(report.checks).toContainEqual(
      expect.objectContaining({
        name: 'repository',
        ok: false,
        message: expect.stringContaining(`no repository at ${repo}`),
        advice: expect.stringContaining('run this preflight with initialise'),
      }),
    );
  });

  it('its automatic sync succeeds with nothing to list; the drift report says why; nothing failed', async () => {
    const { drift, event } = await firstSync(providerId);
    expect(drift).toMatchObject({
      counts: { known: 0, adopted: 0, vanished: 0, expired: 0, orphaned: 0, removed: 0, deferred: 0 },
      held: null,
      noRepository: { initialise: `POST ${providerPath(providerId)}/preflight {"initialise": true}` },
    });
    expect(drift.noRepository!.message).toMatch(/^no repository yet: /);
    expect(drift.noRepository!.message).toContain(repo);
    expect(event).toMatchObject({ taskId: drift.taskId, data: { noRepository: true } });
    expect(event.message).toContain('no repository yet');
    const task = await api.expect(200, 'GET', `/v1/tasks/${drift.taskId}`);
    expect(task).toMatchObject({ kind: 'sync', state: 'succeeded', error: null, output: [] });
    expect(task.progress.message).toMatch(/^no repository yet/);
    expect(await eventsWhere(api, (e) => e.taskId === drift.taskId && e.type === 'task.failed')).toEqual([]);
    // Nothing was made, and nothing recorded.
    expect(fs.existsSync(repo)).toBe(false);
    expect(await api.expect(200, 'GET', providerPath(providerId))).toMatchObject({ repositoryIdentity: null });
  });

  it('after the preflight with initialise, backups work and a sync lists them, no note', async () => {
    await initialiseRepository(api, 'zone-a', providerId);
    ({ instanceId } = await protectPaths(api, { zone: 'zone-a', providerId, agentId, name: 'www', paths: [data] }));
    const started = await api.expect<TaskBody>(202, 'POST', `/v1/instances/${instanceId}/backups`, {});
    const done = await waitForTask(api, started.id, ENDED, 60_000);
    expect(done.state, JSON.stringify(done.error)).toBe('succeeded');
    expect(await sync(providerId)).toMatchObject({ state: 'succeeded' });
    expect(await api.expect(200, 'GET', `${providerPath(providerId)}/drift`)).toMatchObject({
      counts: { known: 1, vanished: 0 },
      noRepository: null,
    });
  });

  it('a connection that recorded an identity and has no restore points fails its sync when the repository is gone', async () => {
    const other = await createProvider('restic-second', second);
    // Its own automatic sync first (no repository yet), so it cannot race the initialise.
    expect((await firstSync(other)).drift.noRepository).not.toBeNull();
    await initialiseRepository(api, 'zone-a', other);
    expect((await api.expect(200, 'GET', providerPath(other))).repositoryIdentity).toEqual(expect.any(String));
    await syncWhileGone(other, second);
  });

  it('a connection with restore points fails its sync when the repository is gone, its identity cleared or not', async () => {
    await syncWhileGone(providerId, repo);
    await api.expect(200, 'PATCH', providerPath(providerId), { repositoryIdentity: null });
    await syncWhileGone(providerId, repo);
    const records = (await api.expect(200, 'GET', `/v1/backups?instanceId=${instanceId}`)).items;
    expect(records.map((b: { vanishedAt: string | null }) => b.vanishedAt)).toEqual([null]);
    // Back in place: the next sync finds it, and records its identity again.
    expect(await sync(providerId)).toMatchObject({ state: 'succeeded' });
    expect((await api.expect(200, 'GET', providerPath(providerId))).repositoryIdentity).toEqual(expect.any(String));
  });
});
