/**
 * F3, partitions between an agent and the control plane, with the harness's lease (15 s) and
 * heartbeat (0.5 s; an agent takes 1.5 s of silence as a dead link). Each case runs a backup of
 * the dummy plugin on an agent of its own and cuts that agent off while it runs:
 *
 * - a partition shorter than the lease changes nothing: the backup keeps its attempt, state and
 *   agent throughout, and ends `succeeded` at attempt 1 with one record and every progress report once;
 * - a partition longer than the lease: the task becomes `lost` (`AGENT_LOST`), as the lease rule
 *   says, and stays so when the agent comes back and reports the end of the attempt it kept running
 *   (the late report is refused: no record, no change); the agent then runs a new backup to success;
 * - an agent paused past its lease (SIGSTOP, then SIGCONT) likewise: `lost`, its late reports
 *   refused, a new backup succeeds;
 * - an agent cut off longer than its `--disconnect-abort-ms` (3 s here) but less than the lease
 *   cancels the backup through the plugin's abort signal and, once back, reports it failed with
 *   `AGENT_DISCONNECTED`; the task ends so, with no record.
 *
 * The partition is made two ways: by the suite's proxy in black-hole mode (a partition TCP sees as
 * silence), and, where the machine allows it (root, `ip netns`), by a real network namespace whose
 * veth link is taken down, the agent running inside it (skipped with a notice otherwise).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { backupHistory, historyFigures } from '@cairn/test-harness/fault-checks';
import { LossyProxy } from '@cairn/test-harness/lossy-proxy';
import { NetnsLink, netnsUnavailable } from '@cairn/test-harness/netns';
import { seededRandom } from '@cairn/test-harness/random';
import { assignOffering, ENDED, offerDummy, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack, type Stack, type StackAgent } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const LEASE_MS = 15_000;
const STEPS = 5;

/** A way to cut one agent off the control plane and to heal it. */
interface Link {
  kind: string;
  cut(): void;
  heal(): void;
}

/** An agent behind its own link. */
interface Subject {
  link: Link;
  agent: StackAgent;
}

/** The f3 offering of each control plane (by URL): one per stack. */
const offerings = new Map<string, Promise<string>>();
let instances = 0;

/** A dummy instance pinned to `agentId` whose backups take `durationMs`. */
async function instanceOn(api: Api, agentId: string, durationMs: number): Promise<string> {
  let offering = offerings.get(api.url);
  if (!offering) {
    offering = offerDummy(api, 'zone-a', { provider: 'dummy', offering: 'f3' }).then((o) => o.offeringId);
    offerings.set(api.url, offering);
  }
  const n = ++instances;
  const instance = await api.expect(201, 'POST', '/v1/instances', {
    name: `vm-${n}`,
    zone: 'zone-a',
    agentId,
    locator: { dummy: { durationMs, steps: STEPS, sizeBytes: 1000 + n } },
  });
  await assignOffering(api, instance.id, await offering);
  return instance.id as string;
}

/** A backup of a new instance on the subject's agent, once it runs. */
async function runningBackup(api: Api, s: Subject, durationMs: number): Promise<TaskBody> {
  const instanceId = await instanceOn(api, s.agent.agentId, durationMs);
  const { id } = (await api.expect(202, 'POST', `/v1/instances/${instanceId}/backups`)) as { id: string };
  return waitForTask(api, id, ['running', ...ENDED]);
}

function task(api: Api, id: string): Promise<TaskBody> {
  return api.expect(200, 'GET', `/v1/tasks/${id}`) as Promise<TaskBody>;
}

/** Sessions the agent has had (its "agent connected" log lines). */
function sessions(agent: StackAgent): number {
  return agent.proc.logs().filter((l) => l['msg'] === 'agent connected').length;
}

/** Waits until the agent's own log says it ended `taskId` (it reports the end after). */
async function agentEnded(agent: StackAgent, taskId: string, timeoutMs: number): Promise<Record<string, unknown>> {
  return agent.proc.waitForLog(
    (l) => l['taskId'] === taskId && (l['msg'] === 'task succeeded' || l['msg'] === 'task failed'),
    `the agent to end ${taskId}`,
    timeoutMs,
  );
}

/** The task states seen every 250 ms for `ms`, each distinct (state, attempt, agent) once. */
async function watch(api: Api, id: string, ms: number): Promise<string[]> {
  const seen = new Set<string>();
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const t = (await task(api, id)) as TaskBody & { agentId: string | null };
    seen.add(`${t.state}/${t.attempt}/${t.agentId}`);
    await sleep(250);
  }
  return [...seen];
}

/** After the case: the agent is connected again and a new backup on it succeeds (convergence). */
async function converges(api: Api, s: Subject): Promise<TaskBody> {
  await waitFor(async () => {
    const a = (await api.expect(200, 'GET', `/v1/agents/${s.agent.agentId}`)) as { state: string };
    return a.state === 'connected';
  }, 'the agent connected again');
  const t = await runningBackup(api, s, 300);
  return waitForTask(api, t.id, ENDED, 60_000);
}

async function shorterThanLease(api: Api, s: Subject, label: string): Promise<void> {
  const cutMs = 5_000;
  const t = await runningBackup(api, s, 10_000);
  const before = sessions(s.agent);
  s.link.cut();
  const during = await watch(api, t.id, cutMs);
  s.link.heal();
  const ended = await waitForTask(api, t.id, ENDED, 60_000);
  const history = await backupHistory(api, [ended], STEPS, { othersAllowed: true });
  const figures = `F3 ${label}: a ${cutMs / 1000} s partition (${s.link.kind}) under a running backup, lease ${LEASE_MS / 1000} s; states seen during it ${during.join(', ')}; ended ${ended.state} at attempt ${ended.attempt}; new sessions ${sessions(s.agent) - before}; ${historyFigures(history)}`;
  console.info(figures);
  expect(during, figures).toEqual([`running/1/${s.agent.agentId}`]);
  expect([ended.state, ended.attempt], figures).toEqual(['succeeded', 1]);
  expect(history.recordsOff, figures).toEqual([]);
  expect([history.progressLost, history.progressDoubled, history.eventIdsDoubled], figures).toEqual([0, 0, 0]);
  expect([history.endsOff, history.startedOff], figures).toEqual([[], []]);
}

const AWAY_MS = LEASE_MS + 7_000;

/**
 * The agent is away past the lease (`away` cuts it off or pauses it; `back` undoes that): the task
 * becomes lost, the attempt the agent kept running reports its end late and is refused, and a new
 * backup on the agent succeeds. The backup lasts `backupMs`: past the agent's return when it is
 * cut off (its clock runs on); a paused agent's timers stand still, so a short one still runs then.
 */
async function pastTheLease(
  api: Api,
  s: Subject,
  label: string,
  o: { how: string; away: () => void; back: () => void; backupMs: number },
) {
  const { how, away, back } = o;
  const awayMs = AWAY_MS;
  const t = await runningBackup(api, s, o.backupMs);
  const progressBefore = ((await api.expect(200, 'GET', `/v1/tasks/${t.id}/progress?limit=500`)) as { items: [] }).items
    .length;
  away();
  const cutAt = Date.now();
  const lost = await waitForTask(api, t.id, ['lost', 'succeeded', 'failed', 'cancelled'], awayMs + 10_000);
  const lostAfterS = (Date.now() - cutAt) / 1000;
  await sleep(Math.max(0, awayMs - (Date.now() - cutAt)));
  back();
  const backAt = Date.now();
  const sessionsBefore = sessions(s.agent);
  const end = await agentEnded(s.agent, t.id, 60_000);
  // Reports go out in the order the agent wrote them: the new backup's end is stored only after
  // the late end of the old attempt was delivered (and refused).
  const next = await converges(api, s);
  const after = await task(api, t.id);
  const progressAfter = ((await api.expect(200, 'GET', `/v1/tasks/${t.id}/progress?limit=500`)) as { items: [] }).items
    .length;
  const history = await backupHistory(api, [after, next], STEPS, { othersAllowed: true });
  const resumed = s.agent.proc.logs().filter((l) => l['msg'] === 'agent connected')[sessionsBefore];
  const resumedS = resumed ? `${((Number(resumed['time']) - backAt) / 1000).toFixed(1)} s` : 'never';
  const figures = `F3 ${label}: ${how} for ${awayMs / 1000} s under a running backup, lease ${LEASE_MS / 1000} s; ${lost.state} (${lost.error?.code ?? ''}) ${lostAfterS.toFixed(1)} s in; a new session ${resumedS} after that; the agent ended the attempt (${String(end['msg'])}) ${((Number(end['time']) - backAt) / 1000).toFixed(1)} s after it and reported it late; the task after that ${after.state} (${after.error?.code ?? ''}) at attempt ${after.attempt}, progress stored ${progressBefore} before / ${progressAfter} after; next backup on the agent ${next.state}; ${historyFigures(history)}`;
  console.info(figures);
  expect([lost.state, lost.error?.code], figures).toEqual(['lost', 'AGENT_LOST']);
  expect([after.state, after.error?.code, after.attempt], figures).toEqual(['lost', 'AGENT_LOST', 1]);
  expect(next.state, figures).toBe('succeeded');
  expect(history.recordsOff, figures).toEqual([]);
  expect([history.progressLost, history.progressDoubled, history.eventIdsDoubled], figures).toEqual([0, 0, 0]);
  expect([history.endsOff, history.startedOff], figures).toEqual([[], []]);
}

const ABORT_MS = 3_000;

async function cutOffPastTheAbortLimit(api: Api, s: Subject, label: string): Promise<void> {
  const cutMs = 9_000;
  const t = await runningBackup(api, s, 30_000);
  s.link.cut();
  const cutAt = Date.now();
  const during = await watch(api, t.id, cutMs);
  s.link.heal();
  const aborted = await s.agent.proc.waitForLog(
    (l) => l['msg'] === 'running backups aborted: cut off from the control plane for too long',
    'the agent to abort its backup',
  );
  const abortedAfterS = (Number(aborted['time']) - cutAt) / 1000;
  const ended = await waitForTask(api, t.id, ENDED, 60_000);
  const history = await backupHistory(api, [ended], STEPS, { othersAllowed: true });
  const figures = `F3 ${label}: cut off ${cutMs / 1000} s (${s.link.kind}), --disconnect-abort-ms ${ABORT_MS}, lease ${LEASE_MS / 1000} s; states seen while cut off ${during.join(', ')}; the agent aborted the backup ${abortedAfterS.toFixed(1)} s into the partition; the task ended ${ended.state} (${ended.error?.code ?? ''}: ${ended.error?.message ?? ''}) at attempt ${ended.attempt}; ${historyFigures(history)}`;
  console.info(figures);
  expect(during, figures).toEqual([`running/1/${s.agent.agentId}`]);
  expect([ended.state, ended.error?.code, ended.attempt], figures).toEqual(['failed', 'AGENT_DISCONNECTED', 1]);
  expect(abortedAfterS, figures).toBeGreaterThan(ABORT_MS / 1000);
  expect(history.recordsOff, figures).toEqual([]);
  expect([history.eventIdsDoubled, history.endsOff, history.startedOff], figures).toEqual([0, [], []]);
}

/** An agent behind a proxy of its own, which black-holes it on `cut`. */
async function behindProxy(stack: Stack, args: string[] = []): Promise<Subject> {
  const proxy = await LossyProxy.start({ host: '127.0.0.1', port: stack.cp.port }, seededRandom(1));
  stack.onTeardown(() => proxy.close());
  const agent = await stack.addAgent({ args: ['--server', proxy.url, ...args] });
  return {
    agent,
    link: { kind: 'proxy black hole', cut: () => proxy.mode('black-hole'), heal: () => proxy.mode('pass') },
  };
}

describe.each(backends)('F3: partitions through the proxy (%s)', (backend) => {
  const stack = withStack(backend);
  const label = `(${backend}, proxy)`;

  it('a partition shorter than the lease changes nothing', { timeout: 90_000 }, async () => {
    await shorterThanLease(stack.admin, await behindProxy(stack), label);
  });

  it(
    'a partition longer than the lease ends in lost, late reports are refused, and it converges',
    { timeout: 120_000 },
    async () => {
      const s = await behindProxy(stack);
      await pastTheLease(stack.admin, s, label, {
        how: 'partitioned',
        away: s.link.cut,
        back: s.link.heal,
        backupMs: AWAY_MS + 10_000,
      });
    },
  );

  it(
    'an agent paused past its lease (SIGSTOP, SIGCONT) changes nothing it should not',
    { timeout: 120_000 },
    async () => {
      const agent = await stack.addAgent();
      const pid = agent.proc.child.pid!;
      const s: Subject = { agent, link: { kind: 'none', cut: () => {}, heal: () => {} } };
      await pastTheLease(stack.admin, s, `(${backend})`, {
        how: 'paused (SIGSTOP)',
        away: () => process.kill(pid, 'SIGSTOP'),
        back: () => process.kill(pid, 'SIGCONT'),
        backupMs: 8_000,
      });
    },
  );

  it(
    'an agent cut off longer than its limit stops its backup and says so when it returns',
    { timeout: 90_000 },
    async () => {
      await cutOffPastTheAbortLimit(
        stack.admin,
        await behindProxy(stack, ['--disconnect-abort-ms', String(ABORT_MS)]),
        label,
      );
    },
  );
});

const netnsMissing = netnsUnavailable();
if (netnsMissing) console.warn(`[cairn] F3 in network namespaces skipped: ${netnsMissing}`);

describe.skipIf(netnsMissing !== undefined).each(backends)(
  'F3: real partitions in a network namespace (%s)',
  (backend) => {
    const links: NetnsLink[] = [];
    // The control plane listens on the host end of the first veth pair only (never on every address).
    const env: Record<string, string> = {};
    beforeAll(() => {
      links.push(NetnsLink.create());
      env['CAIRN_HOST'] = links[0]!.hostAddress;
    });
    // Registered before the stack's: runs after it stopped, even when a test failed.
    afterAll(() => {
      for (const l of links) l.remove();
    });
    const stack = withStack(backend, { env });
    const label = `(${backend}, netns)`;
    let nsAgents = 0;

    /** An agent in the namespace, reaching the control plane over the veth pair. */
    async function inNamespace(args: string[] = []): Promise<Subject> {
      const link = links[0]!;
      const { stateDir, agentId } = await stack.enroll('zone-a', `ns-host-${++nsAgents}`);
      const proc = await stack.runAgent(stateDir, { wrapper: link.wrapper, args });
      return {
        agent: { proc, stateDir, agentId },
        link: { kind: 'veth link down', cut: () => link.cut(), heal: () => link.heal() },
      };
    }

    it('a partition shorter than the lease changes nothing', { timeout: 90_000 }, async () => {
      const s = await inNamespace();
      try {
        await shorterThanLease(stack.admin, s, label);
      } finally {
        await s.agent.proc.stop();
      }
    });

    it(
      'a partition longer than the lease ends in lost, late reports are refused, and it converges',
      { timeout: 120_000 },
      async () => {
        const s = await inNamespace();
        try {
          await pastTheLease(stack.admin, s, label, {
            how: 'partitioned (veth link down)',
            away: s.link.cut,
            back: s.link.heal,
            backupMs: AWAY_MS + 10_000,
          });
        } finally {
          await s.agent.proc.stop();
        }
      },
    );

    it(
      'an agent cut off longer than its limit stops its backup and says so when it returns',
      { timeout: 90_000 },
      async () => {
        const s = await inNamespace(['--disconnect-abort-ms', String(ABORT_MS)]);
        try {
          await cutOffPastTheAbortLimit(stack.admin, s, label);
        } finally {
          await s.agent.proc.stop();
        }
      },
    );
  },
);
