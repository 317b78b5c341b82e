/**
 * An agent given the URLs of several replicas of one control plane (`--server a,b,c`): when the
 * replica it holds its session with is killed -9, it connects to another at its next reconnect,
 * and the work goes on through the replicas that live.
 */
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { metricValue } from '@cairn/test-harness/metrics';
import type { ControlPlaneProc } from '@cairn/test-harness/processes';
import { backup, protectInstance } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

describe.runIf(backends.includes('mysql'))('an agent with the URLs of three replicas', () => {
  const stack = withStack('mysql', { replicas: 3 });

  it('re-homes to a live replica when its own is killed -9, twice', async () => {
    const replicas = stack.replicas;
    const agent = await stack.addAgent({ args: ['--server', replicas.map((cp) => cp.url).join(',')] });
    /** The replica holding the agent's session now: the one whose session gauge reads 1. */
    const home = async (): Promise<ControlPlaneProc | undefined> => {
      const live = replicas.filter((cp) => cp.proc.running);
      const held = await Promise.all(live.map(async (cp) => (await metricValue(cp, 'cairn_agent_sessions')) === 1));
      const homes = live.filter((_, i) => held[i]);
      return homes.length === 1 ? homes[0] : undefined;
    };
    const connectedTo = () =>
      agent.proc
        .logs()
        .filter((l) => l['msg'] === 'agent connected')
        .map((l) => String(l['url']));
    for (const round of [1, 2]) {
      const was = await waitFor(home, 'the agent to hold one session');
      const sessions = connectedTo().length;
      const killedAt = Date.now();
      await was.proc.kill9();
      const now = await waitFor(home, 'the agent to hold a session on a live replica');
      const rehomeMs = Date.now() - killedAt;
      expect(now).not.toBe(was);
      // Its log names the replica it reached, once more than before.
      await waitFor(() => connectedTo().length > sessions, 'the agent to log its new session');
      expect(connectedTo().at(-1)).toBe(`${now.url.replace(/^http/, 'ws')}/v1/agent`);
      const api = stack.adminOf(now);
      const { instanceId } = await protectInstance(api, 'zone-a', { config: { durationMs: 0, steps: 1 } });
      expect((await backup(api, instanceId)).state).toBe('succeeded');
      console.log(`kill -9 ${round} of the agent's replica: a session on a live one after ${rehomeMs} ms`);
    }
  });
});
