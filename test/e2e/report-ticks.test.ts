import { encodeFrame, type wire } from '@cairn/proto';
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { agentCredential, RawAgent } from '@cairn/test-harness/raw-agent';
import { protectInstance, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';

/** Progress reports each agent sends in one burst after its acceptance. */
const BURST = 40;

describe.each(backends)("agents' reports in shared ticks, through the protocol (%s)", (backend) => {
  const stack = withStack(backend, {});

  /** An agent of our own in `zone`, holding one backup task: its session and the task. */
  async function agentWithTask(zone: string) {
    const creds = agentCredential((await stack.enroll(zone, `raw-${zone}`)).stateDir);
    const { instanceId } = await protectInstance(stack.admin, zone);
    const taskId = (await stack.admin.expect(202, 'POST', `/v1/instances/${instanceId}/backups`)).id as string;
    const session = await RawAgent.connect(stack.cp, creds);
    await session.next('assign');
    return { creds, taskId, session };
  }

  const frames = (taskId: string, seqs: number[]): Uint8Array[] =>
    seqs.map((seq) =>
      encodeFrame(
        seq === 1
          ? { accepted: { spoolSeq: seq, taskId, attempt: 1, atMs: Date.now() } }
          : ({
              progress: {
                spoolSeq: seq,
                taskId,
                attempt: 1,
                percent: seq,
                bytesDone: seq,
                bytesTotal: 100,
                atMs: Date.now(),
              },
            } satisfies wire.IEnvelope),
      ),
    );
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  const read = async (taskId: string) => ({
    task: await stack.admin.expect<TaskBody & { progress: { percent: number } }>(200, 'GET', `/v1/tasks/${taskId}`),
    stored: (
      await stack.admin.expect<{ items: { percent: number }[] }>(200, 'GET', `/v1/tasks/${taskId}/progress?limit=200`)
    ).items,
  });

  it('two agents flooding progress at once: each report is stored once when its ack arrives, the task shows the newest, a resend after a reconnect moves nothing', async () => {
    const a = await agentWithTask('tick-a');
    const b = await agentWithTask('tick-b');
    const last = BURST + 1;
    // Both sessions' frames arrive together: their reports share the control plane's ticks.
    a.session.sendMany(frames(a.taskId, range(1, last)));
    b.session.sendMany(frames(b.taskId, range(1, last)));
    await Promise.all([a.session.acked(last), b.session.acked(last)]);
    // Acknowledged means committed: read right after the ack, everything is there.
    for (const { taskId } of [a, b]) {
      const { task, stored } = await read(taskId);
      expect(task.state).toBe('running');
      expect(task.progress.percent).toBe(last);
      expect(stored).toHaveLength(BURST);
    }
    // The agent reconnects and sends older reports again (as after an ack lost with its socket),
    // then the newest: nothing is stored twice and the task does not move back.
    a.session.close();
    const again = await RawAgent.connect(stack.cp, a.creds, { running: [{ taskId: a.taskId, attempt: 1 }] });
    again.sendMany(frames(a.taskId, range(5, 10)));
    await again.acked(10);
    again.sendMany(frames(a.taskId, [last]));
    await again.acked(last);
    const { task, stored } = await read(a.taskId);
    expect(task.progress.percent).toBe(last);
    expect(stored).toHaveLength(BURST);
    again.close();
    b.session.close();
  });
});
