import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { backends, freshDatabase, type TestDatabase } from '@cairn/test-harness/databases';
import {
  enrollAgent,
  runAgentCommand,
  startAgent,
  startControlPlane,
  type ControlPlaneProc,
  type Proc,
} from '@cairn/test-harness/processes';
import { protectInstance, waitForTask } from '@cairn/test-harness/scenario';
import { waitFor } from '@cairn/test-harness/wait';

const TERMINAL = ['succeeded', 'failed', 'cancelled', 'lost'];

describe.each(backends)('a drain set by an operator on the agent host (%s)', (backend) => {
  let db: TestDatabase;
  let cp: ControlPlaneProc;
  let api: Api;
  let agent: Proc;
  let stateDir: string;
  let agentId: string;

  beforeAll(async () => {
    db = await freshDatabase(backend);
    cp = await startControlPlane({ databaseUrl: db.url, dataDir: db.dataDir });
    api = new Api(cp.url, cp.adminToken);
    ({ stateDir, agentId } = await enrollAgent(cp, 'zone-a', 'host-1'));
    agent = await startAgent(stateDir);
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.proc.stop();
    await db?.drop();
  });

  it('holds new backups back, keeps restores working, and releases the backups on undrain', async () => {
    const p = await protectInstance(api, 'zone-a', { config: { durationMs: 200, steps: 2 } });
    const first = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    expect((await waitForTask(api, first.id, TERMINAL)).state).toBe('succeeded');
    const [backup] = (await api.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`)).items;

    const drain = await runAgentCommand(['drain', '--state-dir', stateDir, '--message', 'host patching']);
    expect(drain.exitCode).toBe(0);
    const drained = await waitFor(async () => {
      const a = (await api.expect(200, 'GET', `/v1/agents/${agentId}`)) as {
        state: string;
        maintenance: { enabled: boolean; message: string };
      };
      return a.state === 'connected' && a.maintenance.enabled ? a : undefined;
    }, 'the control plane to learn of the local drain');
    expect(drained.maintenance.message).toBe('host patching');

    const held = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    const restore = (await api.expect(202, 'POST', `/v1/backups/${backup.id}/restore`)) as { id: string };
    // The backup is never dispatched to the draining agent, so the instance stays free and the
    // restore runs while the backup waits in the queue.
    expect((await waitForTask(api, restore.id, TERMINAL)).state).toBe('succeeded');
    expect((await api.expect(200, 'GET', `/v1/tasks/${held.id}`)).state).toBe('queued');

    expect((await runAgentCommand(['undrain', '--state-dir', stateDir])).exitCode).toBe(0);
    expect((await waitForTask(api, held.id, TERMINAL)).state).toBe('succeeded');
    expect((await api.expect(200, 'GET', `/v1/agents/${agentId}`)).maintenance.enabled).toBe(false);
  });
});
