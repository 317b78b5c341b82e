/**
 * A restic started by an agent ends with that agent. The agent is killed with -9 while its restic
 * waits, quietly, on a repository server that accepts the connection and never answers (restic
 * would wait there for minutes, printing nothing, so no broken pipe would end it either): within
 * seconds the restic is gone, instead of running on, orphaned, holding a lock or writing a snapshot
 * no task records. The agent started again, the task ends AGENT_INTERRUPTED.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { hasRestic, resticProcessesOn } from '@cairn/test-harness/restic';
import { assignOffering, ENDED, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const PLUGIN = '@cairn/plugin-restic';

describe.runIf(hasRestic && process.platform === 'linux').each(backends)(
  'restic ends with its agent (%s)',
  (backend) => {
    const stack = withStack(backend);
    const work = stack.tempDir('restic-agent-kill');
    // A repository server that takes connections and never answers.
    const held: net.Socket[] = [];
    const silent = net.createServer((socket) => held.push(socket));
    let repo = '';

    beforeAll(async () => {
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      repo = `rest:http://127.0.0.1:${(silent.address() as net.AddressInfo).port}/`;
    });
    afterAll(async () => {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });

    it('an agent killed -9 takes the restic it started with it, though that restic prints nothing', async () => {
      const api = stack.admin;
      const agent = await stack.addAgent({ name: 'restic-kill', plugins: PLUGIN, roots: [work] });
      const provider = await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
        name: 'restic-kill',
        plugin: PLUGIN,
        endpoint: repo,
        config: {},
        credentials: { password: 'restic-agent-kill-pw' },
      });
      const offering = await api.expect(201, 'POST', '/v1/offerings', {
        name: 'restic-kill',
        zone: 'zone-a',
        providerId: provider.id,
        allowAdhoc: true,
        allowUserSchedules: false,
      });
      const instance = await api.expect(201, 'POST', '/v1/instances', {
        name: 'vm-1',
        zone: 'zone-a',
        locator: { paths: [work] },
        agentId: agent.agentId,
      });
      await assignOffering(api, instance.id, offering.id);

      const task = await api.expect<TaskBody>(202, 'POST', `/v1/instances/${instance.id}/backups`, { mode: 'FULL' });
      const running = await waitFor(
        async () => (resticProcessesOn(repo).length ? resticProcessesOn(repo) : undefined),
        'the agent’s restic waiting on the repository server',
        60_000,
      );
      await agent.proc.kill9();
      const killedAt = Date.now();
      await waitFor(
        async () => resticProcessesOn(repo).length === 0 || undefined,
        `restic ${running.join(', ')} to end after its agent was killed`,
        15_000,
      );
      console.log(`restic ${running.join(', ')} ended ${Date.now() - killedAt} ms after its agent was killed -9`);

      await stack.runAgent(agent.stateDir, { plugins: PLUGIN, args: ['--roots', work] });
      const ended = await waitForTask(api, task.id, ENDED, 120_000);
      expect(ended).toMatchObject({ state: 'failed', error: { code: 'AGENT_INTERRUPTED' } });
    });
  },
);
