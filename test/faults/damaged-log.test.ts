/**
 * F6, the agent's log damaged on disk, at the process level: a torn tail after a kill -9, and a
 * bit flipped in the middle of a segment. The agent must start (no crash loop), say what it set
 * aside, keep what the control plane acknowledged, never reuse a report's sequence number (the
 * control plane would take a new report for a replay and drop it), and run backups again.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { ENDED, protectInstance, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { stackPerTest } from '@cairn/test-harness/stack';
import type { Proc } from '@cairn/test-harness/processes';

const STEPS = 5;

/** The agent log's newest segment. */
function newestSegment(stateDir: string): string {
  const dir = path.join(stateDir, 'wal');
  const segments = fs
    .readdirSync(dir)
    .filter((f) => /^\d{16}\.log$/.test(f))
    .sort();
  return path.join(dir, segments.at(-1)!);
}

const damageLines = (agent: Proc) => agent.logs().filter((l) => l['msg'] === 'damaged agent state found and set aside');

describe.each(backends)('F6: a damaged agent log (%s)', (backend) => {
  const newStack = stackPerTest(backend);

  async function backup(api: Api, instanceId: string): Promise<TaskBody> {
    const task = (await api.expect(202, 'POST', `/v1/instances/${instanceId}/backups`)) as { id: string };
    return waitForTask(api, task.id, ENDED, 60_000);
  }

  async function progressOf(api: Api, taskId: string): Promise<number> {
    return ((await api.expect(200, 'GET', `/v1/tasks/${taskId}/progress?limit=500`)) as { items: unknown[] }).items
      .length;
  }

  it('a torn tail after kill -9: cut off and said, the interrupted backup reported, the next one complete', async () => {
    const stack = await newStack();
    const api = stack.admin;
    const { stateDir } = await stack.enroll('zone-a', 'host-1');
    let agent = await stack.runAgent(stateDir);
    const p = await protectInstance(api, 'zone-a', { config: { durationMs: 600, steps: STEPS } });
    const first = await backup(api, p.instanceId);
    expect(first.state).toBe('succeeded');

    // A long backup, killed midway; then a write cut short lands at the end of the log.
    await api.call('PATCH', `/v1/zones/zone-a/providers/${p.providerId}`, {
      config: { durationMs: 30_000, steps: 30 },
    });
    const long = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    await waitForTask(api, long.id, ['running']);
    await agent.kill9();
    const segment = newestSegment(stateDir);
    const intact = fs.statSync(segment).size;
    fs.appendFileSync(segment, Buffer.from([0x43, 0x57, 0x4c, 0x31, 0, 0, 1, 0, 9, 9, 9, 9, 0x5b, 0x7b]));

    agent = await stack.runAgent(stateDir);
    const [said] = damageLines(agent);
    expect(String(said?.['err'])).toMatch(/torn tail cut off at byte/);
    expect(fs.statSync(segment).size).toBeGreaterThanOrEqual(intact);
    const interrupted = await waitForTask(api, long.id, ENDED);
    expect(interrupted).toMatchObject({ state: 'failed', error: { code: 'AGENT_INTERRUPTED' } });

    await api.call('PATCH', `/v1/zones/zone-a/providers/${p.providerId}`, {
      config: { durationMs: 600, steps: STEPS },
    });
    const next = await backup(api, p.instanceId);
    expect(next.state).toBe('succeeded');
    expect(await progressOf(api, next.id)).toBe(STEPS);
    const records = (await api.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`)) as {
      items: { taskId: string }[];
    };
    expect(records.items.map((b) => b.taskId).sort()).toEqual([first.id, next.id].sort());

    // No crash loop: a clean restart finds nothing more to set aside.
    await agent.stop();
    agent = await stack.runAgent(stateDir);
    expect(damageLines(agent)).toEqual([]);
    expect((await backup(api, p.instanceId)).state).toBe('succeeded');
  });

  it('a bit flipped mid-segment: the segment moved aside and said, new reports never taken for replays', async () => {
    const stack = await newStack();
    const api = stack.admin;
    const { stateDir } = await stack.enroll('zone-a', 'host-1');
    let agent = await stack.runAgent(stateDir);
    const p = await protectInstance(api, 'zone-a', { config: { durationMs: 600, steps: STEPS } });
    const done: string[] = [];
    for (let i = 0; i < 3; i++) {
      const t = await backup(api, p.instanceId);
      expect(t.state).toBe('succeeded');
      done.push(t.id);
    }
    await agent.stop();

    const segment = newestSegment(stateDir);
    const bytes = fs.readFileSync(segment);
    // A byte inside the first batch's payload (its header is 12 bytes).
    bytes[Math.min(20, bytes.length - 1)]! ^= 0x10;
    fs.writeFileSync(segment, bytes);

    agent = await stack.runAgent(stateDir);
    const [said] = damageLines(agent);
    expect(String(said?.['err'])).toMatch(/corrupt batch at byte .*moved aside/);
    expect(fs.readdirSync(path.join(stateDir, 'wal')).some((f) => f.startsWith('damaged-'))).toBe(true);

    // Reports after the damage carry new sequence numbers: every one of them is stored.
    for (let i = 0; i < 2; i++) {
      const t = await backup(api, p.instanceId);
      expect(t.state).toBe('succeeded');
      expect(await progressOf(api, t.id)).toBe(STEPS);
      done.push(t.id);
    }
    const records = (await api.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`)) as {
      items: { taskId: string }[];
    };
    expect(records.items.map((b) => b.taskId).sort()).toEqual([...done].sort());

    await agent.stop();
    agent = await stack.runAgent(stateDir);
    expect(damageLines(agent)).toEqual([]);
  });
});
